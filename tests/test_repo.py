"""Repository facts: the README's test command is what CI runs; the public API is documented."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import aekit

ROOT = Path(__file__).resolve().parents[1]


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)\n```", readme, re.S)
    test_cmd = next(b for b in blocks if "pytest" in b)
    ci = (ROOT / ".ci" / "run").read_text().strip().splitlines()
    assert ci[-1].strip() == test_cmd.strip()
    main_cmd = blocks[0]
    assert "torch==2.13.0" in main_cmd and "aekit train --data digits" in main_cmd
    assert main_cmd.index("torch==2.13.0") < main_cmd.index("pip install -q -e .")


def test_every_public_name_has_a_docstring():
    missing = []
    for name in aekit.__all__:
        obj = getattr(aekit, name)
        if (inspect.isclass(obj) or inspect.isfunction(obj)) and not inspect.getdoc(obj):
            missing.append(name)
    assert not missing, f"public names without docstrings: {missing}"
