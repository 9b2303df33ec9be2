"""torch.distributed: 2 CPU processes (gloo, launched by torchrun through the CLI) reach the
weights of 1 process with the same global batch and seed."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch.distributed as dist
from safetensors.torch import load_file

ARGS = ["train", "--data", "digits", "--max-iter", "4", "--hidden-layer-sizes", "32",
        "--batch-size", "64", "--no-early-stopping", "--no-report", "--no-progress"]


@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed is not available")
def test_two_processes_match_one(tmp_path):
    env = dict(os.environ, CI="true", OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "aekit.cli"]
    one = subprocess.run([*cmd, *ARGS, "--output", str(tmp_path / "one")], env=env,
                         capture_output=True, timeout=300)
    assert one.returncode == 0, one.stderr.decode()[-2000:]
    two = subprocess.run([*cmd, *ARGS, "--nproc-per-node", "2", "--output", str(tmp_path / "two")],
                         env=env, capture_output=True, timeout=300)
    assert two.returncode == 0, two.stderr.decode()[-3000:]
    assert json.loads((tmp_path / "two" / "config.json").read_text())["processes"] == 2
    a = load_file(tmp_path / "one" / "model.safetensors")
    b = load_file(tmp_path / "two" / "model.safetensors")
    diffs = {k: float((a[k] - b[k]).abs().max()) for k in a}
    scale = max(float(v.abs().max()) for v in a.values())
    assert max(diffs.values()) < 1e-4 * max(1.0, scale), diffs
    # the logged epoch losses are global (all-reduced) and agree too
    h1 = [json.loads(x) for x in (tmp_path / "one" / "history.jsonl").read_text().splitlines()]
    h2 = [json.loads(x) for x in (tmp_path / "two" / "history.jsonl").read_text().splitlines()]
    for r1, r2 in zip(h1, h2, strict=True):
        assert r2["train_loss"] == pytest.approx(r1["train_loss"], rel=1e-4)


@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed is not available")
def test_resume_across_process_counts(tmp_path):
    """A 1-process run stopped by SIGTERM (checkpoint written) resumes with 2 processes and
    ends where the uninterrupted 1-process run ends, up to float round-off."""
    import signal
    import time

    from aekit.train import find_checkpoints

    env = dict(os.environ, CI="true", OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "aekit.cli"]
    args = [*ARGS, "--checkpoint-steps", "10"]
    ref = subprocess.run([*cmd, *args, "--output", str(tmp_path / "ref")], env=env,
                         capture_output=True, timeout=300)
    assert ref.returncode == 0, ref.stderr.decode()[-2000:]
    p = subprocess.Popen([*cmd, *args, "--output", str(tmp_path / "run")], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and p.poll() is None and not find_checkpoints(
            tmp_path / "run" / "checkpoints"):
        time.sleep(0.02)
    p.send_signal(signal.SIGTERM)
    p.communicate(timeout=120)
    assert p.returncode == 128 + signal.SIGTERM
    r = subprocess.run([*cmd, "train", "--output", str(tmp_path / "run"), "--resume",
                        "--nproc-per-node", "2", "--no-progress"], env=env,
                       capture_output=True, timeout=300)
    assert r.returncode == 0, r.stderr.decode()[-3000:]
    a = load_file(tmp_path / "ref" / "model.safetensors")
    b = load_file(tmp_path / "run" / "model.safetensors")
    diffs = {k: float((a[k] - b[k]).abs().max()) for k in a}
    assert max(diffs.values()) < 1e-4, diffs


STOP_SCRIPT = """
import gc, json, sys
import numpy as np
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from aekit import fit
from aekit.models import DenseAE
from aekit.objectives import Objective
from aekit.train.callbacks import Callback

dist.init_process_group("gloo")
rank = dist.get_rank()


class StopOnRank1(Callback):  # a stop only one process decides (as a wall-clock budget can)
    def on_epoch_end(self, loop, record):
        return rank == 1 and record["epoch"] >= 2


X = np.random.default_rng(0).random((64, 8)).astype("float32")
gc.disable()  # no automatic collection: only fit dropping its reference can free the wrapper
h = fit(DenseAE([8, 3]), Objective("mse"), X, max_iter=6, batch_size=16, progress=False,
        callbacks=[StopOnRank1()])
# fit must free its DDP wrapper before returning: held by the loop (a reference cycle) it
# could be freed by the collector at interpreter exit, after destroy_process_group, and
# abort the process
ddp = sum(isinstance(o, DistributedDataParallel) for o in gc.get_objects())
with open(sys.argv[1] + f".rank{rank}", "w") as f:  # a file each: stdout interleaves
    json.dump({"rank": rank, "epochs": len(h.records), "ddp_alive": ddp}, f)
dist.barrier()  # neither closes the group while the other still talks
dist.destroy_process_group()
"""


@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed is not available")
def test_a_stop_decided_on_one_process_stops_all(tmp_path):
    """A callback that stops training on rank 1 only: both processes end after the same
    epoch (without the agreement rank 0 would wait in the next all-reduce), and fit has freed
    its DistributedDataParallel wrapper when it returns (when the collector freed it at exit,
    after destroy_process_group, a rank aborted in about 1 run in 25)."""
    script = tmp_path / "stop.py"
    script.write_text(STOP_SCRIPT)
    env = dict(os.environ, CI="true", OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           "--nproc-per-node", "2", str(script), str(tmp_path / "out")],
                          env=env, capture_output=True, text=True, timeout=120)
    ranks = "\n".join(ln for ln in proc.stderr.splitlines() if ln.startswith("[rank"))
    assert proc.returncode == 0, (ranks or proc.stderr)[-3000:]
    got = [json.loads((tmp_path / f"out.rank{r}").read_text()) for r in (0, 1)]
    assert got == [{"rank": 0, "epochs": 2, "ddp_alive": 0},
                   {"rank": 1, "epochs": 2, "ddp_alive": 0}], got


BN_SCRIPT = """
import json, sys
import numpy as np
import torch.distributed as dist
from aekit import fit
from aekit.models import DenseAE
from aekit.objectives import Objective

dist.init_process_group("gloo")
rank = dist.get_rank()
rng = np.random.default_rng(0)
X, V = (rng.random((n, 12)).astype("float32") for n in (64, 16))
model = DenseAE([12, 6, 3], batch_norm=True)
h = fit(model, Objective("mse"), X, val=V, max_iter=3, batch_size=16, progress=False,
        random_state=0)
state = {k: v.double().sum().item() for k, v in model.state_dict().items()}
with open(sys.argv[1] + f".rank{rank}", "w") as f:
    json.dump({"val": [r["val_loss"] for r in h.records], "state": state}, f)
dist.barrier()
dist.destroy_process_group()
"""


@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed is not available")
def test_batch_norm_statistics_agree_across_processes(tmp_path):
    """Each rank's forward updates its batch-norm running statistics with its own rows; fit
    gives every rank rank 0's at each epoch end, so all ranks validate, pick the best epoch of
    and return the same model (without the sync the validation losses differ by rank)."""
    script = tmp_path / "bn.py"
    script.write_text(BN_SCRIPT)
    env = dict(os.environ, CI="true", OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           "--nproc-per-node", "2", str(script), str(tmp_path / "out")],
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    r0, r1 = (json.loads((tmp_path / f"out.rank{r}").read_text()) for r in (0, 1))
    assert any("running_mean" in k for k in r0["state"]), sorted(r0["state"])
    assert r0["val"] == r1["val"], (r0["val"], r1["val"])
    assert r0["state"] == r1["state"], {k: (r0["state"][k], r1["state"][k])
                                        for k in r0["state"] if r0["state"][k] != r1["state"][k]}
