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
    print(f"\nwrote {path.relative_to(ROOT)}")
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
