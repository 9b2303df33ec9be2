"""Streaming really bounds memory: scoring a file costs the same peak RSS whatever its size.

Each measurement runs in a fresh child process (so imports and allocator state are equal) and
reads the child's own peak resident set size (``VmHWM``; ``ru_maxrss`` would inherit the
parent's high-water mark across fork and exec). The big file is 256 MB; the memory
a streaming pass may add over a tiny file is a quarter of that, far above the few chunk-sized
buffers it needs and far below loading the file.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

CHILD = r"""
import json, sys
import torch
from aekit import DenseAE
from aekit.data.streaming import map_rows, open_rows
torch.set_num_threads(1)
torch.manual_seed(0)
model = DenseAE([{d}, 16, 4]).eval()
def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1])
base = status("VmHWM")
out = map_rows(model, open_rows(sys.argv[1]), "score", out=sys.argv[2], chunk=1024)
print(json.dumps({{"base_kb": base, "peak_kb": status("VmHWM")}}))
"""

D = 1024


def _peak_kb(tmp_path, rows: int, tag: str) -> dict:
    path = tmp_path / f"{tag}.npy"
    mm = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(rows, D))
    for i in range(0, rows, 8192):  # written in slices: the test itself stays small
        mm[i:i + 8192] = np.random.default_rng(i).random((min(8192, rows - i), D),
                                                         dtype=np.float32)
    del mm
    proc = subprocess.run([sys.executable, "-c", CHILD.format(d=D), str(path),
                           str(tmp_path / f"{tag}_scores.npy")], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    scores = np.load(tmp_path / f"{tag}_scores.npy")
    assert scores.shape == (rows,) and np.isfinite(scores).all()
    path.unlink()
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_scoring_a_256_mb_file_adds_less_than_a_quarter_of_it_to_peak_memory(tmp_path):
    small = _peak_kb(tmp_path, 4096, "small")  # 16 MB
    big = _peak_kb(tmp_path, 65536, "big")  # 256 MB
    file_kb = 65536 * D * 4 // 1024
    extra = big["peak_kb"] - small["peak_kb"]
    assert extra < file_kb // 4, (f"peak RSS {big['peak_kb']} kB on the 256 MB file vs "
                                  f"{small['peak_kb']} kB on 16 MB: +{extra} kB, limit "
                                  f"{file_kb // 4} kB")
