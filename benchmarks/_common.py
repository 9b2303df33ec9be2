"""Shared helpers for benchmark scripts: environment record and result files.

Every results file records the exact command line, the git commit and whether the tree was
dirty *when the run started* (this module is imported at the start of every script), start and
end times, CPU model and the flags that matter for speed, library versions and thread count,
then one row per configuration. A full (non-quick) result is refused when the run started
from a tree with uncommitted changes, unless the command line has ``--allow-dirty`` (taken off
``sys.argv`` here, so every script accepts it, and recorded). A file's name is the script's
``--name`` (or its default); nothing else renames results.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
SHARED = ROOT.parent / "shared"


def cpu_info() -> dict:
    model, flags = platform.processor() or "unknown", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and model in ("unknown", "", "x86_64"):
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    wanted = ["avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "avx512_vnni"]
    return {"model": model, "flags": [f for f in wanted if f in flags],
            "logical_cpus": os.cpu_count()}


def environment() -> dict:
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                                capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                                    cwd=ROOT, capture_output=True, text=True,
                                    timeout=10).stdout.strip())
    except (OSError, subprocess.SubprocessError):
        commit, dirty = "unknown", False
    import sklearn

    return {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "git_commit": commit + ("-dirty" if dirty else ""),
        "cpu": cpu_info(),
        "torch": torch.__version__, "numpy": np.__version__, "sklearn": sklearn.__version__,
        "python": platform.python_version(), "torch_threads": torch.get_num_threads(),
    }


ALLOW_DIRTY = "--allow-dirty" in sys.argv
if ALLOW_DIRTY:
    sys.argv.remove("--allow-dirty")
#: The environment when the script started (commit and dirty flag are the run's, not the
#: tree's at the end of a long run).
START = environment()
START["command"] += " --allow-dirty" if ALLOW_DIRTY else ""
if START["git_commit"].endswith("-dirty") and not ALLOW_DIRTY and "--quick" not in sys.argv \
        and Path(sys.argv[0]).stem not in ("render", "plot_curves", "-c", ""):
    print("warning: this run starts from a tree with uncommitted changes; its full result will "
          "be refused at the end unless --allow-dirty is given (commit first)", file=sys.stderr)


#: Results files that belong to a family (rendered and plotted with ``<family>*.json``) but
#: were named otherwise with ``--name``: the file keeps the name its run gave it.
FAMILY_MEMBERS = {"hinton_mnist": ["explore_wd"]}


def family_files(prefix: str) -> list[Path]:
    """Full-mode results of a family: ``<prefix>*.json`` plus :data:`FAMILY_MEMBERS`."""
    paths = set(RESULTS.glob(f"{prefix}*.json"))
    paths |= {RESULTS / f"{n}.json" for n in FAMILY_MEMBERS.get(prefix, [])
              if (RESULTS / f"{n}.json").exists()}
    return sorted(p for p in paths if not p.stem.endswith("_quick"))


def write_results(name: str, payload: dict, table: str) -> Path:
    """Write ``benchmarks/results/<name>.json`` atomically and print the markdown table.

    Quick runs (``settings.quick`` true, or a name ending in ``_quick``) are smoke tests and
    are always written; a full result from a run that started on a dirty tree exits with
    status 2 unless ``--allow-dirty`` was given.
    """
    sys.path.insert(0, str(ROOT / "src"))
    from aekit.io import atomic_write_json

    quick = bool((payload.get("settings") or {}).get("quick")) or name.endswith("_quick")
    dirty = START["git_commit"].endswith("-dirty")
    if dirty and not quick and not ALLOW_DIRTY:
        print(f"refusing to write {name}.json: the run started from a tree with uncommitted "
              "changes (commit first, or pass --allow-dirty, which is recorded)",
              file=sys.stderr)
        raise SystemExit(2)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    env = {**START, "date": START["date"],
           "end_date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
           "dirty_at_start": dirty, "allow_dirty": ALLOW_DIRTY}
    atomic_write_json(path, {"benchmark": name, "environment": env, **payload,
                             "table_markdown": table})
    print(table)
    print(f"\nwrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return path


def md_table(headers: list[str], rows: list[list]) -> str:
    def fmt(v):
        if isinstance(v, float):
            return f"{v:.4g}"
        return str(v)
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(fmt(v) for v in r) + " |" for r in rows]
    return "\n".join(out)


def json_dumps(obj) -> str:
    return json.dumps(obj, indent=2)


def add_dataset_args(p) -> None:
    """``--dataset mnist|fashion-mnist`` and ``--data PATH`` for the MNIST-family scripts
    (read with :func:`aekit.data.load_dataset`)."""
    p.add_argument("--dataset", default="mnist", choices=("mnist", "fashion-mnist"),
                   help="which data (fashion-mnist: /usr/share/datasets/fashion-mnist)")
    p.add_argument("--data", help="mnist.npz or IDX folder (default: $AEKIT_DATA/mnist.npz, "
                                  "or the apt folder for fashion-mnist)")


PIECE_EXEMPT = ("name", "pieces", "shard", "threads", "allow_code_change")
#: Settings that say which jobs a protocol has, not how any one job trains: the candidate
#: recipes (a job's own recipe is in its key) and the final seeds (a job's seed is in its
#: key). Recorded in every piece, left out when a stored piece is compared with a job, so a
#: protocol with one more candidate reuses the jobs of the candidates it shares.
JOB_LIST_SETTINGS = ("select", "seeds")
#: The argument parser's defaults, stored by :func:`check_pieces_args` for :class:`Pieces`.
PARSER_DEFAULTS: dict = {}


def code_identity(script: str | Path) -> dict:
    """Git object ids of ``src/`` and of the benchmark ``script`` at HEAD (``None`` outside
    git): pieces of a ``--pieces`` run are only combined when both are equal, so a result
    never mixes networks trained by different code. Commits that touch neither keep pieces
    valid."""
    import subprocess

    here = Path(script).resolve()
    root = here.parents[1]
    out = {}
    for key, path in (("src_tree", "src"), ("script_blob", f"benchmarks/{here.name}")):
        try:
            out[key] = subprocess.run(["git", "rev-parse", f"HEAD:{path}"], cwd=root,
                                      capture_output=True, text=True,
                                      timeout=10).stdout.strip() or None
        except (OSError, subprocess.SubprocessError):
            out[key] = None
    return out


def parse_shard(text: str | None) -> tuple[int, int]:
    """``"I/N"`` -> (I, N) with 0 <= I < N; ``None`` -> (0, 1) (every job)."""
    if text is None:
        return 0, 1
    i, sep, n = text.partition("/")
    try:
        i_, n_ = int(i), int(n)
    except ValueError:
        i_ = n_ = -1
    if not sep or n_ < 1 or not 0 <= i_ < n_:
        raise SystemExit(f"--shard must be I/N with 0 <= I < N (e.g. 0/2), got {text!r}")
    return i_, n_


class Pieces:
    """The jobs of a validation protocol as separately stored pieces (``--pieces DIR``).

    Every job (e.g. one variant fine-tuned on the 55k split under one recipe, or one final
    network on 60k) is written to ``DIR/<stage>-<variant>-s<seed>-<recipe hash>.json``
    atomically when it finishes, with the environment of the process that ran it (commit and
    dirty flag at its start, argv, CPU, threads) and a signature: every setting that changes
    the training (all of ``vars(args)`` except ``--name``, ``--pieces``, ``--shard``,
    ``--threads``) plus :func:`code_identity`. A later run with the same signature reuses the
    piece instead of training again, so a killed protocol resumes job by job, and ``--shard
    I/N`` lets N processes (or sessions) each train every N-th job; a piece with another
    signature is refused by name, never mixed in, except that ``--allow-code-change``
    accepts pieces of the same settings trained by other code (other commits of ``src/`` or
    of the script), listed in the results' ``code_changed``; each piece keeps its own
    commit. Thread counts may differ between pieces (recorded per piece).

    What "the same settings" means for one job: the job-list settings
    (:data:`JOB_LIST_SETTINGS`: the candidate recipes and the final seeds) are left out, since
    a job's own recipe and seed are in its key, so a protocol with one more candidate reuses
    the jobs it shares with an earlier one; and a setting the stored piece does not record
    (added to the script after it was trained) matches when this run has it at the parser's
    default, listed in the results' ``settings_defaulted``."""

    def __init__(self, a, script: str | Path):
        self.dir = Path(a.pieces) if a.pieces else None
        self.shard = parse_shard(a.shard)
        # through JSON, so that it compares equal to a signature read back from a piece
        self.signature = json.loads(json.dumps(
            {"settings": {k: v for k, v in sorted(vars(a).items()) if k not in PIECE_EXEMPT},
             "code": code_identity(script)}))
        # parser defaults (check_pieces_args stores them): a setting added to the script after
        # a piece was trained is absent from that piece and matches when it is at its default
        self.defaults = dict(PARSER_DEFAULTS)
        self.defaulted: list[str] = []
        self.allow_code_change = bool(getattr(a, "allow_code_change", False))
        self.used: list[dict] = []
        self.code_changed: list[str] = []
        self.pending: list[str] = []
        self.index = 0

    def run(self, stage: str, recipe: str, variant: str, seed: int, fn) -> dict | None:
        """The job's result: stored, trained now (when this shard owns it), or ``None``."""
        import hashlib

        sys.path.insert(0, str(ROOT / "src"))
        from aekit.io import atomic_write_json

        mine = self.index % self.shard[1] == self.shard[0]
        self.index += 1
        key = (f"{stage}-{variant}-s{seed}-"
               f"{hashlib.sha1(recipe.encode()).hexdigest()[:10]}")
        path = None if self.dir is None else self.dir / f"{key}.json"
        if path is not None and path.exists():
            try:
                piece = json.loads(path.read_text())
                sig, result = piece["signature"], piece["result"]
            except (ValueError, KeyError, TypeError) as e:
                raise SystemExit(f"--pieces: {path} is not a piece of this script "
                                 f"({type(e).__name__}: {e})") from None
            same_settings, defaulted = self._same_job_settings(sig.get("settings"))
            same_code = sig.get("code") == self.signature["code"]
            if same_settings and not same_code and self.allow_code_change:
                self.code_changed.append(path.name)
            elif not (same_settings and same_code):
                raise SystemExit(f"--pieces: {path} was trained with other settings or code "
                                 f"({_sig_diff(sig, self.signature)}); use another --pieces "
                                 "directory")
            self.used.append({"piece": path.name, "environment": piece["environment"]})
            self.defaulted += [f"{path.name}: {k}" for k in defaulted]
            print(f"   (reusing {path.name})", flush=True)
            return result
        if not mine:
            self.pending.append(key)
            return None
        result = fn()
        if path is not None:
            self.dir.mkdir(parents=True, exist_ok=True)
            env = {**START, "end_date": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
                   "recipe": recipe, "stage": stage}
            atomic_write_json(path, {"signature": self.signature, "environment": env,
                                     "result": result})
            self.used.append({"piece": path.name, "environment": env})
        return result

    def _same_job_settings(self, stored) -> tuple[bool, list[str]]:
        """Whether a stored piece's settings train the same job as this run's, and which
        settings it lacks and were matched at their defaults. Job-list settings
        (:data:`JOB_LIST_SETTINGS`) are ignored on both sides."""
        if not isinstance(stored, dict):
            return False, []
        mine = self.signature["settings"]
        defaulted = []
        for k in set(stored) | set(mine):
            if k in JOB_LIST_SETTINGS:
                continue
            if k in stored and k in mine:
                if stored[k] != mine[k]:
                    return False, []
            elif k in mine and k in self.defaults and mine[k] == self.defaults[k]:
                defaulted.append(k)
            else:
                return False, []
        return True, sorted(defaulted)

    def refuse_dirty(self, quick: bool) -> None:
        """Exit unless every piece used was trained from a clean tree (quick runs and
        ``--allow-dirty`` excepted): a headline result never rests on uncommitted code."""
        dirty = [u["piece"] for u in self.used
                 if str(u["environment"].get("git_commit", "")).endswith("-dirty")]
        if dirty and not quick and not ALLOW_DIRTY:
            raise SystemExit(f"refusing to combine pieces trained on a dirty tree: {dirty}")


def _sig_diff(old: dict, new: dict) -> str:
    keys = [f"code.{k}" for k in new["code"] if old.get("code", {}).get(k) != new["code"][k]]
    keys += [k for k in set(old.get("settings", {})) | set(new["settings"])
             if k not in JOB_LIST_SETTINGS
             and old.get("settings", {}).get(k) != new["settings"].get(k)]
    return "differs in " + ", ".join(sorted(keys)) if keys else "unreadable signature"


def add_pieces_args(p) -> None:
    """``--pieces DIR``, ``--allow-code-change`` and ``--shard I/N`` (see :class:`Pieces`)."""
    p.add_argument("--pieces", default=None, metavar="DIR",
                   help="with --select: store every job (one trained network) in DIR as it "
                        "finishes and reuse stored jobs of the same settings and code, so a killed "
                        "protocol resumes and can be split with --shard")
    p.add_argument("--allow-code-change", action="store_true",
                   help="with --pieces: accept stored pieces of the same settings trained by "
                        "other code (recorded in the results' code_changed)")
    p.add_argument("--shard", default=None, metavar="I/N",
                   help="with --select --pieces: train only every N-th job starting at I; "
                        "the results file is written by a run that finds every piece done")


def check_pieces_args(p, a) -> None:
    """Refuse ``--pieces`` / ``--shard`` outside ``--select`` and a malformed ``--shard``."""
    if (a.pieces or a.shard) and not a.select:
        p.error("--pieces and --shard belong to the --select protocol")
    if a.shard and not a.pieces:
        p.error("--shard needs --pieces DIR (the shards meet there)")
    parse_shard(a.shard)
    # the parser's defaults, for pieces trained before a setting existed (see Pieces)
    PARSER_DEFAULTS.clear()
    PARSER_DEFAULTS.update({k: p.get_default(k) for k in vars(a)})
