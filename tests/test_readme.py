"""The README's Python examples are run, as written, so they cannot rot.

Every fenced ``python`` block of README.md runs in a fresh interpreter in an empty folder
(blocks that need the real datasets get ``AEKIT_DATA`` and skip when it is absent). A block
that raises fails the test with its traceback.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BLOCKS = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)


def test_the_readme_has_python_examples():
    assert len(BLOCKS) >= 1, "README.md lost its Python examples"


@pytest.mark.parametrize("i", range(len(BLOCKS)))
def test_readme_python_block_runs(i, tmp_path):
    code = BLOCKS[i]
    if "AEKIT_DATA" in code or "../shared/data" in code:
        data = Path(os.environ.get("AEKIT_DATA", ROOT.parent / "shared" / "data"))
        if not (data / "mnist.npz").exists():
            pytest.skip(f"README block {i} needs the real datasets (not found under {data})")
    # one thread unless told otherwise: on a loaded machine, OpenMP with more threads than free
    # cores stalls (the README says so; measured 23 s vs > 10 min for block 0)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "CI": "true",
           "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, (f"README block {i} failed:\n{code}\n--- stderr ---\n"
                               f"{r.stderr[-3000:]}")
