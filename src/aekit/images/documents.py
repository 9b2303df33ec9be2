"""Document cleaning: rendered text pages, synthetic scan damage, a page-cleaning U-Net.

Clean pages are rendered with Pillow fonts (TrueType fonts found on the system by a
deterministic search, else Pillow's built-in font): white paper (1.0), black ink (0.0),
antialiased glyph edges. :class:`ScanDamage` turns a clean page into a "scanned" one (blur,
uneven illumination, stains, coffee rings, creases, speckle) on the fly, in absolute pixel
units so that 64×64 training patches and whole pages see the same damage statistics. A U-Net
trained on (damaged, clean) patches cleans whole pages of any size by tiled inference
(:func:`clean_document`); :func:`char_agreement` scores the result at the character level.

References
----------
Sauvola & Pietikäinen, "Adaptive document image binarization", Pattern Recognition 33 (2000)
225–236 (the adaptive-threshold baseline); Otsu, "A threshold selection method from gray-level
histograms", IEEE Trans. SMC 9 (1979) 62–66; Ronneberger et al., "U-Net", MICCAI 2015.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .damage import Damage, check_image_batch, uniform_noise
from .io import as_chw

__all__ = ["FONT_DIRS", "Page", "ScanDamage", "binarise", "char_agreement", "clean_document",
           "find_fonts", "render_page", "render_pages", "train_document_cleaner"]

#: Folders searched (recursively, sorted) for TrueType / OpenType fonts.
FONT_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts", "/Library/Fonts",
             "/System/Library/Fonts", "C:/Windows/Fonts")

_LETTERS = "abcdefghijklmnopqrstuvwxyz"
_FREQ = np.array([8.2, 1.5, 2.8, 4.3, 12.7, 2.2, 2.0, 6.1, 7.0, 0.15, 0.77, 4.0, 2.4, 6.7, 7.5,
                  1.9, 0.095, 6.0, 6.3, 9.1, 2.8, 0.98, 2.4, 0.15, 2.0, 0.074])


def find_fonts(dirs: Sequence[str | os.PathLike] | None = None) -> list[Path]:
    """Regular-weight, upright TrueType/OpenType fonts on this system, sorted by path.

    Searches ``dirs`` (default :data:`FONT_DIRS`) recursively for ``*.ttf`` / ``*.otf`` and
    drops bold, italic/oblique, condensed/narrow, mono-maths and symbol fonts; the result is
    sorted so that the same system always gives the same list (no download, no font cache).
    An empty list means Pillow's built-in font is used.
    """
    skip = ("bold", "italic", "oblique", "condensed", "narrow", "math", "symbol", "emoji",
            "light", "extralight")
    out = []
    for d in (FONT_DIRS if dirs is None else dirs):
        p = Path(d)
        if not p.is_dir():
            continue
        for f in p.rglob("*"):
            if f.suffix.lower() in (".ttf", ".otf") and f.is_file() and \
                    not any(s in f.name.lower() for s in skip):
                out.append(f)
    return sorted(set(out))


def _font(path: Path | None, px: int):
    from PIL import ImageFont
    if path is not None:
        return ImageFont.truetype(str(path), px)
    try:
        return ImageFont.load_default(size=px)
    except TypeError:  # Pillow < 10.1: a fixed bitmap font
        return ImageFont.load_default()


@dataclass
class Page:
    """A rendered clean page.

    Attributes
    ----------
    image : ndarray float32 (1, H, W)
        Paper 1.0, ink 0.0 (antialiased edges in between).
    boxes : ndarray int (k, 4)
        ``(x0, y0, x1, y1)`` (x1, y1 exclusive) of every non-space character's ink.
    chars : str
        The k characters, in the order of ``boxes``.
    font : str
        The font file (or ``"<pillow default>"``) and pixel size.
    """

    image: np.ndarray
    boxes: np.ndarray
    chars: str
    font: str = ""
    lines: list[str] = field(default_factory=list)


def render_page(seed: int, size: tuple[int, int] = (256, 256), *,
                font_px: tuple[int, int] = (11, 18), fonts: Sequence[Path] | None = None,
                margin: int = 8) -> Page:
    """Render one clean page of random text, deterministically from ``seed``.

    Words of 1–9 letters drawn with English letter frequencies (some capitalised, some
    followed by punctuation or replaced by numbers), laid out in left-aligned lines with a
    line spacing of 1.2–1.6 font sizes, one font (from :func:`find_fonts`, else Pillow's
    default) and one size in ``font_px`` per page. Characters are drawn one at a time so the
    ink box of every character is known (kerning is ignored).

    Parameters
    ----------
    seed : int
    size : (H, W)
    font_px : (lo, hi)
        Font size range in pixels (inclusive).
    fonts : list of font paths, optional
        Default :func:`find_fonts`; an empty list uses Pillow's built-in font.
    margin : int

    Returns
    -------
    Page
    """
    from PIL import Image, ImageDraw

    H, W = int(size[0]), int(size[1])
    if H < 16 or W < 16:
        raise ValueError(f"size must be at least 16x16, got {size}")
    rng = np.random.default_rng(int(seed))
    fonts = find_fonts() if fonts is None else list(fonts)
    path = fonts[int(rng.integers(len(fonts)))] if fonts else None
    px = int(rng.integers(font_px[0], font_px[1] + 1))
    font = _font(path, px)
    im = Image.new("L", (W, H), 255)
    draw = ImageDraw.Draw(im)
    spacing = px * float(rng.uniform(1.2, 1.6))
    p = _FREQ / _FREQ.sum()
    boxes, chars, lines = [], [], []
    y = margin + float(rng.uniform(0, px))
    while y + px < H - margin // 2:
        x = margin + float(rng.uniform(0, 2 * px)) * (rng.random() < 0.2)
        line = []
        while True:
            r = rng.random()
            if r < 0.08:
                word = str(int(rng.integers(0, 10 ** int(rng.integers(1, 5)))))
            else:
                n = int(rng.integers(1, 10))
                word = "".join(rng.choice(list(_LETTERS), n, p=p))
                if r < 0.25:
                    word = word.capitalize()
                if rng.random() < 0.12:
                    word += str(rng.choice(list(".,;:")))
            wlen = font.getlength(word)
            if x + wlen > W - margin:
                break
            for ch in word:
                xy = (int(round(x)), int(round(y)))  # integer origins: box and ink agree
                bb = draw.textbbox(xy, ch, font=font)
                draw.text(xy, ch, fill=0, font=font)
                x0, y0, x1, y1 = (max(0, bb[0]), max(0, bb[1]), min(W, bb[2]), min(H, bb[3]))
                if x1 > x0 and y1 > y0:
                    boxes.append((x0, y0, x1, y1))
                    chars.append(ch)
                x += font.getlength(ch)
            x += font.getlength(" ")
            line.append(word)
        lines.append(" ".join(line))
        y += spacing
    a = np.asarray(im, np.float32)[None] / 255.0
    name = str(path) if path is not None else "<pillow default>"
    return Page(np.ascontiguousarray(a), np.array(boxes, np.int64).reshape(-1, 4),
                "".join(chars), f"{name} {px}px", lines)


def render_pages(seeds: Sequence[int], size: tuple[int, int] = (256, 256), **kwargs
                 ) -> list[Page]:
    """:func:`render_page` for every seed (the font list is searched once)."""
    fonts = kwargs.pop("fonts", None)
    fonts = find_fonts() if fonts is None else fonts
    return [render_page(s, size, fonts=fonts, **kwargs) for s in seeds]


# --- scan damage ---------------------------------------------------------------------------
def _grid(H: int, W: int) -> tuple[np.ndarray, np.ndarray]:
    return (np.arange(H, dtype=np.float32)[:, None], np.arange(W, dtype=np.float32)[None, :])


def stain_field(H: int, W: int, cy: float, cx: float, ry: float, rx: float,
                strength: float) -> np.ndarray:
    """Multiplicative stain ``s(p) = 1 − strength · b(p)``, (H, W).

    ``b(p) = max(0, 1 − r²)²`` with ``r² = ((y − cy)/ry)² + ((x − cx)/rx)²``: a smooth blob
    that is exactly 1 (no change) outside the ellipse ``r ≥ 1``.
    """
    yy, xx = _grid(H, W)
    r2 = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2
    return (1 - strength * np.clip(1 - r2, 0, None) ** 2).astype(np.float32)


def ring_field(H: int, W: int, cy: float, cx: float, radius: float, width: float,
               strength: float) -> np.ndarray:
    """Coffee ring ``s(p) = 1 − strength · max(0, 1 − ((‖p − c‖ − R)/w)²)²``, (H, W): a dark
    annulus of radius R and half-width w, exactly 1 where ``|‖p − c‖ − R| ≥ w``."""
    yy, xx = _grid(H, W)
    d = np.sqrt((yy - cy) ** 2 + (xx - cx) ** 2)
    return (1 - strength * np.clip(1 - ((d - radius) / width) ** 2, 0, None) ** 2
            ).astype(np.float32)


def crease_field(H: int, W: int, y0: float, x0: float, angle: float, strength: float,
                 shade: float) -> np.ndarray:
    """A fold line through ``(y0, x0)`` at ``angle``: a dark line of Gaussian profile (σ = 1
    px, depth ``strength``) and a shadow ``1 − shade`` on one side, (H, W)."""
    yy, xx = _grid(H, W)
    d = (yy - y0) * np.cos(angle) - (xx - x0) * np.sin(angle)  # signed distance to the line
    line = 1 - strength * np.exp(-0.5 * d ** 2)
    return (line * np.where(d > 0, 1 - shade, 1.0)).astype(np.float32)


def illumination_field(H: int, W: int, level: float, gy: float, gx: float, oy: float,
                       ox: float) -> np.ndarray:
    """Uneven lighting ``ℓ(p) = level · (1 + gy (y + oy) + gx (x + ox))``, clipped to
    [0.3, 1.2], (H, W): a linear gradient in absolute page coordinates (``oy, ox`` the patch's
    offset on the page)."""
    yy, xx = _grid(H, W)
    return np.clip(level * (1 + gy * (yy + oy) + gx * (xx + ox)), 0.3, 1.2).astype(np.float32)


def _blur(x: np.ndarray, sigma: float) -> np.ndarray:
    from scipy.ndimage import gaussian_filter
    if sigma <= 0:
        return x
    return gaussian_filter(x, (0, sigma, sigma), mode="nearest", truncate=3.0)


class ScanDamage(Damage):
    """Synthetic scan damage on clean pages (n, C, H, W) in [0, 1], drawn per image.

    In order: Gaussian blur (σ ~ U[0, ``blur``], with probability 0.7); uneven illumination
    (:func:`illumination_field`: level U[0.75, 1], gradient up to ``0.4/256`` per pixel);
    ``stains`` stains (each with probability 0.6: :func:`stain_field`, radii 8–60 px, depth
    0.15–0.55); a coffee ring (probability 0.4, :func:`ring_field`, radius 15–70 px);
    a crease (probability 0.4, :func:`crease_field`); speckle (probability 0.8: each pixel
    with probability U[0, ``speckle``] becomes dark, U[0, 0.5]) and sensor noise σ ~ U[0,
    0.04]. ``x̃ = clip(ℓ · Π s_k · blur(x) + ε, 0, 1)`` with speckle applied last. The mask
    (n, 1, H, W) marks the pixels changed by more than 0.02.

    Positions are drawn over a virtual page of ``page`` pixels (the patch at a random offset
    in it), so a 64×64 patch sees the same local damage as a region of a whole page.

    References
    ----------
    Baird, "The state of the art of document image degradation modelling", in Digital
    Document Processing (2007), section 2 (blur, speckle, illumination, stains).
    """

    name = "scan"

    def __init__(self, *, blur: float = 1.0, stains: int = 2, speckle: float = 0.01,
                 page: int = 256):
        if blur < 0 or int(stains) < 0 or not 0 <= speckle < 1 or int(page) < 1:
            raise ValueError(f"need blur >= 0, stains >= 0, 0 <= speckle < 1, page >= 1; got "
                             f"{blur}, {stains}, {speckle}, {page}")
        self.blur, self.stains, self.speckle, self.page = float(blur), int(stains), \
            float(speckle), int(page)

    def with_mask(self, x: torch.Tensor, generator: torch.Generator | None = None
                  ) -> tuple[torch.Tensor, torch.Tensor]:
        check_image_batch(x)
        n, _, H, W = x.shape
        P = max(self.page, H, W)
        out = torch.empty_like(x)
        for i in range(n):
            u = uniform_noise((40,), generator).double().numpy()
            oy, ox = u[0] * (P - H), u[1] * (P - W)  # patch offset on the virtual page
            xi = x[i].detach().cpu().numpy().astype(np.float32)
            y = _blur(xi, u[2] * self.blur) if u[3] < 0.7 else xi.copy()
            f = illumination_field(H, W, 0.75 + 0.25 * u[4], (u[5] - 0.5) * 0.8 / P,
                                   (u[6] - 0.5) * 0.8 / P, oy, ox)
            for k in range(self.stains):
                a = u[7 + 5 * k: 12 + 5 * k] if 12 + 5 * k <= 27 else uniform_noise(
                    (5,), generator).double().numpy()
                if a[0] < 0.6:
                    f = f * stain_field(H, W, a[1] * P - oy, a[2] * P - ox, 8 + 52 * a[3],
                                        8 + 52 * a[4], 0.15 + 0.4 * a[0] / 0.6)
            if u[27] < 0.4:
                f = f * ring_field(H, W, u[28] * P - oy, u[29] * P - ox, 15 + 55 * u[30],
                                   1.5 + 3 * u[31], 0.2 + 0.3 * u[32])
            if u[33] < 0.4:
                f = f * crease_field(H, W, u[34] * P - oy, u[35] * P - ox, np.pi * u[36],
                                     0.2 + 0.4 * u[37], 0.1 * u[38])
            y = y * f
            if u[39] < 0.8:
                s = float(uniform_noise((1,), generator)) * 0.04
                y = y + s * torch.randn(y.shape, generator=generator).numpy()
                p = float(uniform_noise((1,), generator)) * self.speckle
                hit = uniform_noise((1, H, W), generator).numpy() < p
                y = np.where(hit, 0.5 * uniform_noise((1, H, W), generator).numpy(), y)
            out[i] = torch.from_numpy(np.clip(y, 0, 1).astype(np.float32))
        return out, ((out - x).abs().amax(1, keepdim=True) > 0.02).to(x.dtype)


# --- binarisation and scores -----------------------------------------------------------------
def binarise(image, method: str | float = "otsu", *, window_size: int = 25,
             k: float = 0.2) -> np.ndarray:
    """Ink mask (H, W) bool of a grayscale page (True = ink, dark).

    ``method``: a number t (ink where ``x < t``), ``"otsu"`` (global threshold maximising the
    between-class variance, Otsu 1979) or ``"sauvola"`` (local threshold
    ``T = m (1 + k (s / R − 1))`` over a ``window_size`` window, R = 0.5 for [0, 1] images;
    Sauvola & Pietikäinen 2000, eq. 5), both from scikit-image.
    """
    x = as_chw(image, "image")
    if x.shape[0] != 1:
        raise ValueError(f"image must be grayscale (1 channel), got {x.shape[0]} channels")
    g = x[0].astype(np.float64)
    if isinstance(method, int | float):
        return g < float(method)
    if method == "otsu":
        from skimage.filters import threshold_otsu
        if g.min() == g.max():
            return np.zeros(g.shape, bool)
        return g < threshold_otsu(g)
    if method == "sauvola":
        from skimage.filters import threshold_sauvola
        return g < threshold_sauvola(g, window_size=window_size, k=k, r=0.5)
    raise ValueError(f"method must be a threshold, 'otsu' or 'sauvola', got {method!r}")


def char_agreement(reference_ink, ink, boxes, *, min_iou: float = 0.75
                   ) -> dict[str, float]:
    """Character-level agreement of an ink mask with the reference ink.

    For every character box ``B_c`` (from :class:`Page`), ``IoU_c = |R ∩ P| / |R ∪ P|``
    restricted to ``B_c`` (R reference ink, P predicted ink; 1 when both are empty). A
    character *agrees* when ``IoU_c ≥ min_iou``. Also the ink F1 over the whole page,
    ``2 |R ∩ P| / (|R| + |P|)``, and the fraction of pixels where P ≠ R (bit error rate).

    Returns
    -------
    dict
        ``char_agreement`` (fraction of characters that agree), ``char_iou`` (mean IoU_c),
        ``ink_f1``, ``pixel_error``.
    """
    R = np.asarray(reference_ink, bool)
    P = np.asarray(ink, bool)
    if R.shape != P.shape:
        raise ValueError(f"reference_ink {R.shape} and ink {P.shape} differ in shape")
    b = np.asarray(boxes, np.int64).reshape(-1, 4)
    ious = []
    for x0, y0, x1, y1 in b:
        r, p = R[y0:y1, x0:x1], P[y0:y1, x0:x1]
        u = np.logical_or(r, p).sum()
        ious.append(1.0 if u == 0 else np.logical_and(r, p).sum() / u)
    ious = np.array(ious, np.float64)
    tot = R.sum() + P.sum()
    return {"char_agreement": float((ious >= min_iou).mean()) if len(ious) else float("nan"),
            "char_iou": float(ious.mean()) if len(ious) else float("nan"),
            "ink_f1": 1.0 if tot == 0 else float(2 * np.logical_and(R, P).sum() / tot),
            "pixel_error": float((R != P).mean())}


# --- model -------------------------------------------------------------------------------------
def train_document_cleaner(pages: Sequence | None = None, *, n_pages: int = 24,
                           features: int = 16, depth: int = 3, patch_size: int = 64,
                           n_patches: int = 2048, max_iter: int = 8, batch_size: int = 16,
                           learning_rate: float = 1e-3, damage: Damage | None = None,
                           val_images: Sequence | None = None,
                           time_budget_s: float | None = None, random_state: int = 0,
                           progress: bool | None = None, **fit_kwargs):
    """A page-cleaning U-Net trained on (scan-damaged, clean) patches made on the fly.

    ``min_θ E ‖f_θ(D(x)) − x‖²`` over random ``patch_size``² patches of clean pages x (with
    flips/rotations) and fresh :class:`ScanDamage` draws D; U-Net with skips, ``features``
    channels, ``depth`` levels, sigmoid output. Pages default to ``n_pages`` rendered pages
    (seeds ``random_state·10⁶ + 0..n_pages−1``, 256×256); a validation set of 4 more pages
    keeps the best epoch (or pass ``val_images``). ``max_iter`` epochs of ``n_patches``
    patches, Adam step ``learning_rate``. Other keywords go to :func:`aekit.fit`.
    The old keywords ``epochs``, ``lr``, ``seed`` still work until the
    next release, with a ``FutureWarning``.

    Returns
    -------
    (UNetAE, History)
    """
    from ..models import UNetAE
    from ..objectives import Objective
    from .colour import fit_patches, resolve_renamed_training
    from .patches import PatchSource

    max_iter, learning_rate, random_state = resolve_renamed_training(
        "aekit.images.train_document_cleaner", fit_kwargs, max_iter, learning_rate,
        random_state, (8, 1e-3, 0))
    seed = random_state

    val = val_images
    if pages is None:
        base = int(seed) * 10 ** 6
        pages = [p.image for p in render_pages(range(base, base + n_pages))]
        if val is None:
            val = [p.image for p in render_pages(range(base + 900_000, base + 900_004))]
    imgs = [as_chw(p.image if isinstance(p, Page) else p, f"pages[{i}]")
            for i, p in enumerate(pages)]
    for i, im in enumerate(imgs):
        if im.shape[0] != 1:
            raise ValueError(f"pages[{i}] must be grayscale (1 channel), got {im.shape[0]}")
    torch.manual_seed(seed)
    m = UNetAE(1, features=features, depth=depth, output="sigmoid")
    dmg = damage or ScanDamage()
    src = PatchSource(imgs, patch_size, n_patches, damage=dmg, seed=seed)
    vsrc = None
    if val:
        vsrc = PatchSource([as_chw(v, f"val_images[{i}]") for i, v in enumerate(val)],
                           patch_size, max(64, n_patches // 8), damage=dmg, fresh=False,
                           seed=seed + 1)
    h = fit_patches(m, Objective("mse"), src, vsrc, max_iter=max_iter, batch_size=batch_size,
                    learning_rate=learning_rate, time_budget_s=time_budget_s,
                    random_state=random_state, progress=progress, **fit_kwargs)
    return m, h


def clean_document(model: nn.Module, image, *, tile: int = 128, overlap: int = 32
                   ) -> np.ndarray:
    """Clean a whole scanned page of any size: ``clip(f(x), 0, 1)`` by overlapping, blended
    tiles (:func:`aekit.images.predict_tiled`).

    Parameters
    ----------
    model : UNetAE (1 channel in and out), or any image-to-image model
    image : array (H, W) or (1, H, W), values in [0, 1]

    Returns
    -------
    ndarray float32 (1, H, W)
    """
    from .tiling import predict_tiled

    x = as_chw(image, "image")
    cin = getattr(model, "in_channels", 1)
    if x.shape[0] != cin:
        raise ValueError(f"image has {x.shape[0]} channels, the document model expects {cin} "
                         "(read the page in grayscale, mode 'L')")
    m = getattr(model, "multiple", 1)
    if min(x.shape[1:]) < m:
        raise ValueError(f"image {x.shape[1]}x{x.shape[2]} is smaller than the model's minimum "
                         f"size {m}x{m}")
    return np.clip(predict_tiled(model, x, tile=tile, overlap=overlap), 0, 1)
