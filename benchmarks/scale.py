"""Scale and reliability figures (issue 8): bf16 vs fp32, 1 vs 2 processes, streaming memory,
and kill/resume exactness. Each part can run alone with --only.

    python benchmarks/scale.py                 # everything, full sizes
    python benchmarks/scale.py --quick         # small sizes (a couple of minutes)
    python benchmarks/scale.py --only bf16 ddp
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, md_table, write_results
from aekit import ConvAE, DenseAE, fit, make_objective
from aekit.train import native_bf16

SIZES = [784, 1000, 500, 250, 30]
PY = sys.executable


def bench_bf16(quick: bool) -> tuple[list[dict], str]:
    rows = []
    native = native_bf16()
    models = {"dense 784-1000-500-250-30": lambda: DenseAE(SIZES, activation="relu",
                                                           output="sigmoid"),
              "conv 28x28 (32, 64 ch), code 32": lambda: ConvAE([28, 28], channels=[32, 64],
                                                                code_size=32)}
    for (name, make), bs in itertools.product(models.items(), (256, 1024)):
        rates = {}
        for prec in ("fp32", "bf16"):
            torch.manual_seed(0)
            m = make()
            X = torch.rand(8 * bs if quick else 16 * bs, 784)
            fit(m, make_objective("bce"), X[: 2 * bs], max_iter=1, batch_size=bs, precision=prec)
            t0 = time.perf_counter()
            fit(m, make_objective("bce"), X, max_iter=1 if quick else 3, batch_size=bs,
                precision=prec)
            rates[prec] = len(X) * (1 if quick else 3) / (time.perf_counter() - t0)
        rows.append({"model": name, "batch": bs, "fp32_samples_per_s": rates["fp32"],
                     "bf16_samples_per_s": rates["bf16"], "speedup": rates["bf16"] / rates["fp32"],
                     "native_bf16": native})
    # loss parity on a fixed run: MNIST-like random low-rank data, same seed, same steps
    g = np.random.default_rng(0)
    X = (1 / (1 + np.exp(-g.normal(size=(4096, 20)) @ g.normal(size=(20, 784)) / 3))
         ).astype(np.float32)
    finals = {}
    for prec in ("fp32", "bf16"):
        torch.manual_seed(0)
        m = DenseAE(SIZES, activation="relu", output="sigmoid")
        h = fit(m, make_objective("bce"), X, max_iter=3 if quick else 10, batch_size=256,
                learning_rate=1e-3, precision=prec)
        finals[prec] = h["train_loss"][-1]
    parity = {"fp32_final_loss": finals["fp32"], "bf16_final_loss": finals["bf16"],
              "relative_difference": abs(finals["bf16"] - finals["fp32"]) / finals["fp32"]}
    md = md_table(["model", "batch", "fp32 samples/s", "bf16 samples/s", "bf16 speed-up"],
                  [[r["model"], r["batch"], round(r["fp32_samples_per_s"]),
                    round(r["bf16_samples_per_s"]),
                    round(r["speedup"], 2)] for r in rows])
    md += (f"\n\nNative bf16 on this CPU: {native} (without it aekit warns and runs fp32, so "
           "both columns would be fp32). Loss parity after the same steps: fp32 "
           f"{finals['fp32']:.3f}, bf16 {finals['bf16']:.3f} "
           f"({100 * parity['relative_difference']:.2f} % apart).")
    return [{"part": "bf16", **r} for r in rows] + [{"part": "bf16_parity", **parity}], md


def _worker(n_proc: int, batch: int, epochs: int, n: int, threads: int) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), CI="true")
    script = str(ROOT / "benchmarks" / "_ddp_worker.py")
    if n_proc == 1:
        cmd = [PY, script, str(batch), str(epochs), str(n)]
    else:
        cmd = [PY, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={n_proc}",
               script, str(batch), str(epochs), str(n)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
    if out.returncode:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads([ln for ln in out.stdout.splitlines() if ln.startswith("{")][-1])


def bench_ddp(quick: bool) -> tuple[list[dict], str]:
    cores = os.cpu_count() or 1
    rows = []
    n, epochs = (4096, 1) if quick else (16384, 2)
    for bs in (256, 1024):
        one = _worker(1, bs, epochs, n, cores)
        two = _worker(2, bs, epochs, n, max(1, cores // 2))
        # the same per-process work alone, to split compute from communication
        local = _worker(1, bs // 2, epochs, n // 2, max(1, cores // 2))
        comm = max(0.0, 1 - (n / 2 / local["samples_per_s"]) / (n / two["samples_per_s"]))
        rows.append({"batch": bs, "one_process_samples_per_s": one["samples_per_s"],
                     "one_process_threads": one["threads"],
                     "two_process_samples_per_s": two["samples_per_s"],
                     "threads_per_process": max(1, cores // 2),
                     "speedup": two["samples_per_s"] / one["samples_per_s"],
                     "communication_share": comm})
    md = md_table(["global batch", "1 process (threads)", "2 processes (threads each)",
                   "speed-up", "communication share"],
                  [[r["batch"], f"{r['one_process_samples_per_s']:.0f} "
                    f"({r['one_process_threads']})",
                    f"{r['two_process_samples_per_s']:.0f} ({r['threads_per_process']})",
                    round(r["speedup"], 2), f"{100 * r['communication_share']:.0f}%"]
                   for r in rows])
    md += (f"\n\n{cores} logical CPUs. Communication share = 1 − (time of one process's local "
           "work alone) / (time per step with 2 processes).")
    return [{"part": "ddp", **r} for r in rows], md


def bench_streaming(quick: bool, workdir: Path) -> tuple[list[dict], str]:
    from aekit import save_model

    torch.manual_seed(0)
    model = DenseAE([784, 256, 32], output="sigmoid")
    mpath = save_model(model, workdir / "m.safetensors")
    sizes_gb = [0.05, 0.1, 0.2, 0.4] if quick else [1, 2, 4, 8]
    rows = []
    for gb in sizes_gb:
        n = int(gb * 1e9 / (784 * 4))
        x = workdir / "x.npy"
        mm = np.lib.format.open_memmap(x, mode="w+", dtype=np.float32, shape=(n, 784))
        step = 100_000
        for i in range(0, n, step):
            mm[i:i + step] = np.random.default_rng(i).random((min(step, n - i), 784),
                                                             dtype=np.float32)
        mm.flush()
        del mm
        code = ("import sys, time; from aekit.cli import main; t = time.perf_counter();"
                f" rc = main(['score', '{mpath}', '--input', '{x}', '--output', "
                f"'{workdir / 's.npy'}', '--chunk', '8192']); el = time.perf_counter() - t;"
                # VmHWM, not ru_maxrss: the latter keeps the parent's peak across exec
                " hwm = open('/proc/self/status').read().split('VmHWM:')[1].split()[0];"
                " print('RESULT', el, hwm);"
                " sys.exit(rc)")
        subprocess.run(["sync"], check=False)
        out = subprocess.run([PY, "-c", code], capture_output=True, text=True, timeout=3600,
                             env=dict(os.environ, CI="true"))
        line = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT")]
        if out.returncode or not line:
            raise RuntimeError(out.stderr[-2000:])
        el, rss_kb = float(line[0].split()[1]), int(line[0].split()[2])
        rows.append({"input_gb": gb, "rows": n, "seconds": el, "samples_per_s": n / el,
                     "peak_rss_mb": rss_kb / 1024})
        x.unlink()
        (workdir / "s.npy").unlink(missing_ok=True)
    md = md_table(["input (GB)", "rows", "aekit score: samples/s", "peak RSS (MB)"],
                  [[r["input_gb"], r["rows"], round(r["samples_per_s"]),
                    round(r["peak_rss_mb"])] for r in rows])
    md += ("\n\n`aekit score` on a float32 .npy (784 features, 784-256-32 model), "
           "chunk 8192 rows read with pread (no memory map), output appended chunk by chunk; "
           "peak RSS (VmHWM) of the whole process, Python and torch included.")
    return [{"part": "streaming", **r} for r in rows], md


def _newest_step(ckdir: Path) -> int:
    from aekit.train import find_checkpoints

    found = find_checkpoints(ckdir)
    return int(found[0].stem.split("-")[1]) if found else -1


def bench_resume(quick: bool, workdir: Path) -> tuple[list[dict], str]:
    """SIGKILL inside the training interval, 3 times per trial, then resume to the end.

    A first uninterrupted run gives the reference weights and the number of optimiser steps.
    Each kill waits until the run has written a checkpoint at or past a random target step
    (drawn inside the run, so the kill lands mid-training), then kills after a random
    0–0.2 s; it counts as mid-run when a checkpoint exists and no final model does. The
    killed run is resumed (and killed again) until the third resume finishes. Before the
    first resume a checkpoint of another run, with a higher step, is planted in the run's
    folder: the resume must ignore it (identical weights) and leave the file as it was.
    """
    args = ["train", "--data", "digits", "--max-iter", "15", "--hidden-layer-sizes", "64",
            "--batch-size", "64", "--checkpoint-steps", "9", "--no-early-stopping",
            "--set", "model.dropout=0.1", "--no-report", "--no-progress"]
    env = dict(os.environ, CI="true", OMP_NUM_THREADS="1")
    cmd = [PY, "-m", "aekit.cli"]
    subprocess.run([*cmd, *args, "--output", str(workdir / "ref")], env=env, check=True,
                   capture_output=True)
    from safetensors.torch import load_file

    ref = load_file(workdir / "ref" / "model.safetensors")
    total = json.loads((workdir / "ref" / "history.jsonl").read_text().splitlines()[-1])["step"]
    trials = 3 if quick else 10
    rng = random.Random(0)
    from aekit.train import find_checkpoints

    foreign_src = find_checkpoints(workdir / "ref" / "checkpoints")[0]  # another run's, late
    rows, mid, kills, diffs, untouched = [], 0, 0, [], 0
    for t in range(trials):
        out = workdir / f"t{t}"
        targets = sorted(rng.sample(range(9, total - 9), 3))
        events = []
        foreign = None
        for k, target in enumerate(targets):
            if k == 1:  # plant the other run's newest checkpoint before the first resume
                foreign = out / "checkpoints" / "ckpt-9999999999.safetensors"
                foreign.write_bytes(foreign_src.read_bytes())
                before = (foreign.read_bytes(), foreign.stat().st_mtime_ns)
            run = [*cmd, *args, "--output", str(out)] if k == 0 else \
                [*cmd, "train", "--output", str(out), "--resume", "--no-progress"]
            p = subprocess.Popen(run, env=env, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
            deadline = time.time() + 300
            while p.poll() is None and time.time() < deadline and \
                    _newest_step(out / "checkpoints") < target:
                time.sleep(0.01)
            time.sleep(rng.uniform(0.0, 0.2))
            finished = p.poll() is not None
            p.send_signal(signal.SIGKILL)
            p.wait()
            landed = not finished and not (out / "model.safetensors").exists() and \
                _newest_step(out / "checkpoints") >= 0
            kills += 1
            mid += landed
            events.append({"target_step": target,
                           "checkpoint_step_at_kill": _newest_step(out / "checkpoints"),
                           "killed_mid_run": landed})
        r = subprocess.run([*cmd, "train", "--output", str(out), "--resume", "--no-progress"],
                           env=env, capture_output=True, text=True)
        if r.returncode:
            rows.append({"trial": t, "kills": events, "resumed": False,
                         "error": r.stderr[-500:]})
            continue
        w = load_file(out / "model.safetensors")
        diff = max(float((ref[k] - w[k]).abs().max()) for k in ref)
        diffs.append(diff)
        kept = foreign is not None and foreign.exists() and \
            (foreign.read_bytes(), foreign.stat().st_mtime_ns) == before
        untouched += kept
        rows.append({"trial": t, "kills": events, "resumed": True, "max_weight_diff": diff,
                     "bit_identical": diff == 0.0, "foreign_checkpoint_untouched": kept})
    md = (f"{trials} trials of a {total}-step run, each killed with SIGKILL 3 times at random "
          f"steps inside training and resumed with `aekit train --out DIR --resume`: "
          f"{mid} of {kills} kills landed mid-run (a checkpoint and no final model); "
          f"{sum(r.get('bit_identical', False) for r in rows)} of {trials} trials ended "
          f"bit-identical to the uninterrupted run (max weight difference "
          f"{max(diffs) if diffs else float('nan'):.3g}); a checkpoint of another run "
          f"(higher step) planted before the first resume was neither loaded nor touched in "
          f"{untouched} of {trials} trials.")
    return [{"part": "resume", "total_steps": total, "mid_run_kills": mid, "kills": kills,
             **r} for r in rows], md


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--only", nargs="*", choices=["bf16", "ddp", "streaming", "resume"])
    p.add_argument("--workdir", type=Path, help="scratch folder for generated inputs "
                   "(default: a temp dir; full streaming mode needs ~8 GB free)")
    p.add_argument("--name", default=None,
                   help="results file stem (default scale[_quick])")
    a = p.parse_args()
    parts = a.only or ["bf16", "ddp", "streaming", "resume"]
    rows, sections = [], []
    with tempfile.TemporaryDirectory(dir=a.workdir) as tmp:
        for part in parts:
            t0 = time.perf_counter()
            fn = {"bf16": lambda: bench_bf16(a.quick), "ddp": lambda: bench_ddp(a.quick),
                  "streaming": lambda: bench_streaming(a.quick, Path(tmp)),
                  "resume": lambda: bench_resume(a.quick, Path(tmp))}[part]
            r, md = fn()
            rows += r
            sections.append(f"### {part}\n\n{md}")
            print(f"[{part}] {time.perf_counter() - t0:.0f} s\n{md}\n", flush=True)
    write_results(a.name or ("scale" + ("_quick" if a.quick else "")),
                  {"settings": {"quick": a.quick, "parts": parts}, "rows": rows},
                  "\n\n".join(sections))


if __name__ == "__main__":
    main()
