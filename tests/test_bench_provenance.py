"""Benchmark provenance: the commit and dirty flag are the run's start, and a full result from
a dirty tree is refused unless --allow-dirty (recorded)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import _common  # noqa: E402


@pytest.fixture
def results(tmp_path, monkeypatch):
    monkeypatch.setattr(_common, "RESULTS", tmp_path)
    monkeypatch.setattr(_common, "ROOT", tmp_path.parent)
    return tmp_path


def test_dirty_start_refuses_a_full_result_but_not_a_quick_one(results, monkeypatch):
    monkeypatch.setattr(_common, "START", {**_common.START, "git_commit": "abc1234-dirty"})
    monkeypatch.setattr(_common, "ALLOW_DIRTY", False)
    with pytest.raises(SystemExit) as e:
        _common.write_results("full_run", {"settings": {"quick": False}}, "| t |")
    assert e.value.code == 2 and not (results / "full_run.json").exists()
    _common.write_results("smoke", {"settings": {"quick": True}}, "| t |")
    env = json.loads((results / "smoke.json").read_text())["environment"]
    assert env["dirty_at_start"] is True and env["git_commit"] == "abc1234-dirty"
    monkeypatch.setattr(_common, "ALLOW_DIRTY", True)
    _common.write_results("full_run", {"settings": {"quick": False}}, "| t |")
    env = json.loads((results / "full_run.json").read_text())["environment"]
    assert env["allow_dirty"] is True and env["date"] <= env["end_date"]


def test_start_environment_is_taken_when_the_script_starts(tmp_path):
    """The recorded commit is HEAD when the module was imported, and --allow-dirty is taken off
    argv before the script's own parser sees it."""
    code = ("import sys; sys.argv = ['x.py', '--allow-dirty', '--quick']; "
            f"sys.path.insert(0, {str(ROOT / 'benchmarks')!r}); import _common; "
            "print(_common.ALLOW_DIRTY, sys.argv, _common.START['command']); "
            "print(_common.START['git_commit'])")

    def head() -> str:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                              capture_output=True, text=True).stdout.strip()

    # HEAD around the script's start (a commit made meanwhile by someone else must not make
    # this test fail: the recorded commit is one of the two)
    before = head()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, cwd=ROOT)
    after = head()
    assert out.returncode == 0, out.stderr
    first, recorded = out.stdout.rstrip().split("\n")
    assert first.startswith("True ['x.py', '--quick']"), out.stdout
    assert first.endswith("--allow-dirty"), out.stdout
    assert before and any(recorded.startswith(h) for h in (before, after)), (recorded, before,
                                                                             after)
