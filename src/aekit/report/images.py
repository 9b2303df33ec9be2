"""The before/after section of an HTML report for image applications.

An image application (denoising, inpainting, document cleaning, colourisation, compression,
segmentation) turns an *input* image, possibly made by *damaging* a clean one, into an
*output*, to be compared with a *target* when one is known. :class:`ImageExample` holds those
images; :func:`image_outputs_section` draws them as embedded PNG thumbnails, one row per image,
with PSNR and SSIM against the target before (input / damaged) and after (output).

A run or an application records its examples with :func:`save_image_outputs` (PNG files and a
JSON manifest under ``DIR/image_outputs/``); :func:`aekit.report.write_report` then shows them
for a run directory, and :func:`write_image_report` writes a page of its own (``aekit denoise
... --report page.html``).
"""

from __future__ import annotations

import io
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .html import Section, esc, fmt, page, png_data_uri, table

__all__ = ["IMAGE_OUTPUTS_DIR", "ImageExample", "image_metrics", "image_outputs_section",
           "load_image_outputs", "save_image_outputs", "thumbnail_png", "write_image_report"]

#: Folder (inside a run directory or any output folder) holding the recorded examples.
IMAGE_OUTPUTS_DIR = "image_outputs"
_MANIFEST = "manifest.json"
ROLES = ("input", "damaged", "output", "target")
_NAME_OK = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass
class ImageExample:
    """One image through an application: ``input`` → (``damaged``) → ``output`` vs ``target``.

    Parameters
    ----------
    name : str
        Label of the row (a file name, a photo name).
    output : array (C, H, W), (H, W) or (H, W, C) in [0, 1]
        What the application returned.
    input : array, optional
        What the user had: the clean original when the damage was synthesised (then
        ``damaged`` is what the model saw), or the damaged file itself.
    damaged : array, optional
        The damaged version of ``input`` given to the model.
    target : array, optional
        The reference the output should match (clean image, true colours, true mask); the
        metrics need it.
    note : str
        Free text shown under the name (e.g. ``"σ = 0.2"``).
    """

    name: str
    output: np.ndarray
    input: np.ndarray | None = None
    damaged: np.ndarray | None = None
    target: np.ndarray | None = None
    note: str = ""
    metrics: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        from ..images.io import as_chw

        for role in ROLES:
            v = getattr(self, role)
            if v is not None:
                setattr(self, role, as_chw(v, f"{self.name}: {role}"))
        if self.output is None:
            raise ValueError(f"{self.name}: output is required")

    @property
    def before(self) -> np.ndarray | None:
        """The image the model was given (``damaged`` if any, else ``input``)."""
        return self.damaged if self.damaged is not None else self.input


def image_metrics(ex: ImageExample) -> dict[str, float]:
    """PSNR / SSIM of the example against its target, before and after.

    ``psnr_after = PSNR(target, output)``, ``ssim_after = SSIM(target, output)`` and, when the
    image the model was given has the target's shape, ``psnr_before`` / ``ssim_before`` of it
    (the damaged image, or the input). PSNR = 10 log10(1 / MSE) on [0, 1] pixels; SSIM as
    :func:`aekit.images.ssim` (scikit-image's defaults; NaN for sides under 7). Empty without
    a target.

    References
    ----------
    Wang, Bovik, Sheikh & Simoncelli, "Image quality assessment: from error visibility to
    structural similarity", IEEE TIP 13(4), 2004.
    """
    from ..images.metrics import psnr, ssim

    out: dict[str, float] = {}
    t = ex.target
    if t is None:
        return out

    def both(a):
        if a.shape != t.shape:
            return None, None
        s = ssim(t, a) if min(t.shape[1:]) >= 7 else float("nan")
        return psnr(t, np.clip(a, 0, 1)), s

    if ex.output.shape != t.shape:
        raise ValueError(f"{ex.name}: output {ex.output.shape} and target {t.shape} differ in "
                         "shape")
    out["psnr_after"], out["ssim_after"] = both(ex.output)
    b = ex.before
    if b is not None and b.shape == t.shape:
        out["psnr_before"], out["ssim_before"] = both(b)
    return out


def thumbnail_png(image, max_side: int = 192) -> tuple[bytes, int, int]:
    """PNG bytes of ``image`` ([0, 1], clipped) scaled so its longer side is at most
    ``max_side`` (Lanczos; never enlarged), with its width and height."""
    from PIL import Image

    from ..images.io import as_chw

    a = as_chw(image)
    q = np.rint(np.clip(a, 0, 1) * 255).astype(np.uint8)
    im = Image.fromarray(q[0]) if q.shape[0] == 1 else Image.fromarray(q.transpose(1, 2, 0))
    H, W = q.shape[1:]
    s = min(1.0, max_side / max(H, W))
    if s < 1:
        im = im.resize((max(1, round(W * s)), max(1, round(H * s))),
                       Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    im.save(buf, format="PNG", optimize=True)
    return buf.getvalue(), im.width, im.height


def _img(image, label: str, max_side: int) -> str:
    png, w, h = thumbnail_png(image, max_side)
    return (f'<img src="{png_data_uri(png)}" width="{w}" height="{h}" alt="{esc(label)}" '
            'style="image-rendering:auto">')


def image_outputs_section(examples: Sequence[ImageExample], *, title: str = "Before / after",
                          caption: str = "", max_side: int = 192,
                          section_id: str = "image-outputs") -> Section:
    """A report section: per image, thumbnails of input / damaged / output / target and
    PSNR (dB) and SSIM against the target before and after, then their means.

    Parameters
    ----------
    examples : sequence of ImageExample
    title, caption : str
        Section title; an optional paragraph (HTML) above the table.
    max_side : int
        Longer side of the thumbnails in pixels (metrics use the full images).

    Returns
    -------
    Section
        Pictures are base64 PNGs inside the page.
    """
    exs = list(examples)
    if not exs:
        raise ValueError("examples is empty: nothing to show")
    roles = [r for r in ROLES if any(getattr(e, r) is not None for e in exs)]
    rows, sums = [], {}
    for e in exs:
        e.metrics = image_metrics(e)
        for k, v in e.metrics.items():
            if v is not None and np.isfinite(v):
                sums.setdefault(k, []).append(v)
        label = f"<b>{esc(e.name)}</b>" + (f"<br><span class=\"muted\">{esc(e.note)}</span>"
                                            if e.note else "")
        m = e.metrics
        cells = [label]
        for r in roles:
            v = getattr(e, r)
            cells.append(_img(v, f"{e.name} {r}", max_side) if v is not None else "")
        cells += [_pair(m.get("psnr_before"), m.get("ssim_before")),
                  _pair(m.get("psnr_after"), m.get("ssim_after"))]
        rows.append(cells)
    header = ["image", *roles, "before: PSNR dB / SSIM", "after: PSNR dB / SSIM"]
    body = (f"<p>{caption}</p>" if caption else "") + table(rows, header, raw=True)
    if sums:
        mean = {k: float(np.mean(v)) for k, v in sums.items()}
        mrows = [("PSNR (dB)", mean.get("psnr_before", "n/a"), mean.get("psnr_after", "n/a")),
                 ("SSIM", mean.get("ssim_before", "n/a"), mean.get("ssim_after", "n/a"))]
        n = len(sums.get("psnr_after", []))
        body += (f"<p>Means over the {n} image(s) with a target (PSNR = 10 log₁₀(1 / MSE) on "
                 "[0, 1] pixels; SSIM with scikit-image's defaults, 7×7 window).</p>"
                 + table(mrows, ["metric", "before", "after"]))
    return Section(section_id, title, body)


def _pair(p, s) -> str:
    if p is None:
        return "–"
    return f"{fmt(round(float(p), 2))} / " + ("–" if s is None or not np.isfinite(s)
                                               else fmt(round(float(s), 4)))


def _safe(name: str) -> str:
    s = _NAME_OK.sub("_", name).strip("._") or "image"
    return s[:80]


def save_image_outputs(directory: str | os.PathLike, examples: Sequence[ImageExample], *,
                       title: str = "Before / after", caption: str = "") -> Path:
    """Record ``examples`` under ``directory/image_outputs/``: one PNG per image and role
    (16-bit for gray, so the metrics are recomputed within 1e-5 of the arrays'), and
    ``manifest.json`` naming them, with the metrics. Files are written atomically, the
    manifest last (a partial record has no manifest and is ignored). Returns the manifest
    path."""
    from ..images.io import write_image
    from ..io import atomic_write_json

    exs = list(examples)
    if not exs:
        raise ValueError("examples is empty: nothing to record")
    root = Path(directory) / IMAGE_OUTPUTS_DIR
    root.mkdir(parents=True, exist_ok=True)
    items, used = [], set()
    for i, e in enumerate(exs):
        stem = _safe(e.name)
        if stem in used:
            stem = f"{stem}_{i}"
        used.add(stem)
        files = {}
        for r in ROLES:
            v = getattr(e, r)
            if v is not None:
                fn = f"{stem}.{r}.png"
                write_image(root / fn, v, bits=16 if v.shape[0] == 1 else 8)
                files[r] = fn
        items.append({"name": e.name, "note": e.note, "files": files,
                      "metrics": {k: v for k, v in image_metrics(e).items() if v is not None}})
    path = root / _MANIFEST
    atomic_write_json(path, {"format": "aekit-image-outputs", "version": 1, "title": title,
                             "caption": caption, "images": items})
    return path


def load_image_outputs(directory: str | os.PathLike) -> tuple[list[ImageExample], dict] | None:
    """The examples recorded by :func:`save_image_outputs` in ``directory`` (or None when
    there is no record), with the manifest. File names in the manifest must be plain names
    inside the folder."""
    from ..images.io import read_image
    from ..io import FileFormatError

    root = Path(directory) / IMAGE_OUTPUTS_DIR
    path = root / _MANIFEST
    if not path.is_file():
        return None
    try:
        man = json.loads(path.read_text(encoding="utf-8"))
        items = man["images"]
        if man.get("format") != "aekit-image-outputs" or not isinstance(items, list):
            raise ValueError("not an aekit image-outputs manifest")
        exs = []
        for it in items:
            arrays = {}
            for r, fn in it["files"].items():
                if r not in ROLES or not isinstance(fn, str) or Path(fn).name != fn:
                    raise ValueError(f"bad entry {r!r}: {fn!r}")
                arrays[r] = read_image(root / fn, None)
            exs.append(ImageExample(str(it["name"]), note=str(it.get("note", "")), **arrays))
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise FileFormatError(f"{path}: damaged image-outputs manifest: {e}",
                              expected="a manifest written by save_image_outputs") from None
    return exs, man


def run_image_outputs_section(run_dir: str | os.PathLike) -> Section | None:
    """The before/after section of a run directory that recorded image outputs, else None."""
    rec = load_image_outputs(run_dir)
    if rec is None:
        return None
    exs, man = rec
    return image_outputs_section(exs, title=str(man.get("title") or "Before / after"),
                                 caption=esc(str(man.get("caption") or "")))


def write_image_report(path: str | os.PathLike, examples: Sequence[ImageExample], *,
                       title: str = "aekit image application", intro: str = "",
                       caption: str = "", max_side: int = 256) -> Path:
    """Write a self-contained HTML page with :func:`image_outputs_section` (atomically);
    returns its path. ``intro`` is HTML."""
    from ..io import atomic_write_text

    sec = image_outputs_section(examples, caption=caption, max_side=max_side)
    atomic_write_text(path, page(title, intro or "<p>Before / after, with PSNR and SSIM "
                                 "against the target where one is known.</p>", [sec]))
    return Path(path)
