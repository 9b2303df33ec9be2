"""The HTML report and the run comparison: sections that apply, clear errors, atomic writes."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil

import numpy as np
import pytest

from aekit import plots
from aekit.cli import main
from aekit.report import IMAGE_SECTIONS, write_comparison, write_report
from aekit.report.html import png_data_uri

FAST = ["--max-iter", "1", "--hidden-layer-sizes", "16", "--no-progress", "--no-report"]
ALWAYS = ("overview", "metrics", "curves", "pca", "worst", "codes", "activity", "jacobian",
          "config")


def _sections(html: str) -> list[str]:
    return re.findall(r'<section id="([^"]+)"', html)


@pytest.fixture(scope="module")
def image_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "digits"
    assert main(["train", "--data", "digits", "--n-components", "4", "--output", str(out),
                 *FAST]) == 0
    return out


@pytest.fixture(scope="module")
def image_html(image_run):
    return write_report(image_run).read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def feature_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("features")
    rng = np.random.default_rng(0)
    Z = rng.normal(size=(300, 3))
    np.save(d / "features.npy", np.tanh(Z @ rng.normal(size=(3, 12))).astype(np.float32))
    out = d / "run"
    assert main(["train", "--data", str(d / "features.npy"), "--n-components", "3", "--output",
                 str(out), *FAST]) == 0
    return out


def test_image_report_has_every_section(image_run, image_html):
    assert (image_run / "report.html").is_file()
    secs = _sections(image_html)
    for s in (*ALWAYS, *IMAGE_SECTIONS):
        assert s in secs, (s, secs)
    assert secs[0] == "overview" and secs[-1] == "config"
    for s in secs:  # the table of contents links every section
        assert f'href="#{s}"' in image_html
    # Self-contained: images inline, no script, no external reference of any kind.
    assert "<script" not in image_html and "http" not in image_html
    assert not re.search(r'(src|href)="(?!data:image/png;base64,|#)', image_html)
    uris = re.findall(r'<img src="data:image/png;base64,([^"]+)"', image_html)
    assert len(uris) >= 12
    for u in uris:
        assert base64.b64decode(u)[:8] == b"\x89PNG\r\n\x1a\n"
    for text in ("autoencoder / PCA", "PCA (k = 4)", "Latent traversals", "unit", "digits"):
        assert text in image_html, text


def test_feature_report_omits_image_sections(feature_run):
    html = write_report(feature_run).read_text(encoding="utf-8")
    secs = _sections(html)
    for s in ALWAYS:
        assert s in secs, (s, secs)
    for s in IMAGE_SECTIONS:
        assert s not in secs, s
    # The worst samples are listed in a table instead of drawn; the split is validation.
    worst = html[html.index('id="worst"'):html.index('id="codes"')]
    assert "<table" in worst and "<img" not in worst
    assert "validation split" in html


@pytest.mark.parametrize("missing", ["metrics.json", "history.jsonl", "model.safetensors"])
def test_missing_file_is_named(image_run, tmp_path, capsys, missing):
    d = tmp_path / "partial"
    shutil.copytree(image_run, d, ignore=shutil.ignore_patterns("checkpoints", "report.html"))
    (d / missing).unlink()
    with pytest.raises(FileNotFoundError, match=f"missing {re.escape(missing)}"):
        write_report(d)
    assert main(["report", str(d)]) == 2
    assert missing in capsys.readouterr().err
    assert not (d / "report.html").exists()


def test_other_major_version_and_bad_dir(image_run, tmp_path, capsys):
    d = tmp_path / "old"
    shutil.copytree(image_run, d, ignore=shutil.ignore_patterns("checkpoints", "report.html"))
    info = json.loads((d / "config.json").read_text())
    info["aekit_version"] = "7.2.0"
    (d / "config.json").write_text(json.dumps(info))
    with pytest.raises(ValueError, match="aekit 7.2.0"):
        write_report(d)
    assert main(["compare", str(image_run), str(d), "--output", str(tmp_path / "c.html")]) == 2
    assert "7.2.0" in capsys.readouterr().err and not (tmp_path / "c.html").exists()
    with pytest.raises(FileNotFoundError, match="run directory not found"):
        write_report(tmp_path / "nope")


def test_report_write_is_atomic(image_run, tmp_path, monkeypatch):
    out = tmp_path / "r.html"
    out.write_text("previous report")

    def boom(*a, **k):
        raise RuntimeError("plot failed")

    monkeypatch.setattr(plots, "rate_distortion_plot", boom)
    with pytest.raises(RuntimeError, match="plot failed"):
        write_report(image_run, out)
    assert out.read_text() == "previous report"
    fresh = tmp_path / "fresh.html"
    with pytest.raises(RuntimeError):
        write_report(image_run, fresh)
    assert not fresh.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.html"]  # no temporary left


def test_compare_runs(image_run, feature_run, tmp_path):
    other = tmp_path / "digits-copy"
    shutil.copytree(image_run, other, ignore=shutil.ignore_patterns("checkpoints"))
    out = tmp_path / "cmp.html"
    assert main(["compare", str(image_run), str(other), "--output", str(out)]) == 0
    html = out.read_text(encoding="utf-8")
    assert _sections(html) == ["metrics", "config", "curves", "rate-distortion"]
    assert ">digits<" in html and ">digits-copy<" in html
    assert "<script" not in html and "http" not in html
    assert "share every configuration key" in html
    # Different data: PCA only at each run's own code size, and the reason is given.
    html2 = write_comparison([image_run, feature_run], tmp_path / "cmp2.html").read_text()
    assert "different data settings" in html2 and "data.dataset" in html2
    with pytest.raises(ValueError, match="at least one"):
        write_comparison([], tmp_path / "x.html")


def test_png_uri_never_contains_http():
    from PIL import Image

    buf = io.BytesIO()
    Image.new("L", (3, 2), 7).save(buf, format="PNG")
    png = buf.getvalue()
    # Place bytes that base64-encode to "http" at a 3-byte boundary of the file.
    forged = png[:33] + base64.b64decode("httpAAAA") + png[33:]
    assert "http" in base64.b64encode(forged).decode()
    uri = png_data_uri(forged)
    assert "http" not in uri
    real = png_data_uri(png)
    img = Image.open(io.BytesIO(base64.b64decode(real.split(",", 1)[1])))
    assert img.size == (3, 2)
    with pytest.raises(ValueError, match="PNG"):
        png_data_uri(b"GIF89a")


def test_vae_run_report_has_the_variational_section(tmp_path, image_html):
    """A VAE run's report adds the variational section (prior samples, traversals,
    interpolation); other runs' reports do not."""
    out = tmp_path / "vae"
    assert main(["train", "--data", "digits", "--model", "vae", "--n-components", "4",
                 "--output", str(out), *FAST]) == 0
    html = write_report(out).read_text(encoding="utf-8")
    secs = _sections(html)
    assert "variational" in secs, secs
    # the run info names the loss as trained: the Bernoulli decoder's NLL plus the KL term
    from aekit.runs import read_run

    info = read_run(out)["info"]["objective"]
    assert (info["loss"], info["terms"]) == ("bernoulli_nll", ["kl"]), info
    assert "variational" not in _sections(image_html)
    assert secs[-1] == "config"
