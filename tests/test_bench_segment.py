"""benchmarks/image_segment.py --validation-only never scores a test image."""

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _data_zip():
    from aekit.data.datasets import data_dir

    try:
        path = Path(data_dir()) / "magnetic_tile_defects.zip"
    except Exception:  # no data directory configured at all
        return None
    return path if path.exists() else None


def _script():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    spec = importlib.util.spec_from_file_location("aekit_bench_segment",
                                                  ROOT / "benchmarks" / "image_segment.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_validation_only_mode_touches_no_test_image(tmp_path, monkeypatch):
    if _data_zip() is None:
        pytest.skip("magnetic_tile_defects.zip not found (set AEKIT_DATA to the shared data)")
    mod = _script()
    from aekit.images.segmentation import split_by_image

    real_load = mod.load_magnetic_tiles

    def poisoned(*args, **kwargs):
        # every test image becomes NaN: scoring one would need segment() on it
        ims, ms, labels = real_load(*args, **kwargs)
        te = split_by_image(labels, seed=0)[2]
        ims = ims.copy()
        ims[te] = np.nan
        return ims, ms, labels

    real_segment = mod.segment
    seen = []

    def guarded(model, image, **kw):
        assert not np.isnan(image).any(), "validation-only mode segmented a test image"
        seen.append(1)
        return real_segment(model, image, **kw)

    monkeypatch.setattr(mod, "load_magnetic_tiles", poisoned)
    monkeypatch.setattr(mod, "segment", guarded)
    monkeypatch.setattr(mod._common, "RESULTS", tmp_path)
    mod.main(["--quick", "--validation-only", "--models", "skips", "--epochs", "1",
              "--patches", "32", "--name", "seg_val_test"])
    out = json.loads((tmp_path / "seg_val_test.json").read_text())
    assert seen, "no validation image was segmented"
    assert [r["method"] for r in out["rows"]] == ["aekit U-Net (skips)"]
    assert "test images are not scored" in out["protocol"]["mode"]
    row = out["rows"][0]
    assert 0 <= row["pooled_iou"] <= row["pooled_dice"] <= 1, row  # IoU = D / (2 - D) <= D
    assert abs(row["pooled_iou"] - row["pooled_dice"] / (2 - row["pooled_dice"])) < 1e-3, row
