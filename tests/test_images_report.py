"""The before/after section of the HTML report: right images, right numbers, clear errors."""

from __future__ import annotations

import base64
import io
import json
import re

import numpy as np
import pytest
import torch

import aekit
from aekit.cli import main
from aekit.images import psnr, read_image, ssim, write_image
from aekit.io import FileFormatError
from aekit.models import DnCNN
from aekit.report import write_report
from aekit.report.images import (
    ImageExample,
    image_metrics,
    image_outputs_section,
    load_image_outputs,
    save_image_outputs,
    thumbnail_png,
    write_image_report,
)


def _pngs(html: str) -> list[np.ndarray]:
    from PIL import Image

    out = []
    for b64 in re.findall(r'src="data:image/png;base64,([^"]+)"', html):
        out.append(np.asarray(Image.open(io.BytesIO(base64.b64decode(b64)))))
    return out


def _ramp(h=24, w=20, c=1):
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    a = (x / (w - 1) * 0.6 + y / (h - 1) * 0.3)[None]
    return np.repeat(a, c, 0)


def test_metrics_are_psnr_and_ssim_against_the_target_before_and_after():
    t = np.zeros((1, 16, 16), np.float32)
    ex = ImageExample("flat", output=t + 0.1, input=t + 0.5, damaged=t + 0.2, target=t)
    m = image_metrics(ex)
    # PSNR = 10 log10(1 / d²) for a constant error d
    assert m["psnr_after"] == pytest.approx(20.0, abs=1e-4), m
    assert m["psnr_before"] == pytest.approx(-20 * np.log10(0.2), abs=1e-4), m  # the damaged
    r, n = _ramp(), _ramp() + 0.05 * np.cos(np.arange(20, dtype=np.float32))
    m = image_metrics(ImageExample("ramp", output=n, input=r, target=r))
    assert m["psnr_before"] == float("inf")
    assert m["ssim_after"] == pytest.approx(ssim(r, n), abs=1e-9)
    assert m["psnr_after"] == pytest.approx(psnr(r, n), abs=1e-9)
    assert image_metrics(ImageExample("no target", output=r)) == {}


def test_section_shows_every_role_as_a_thumbnail_with_the_numbers():
    r = _ramp(40, 30)
    noisy = np.clip(r + 0.1 * np.sin(np.arange(30, dtype=np.float32) * 3), 0, 1)
    out = np.clip(r + 0.02, 0, 1)
    exs = [ImageExample("ramp.png", output=out, input=r, damaged=noisy, target=r, note="σ"),
           ImageExample("second", output=out[:, :20, :20], input=r[:, :20, :20])]
    sec = image_outputs_section(exs, max_side=16)
    imgs = _pngs(sec.body)
    assert len(imgs) == 4 + 2, len(imgs)  # input, damaged, output, target + input, output
    # the first thumbnail is the input, scaled to a longer side of 16 (40x30 -> 16x12)
    assert imgs[0].shape == (16, 12), imgs[0].shape
    png, w, h = thumbnail_png(r, 16)
    assert (w, h) == (12, 16)
    from PIL import Image
    np.testing.assert_array_equal(imgs[0], np.asarray(Image.open(io.BytesIO(png))))
    # before = the damaged image, after = the output, both against the target
    pb, pa = psnr(r, noisy), psnr(r, out)
    assert f"{round(pb, 2):.5g}" in sec.body and f"{round(pa, 2):.5g}" in sec.body, sec.body
    assert f"{round(ssim(r, out), 4):.5g}" in sec.body
    for col in ("input", "damaged", "output", "target"):
        assert f"<th>{col}</th>" in sec.body
    # the mean row covers the one image with a target
    assert "Means over the 1 image(s)" in sec.body
    # small images (a side < 7) have no SSIM but still a PSNR
    tiny = np.full((1, 4, 4), 0.5, np.float32)
    sec = image_outputs_section([ImageExample("tiny", output=tiny, target=tiny * 0)])
    assert "6.02 / –" in sec.body, sec.body


def test_section_errors_name_the_problem():
    with pytest.raises(ValueError, match="examples is empty"):
        image_outputs_section([])
    with pytest.raises(ValueError, match="x: output .* and target .* differ"):
        image_metrics(ImageExample("x", output=np.zeros((1, 8, 8)), target=np.zeros((1, 9, 8))))
    with pytest.raises(ValueError, match="y: target"):
        ImageExample("y", output=np.zeros((1, 8, 8)), target=np.full((1, 8, 8), np.nan))


def test_record_round_trip_and_damaged_manifest(tmp_path):
    r = _ramp(20, 18)
    c = _ramp(20, 18, 3)
    exs = [ImageExample("a/b c.png", output=r * 0.9, input=r, target=r),
           ImageExample("rgb", output=c, damaged=c * 0.5)]
    path = save_image_outputs(tmp_path, exs, title="T", caption="C")
    man = json.loads(path.read_text())
    assert [it["name"] for it in man["images"]] == ["a/b c.png", "rgb"]
    assert man["images"][0]["files"] == {"input": "a_b_c.png.input.png",
                                         "output": "a_b_c.png.output.png",
                                         "target": "a_b_c.png.target.png"}
    assert man["images"][0]["metrics"]["psnr_after"] == pytest.approx(psnr(r, r * 0.9))
    back, m2 = load_image_outputs(tmp_path)
    # gray is stored in 16 bits, RGB in 8
    np.testing.assert_allclose(back[0].output, r * 0.9, atol=1 / 65535)
    np.testing.assert_allclose(back[1].damaged, c * 0.5, atol=0.5 / 255 + 1e-6)
    assert back[1].target is None and m2["title"] == "T"
    assert load_image_outputs(tmp_path / "nothing") is None
    man["images"][0]["files"]["output"] = "../../etc/passwd"
    path.write_text(json.dumps(man))
    with pytest.raises(FileFormatError, match="manifest.json.*bad entry 'output'"):
        load_image_outputs(tmp_path)


def test_run_report_includes_recorded_outputs(tmp_path):
    out = tmp_path / "run"
    assert main(["train", "--data", "digits", "--n-components", "4", "--output", str(out),
                 "--max-iter", "1", "--hidden-layer-sizes", "16", "--no-progress",
                 "--no-report"]) == 0
    html = write_report(out).read_text(encoding="utf-8")
    assert 'id="image-outputs"' not in html  # nothing recorded: no section
    r = _ramp()
    save_image_outputs(out, [ImageExample("digit", output=r + 0.1, input=r, target=r)],
                       title="Denoised digits")
    html = write_report(out).read_text(encoding="utf-8")
    assert '<section id="image-outputs"><h2>Denoised digits</h2>' in html
    assert f"{round(psnr(r, r + 0.1), 2):.5g}" in html  # 20 dB
    assert html.index('id="image-outputs"') < html.index('id="config"')
    # a damaged record becomes a note, the report is still written
    (out / "image_outputs" / "manifest.json").write_text("{not json")
    html = write_report(out).read_text(encoding="utf-8")
    assert "Image outputs (skipped)" in html and "damaged image-outputs manifest" in html


def test_standalone_page_and_cli_report(tmp_path, capsys):
    r = _ramp(32, 28)
    noisy = np.clip(r + 0.08 * np.cos(np.arange(28, dtype=np.float32) * 2.1), 0, 1)
    p = write_image_report(tmp_path / "page.html", [ImageExample("x", output=r, input=noisy,
                                                                 target=r)])
    assert len(_pngs(p.read_text())) == 3
    # the CLI: an identity denoiser (the noise head is zero), so the output is the input
    m = DnCNN(1, features=4, depth=3, batch_norm=False)
    with torch.no_grad():
        m.head.weight.zero_()
        m.head.bias.zero_()
    aekit.save_model(m, tmp_path / "id.safetensors")
    write_image(tmp_path / "noisy.png", noisy, bits=16)
    write_image(tmp_path / "clean.png", r, bits=16)
    rc = main(["denoise", str(tmp_path / "noisy.png"), "-o", str(tmp_path / "out.png"),
               "--model", str(tmp_path / "id.safetensors"), "--reference",
               str(tmp_path / "clean.png"), "--report", str(tmp_path / "den.html")])
    assert rc == 0
    html = (tmp_path / "den.html").read_text()
    imgs = _pngs(html)
    assert len(imgs) == 3, len(imgs)  # input, output, target
    x = read_image(tmp_path / "noisy.png", "L")
    pin = psnr(read_image(tmp_path / "clean.png", "L"), x)
    assert html.count(f"{round(pin, 2):.5g} /") == 2, html  # before == after (identity)
    # a reference of the wrong size is refused before anything is written
    write_image(tmp_path / "small.png", r[:, :10, :10])
    rc = main(["denoise", str(tmp_path / "noisy.png"), "-o", str(tmp_path / "o2.png"),
               "--model", str(tmp_path / "id.safetensors"), "--reference",
               str(tmp_path / "small.png"), "--report", str(tmp_path / "r2.html")])
    err = capsys.readouterr().err
    assert rc == 2 and re.search(r"--reference \S*small.png is 10x10x1", err), (rc, err)
    assert not (tmp_path / "o2.png").exists() and not (tmp_path / "r2.html").exists()
