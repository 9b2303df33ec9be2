"""docs/benchmarks.md is exactly what ``benchmarks/render.py`` makes of the results files."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _render_module():
    spec = importlib.util.spec_from_file_location("aekit_bench_render",
                                                  ROOT / "benchmarks" / "render.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_docs_benchmarks_md_is_the_rendering_of_the_results():
    render = _render_module()
    want = render.render()
    have = (ROOT / "docs" / "benchmarks.md").read_text()
    if have != want:
        diff = [i for i, (a, b) in enumerate(zip(have.splitlines(), want.splitlines()))
                if a != b][:3]
        raise AssertionError(f"docs/benchmarks.md is stale (first differing lines {diff}; "
                             f"{len(have)} vs {len(want)} chars): run "
                             "python benchmarks/render.py")


def test_every_note_names_an_existing_results_file():
    render = _render_module()
    results = ROOT / "benchmarks" / "results"
    missing = [s for s in [*render.NOTES, *render.TEST_SELECTED]
               if not (results / f"{s}.json").exists()]
    assert not missing, f"notes for results files that do not exist: {missing}"
    text = render.render()
    for stem in render.TEST_SELECTED:
        section = text.split(f"## {stem}\n", 1)[1].split("\n## ", 1)[0]
        assert "**Note (protocol):**" in section, stem
