"""Random patches of images of mixed sizes as a data source for :func:`aekit.fit`.

:class:`PatchSource` holds a list of images (C, H, W) of any sizes and returns, for a batch of
indices, random ``p × p`` crops with random flips and 90° rotations (the 8 symmetries of the
square), optionally damaged on the fly into ``(damaged, clean)`` pairs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from ..data.batch import Batch
from .io import as_chw

__all__ = ["PatchSource", "dihedral"]


def dihedral(x: torch.Tensor, k: int) -> torch.Tensor:
    """One of the 8 symmetries of the square on the last two axes: ``k`` in 0..7 is
    ``rot90^(k mod 4)`` followed by a horizontal flip when ``k >= 4``."""
    y = torch.rot90(x, k % 4, dims=(-2, -1))
    return torch.flip(y, dims=(-1,)) if k >= 4 else y


class PatchSource:
    """``n_patches`` random patches per epoch from images of any sizes.

    ``take(idx)`` returns ``Batch(x=clean, x_tilde=damage(clean), y=None)`` for the indices
    asked. With ``fresh=True`` (training) every call draws new positions and symmetries from
    the source's own generator, so each epoch sees new patches; with ``fresh=False``
    (validation) patch ``i`` is always the same (drawn from ``seed`` and ``i``), damage
    included.

    Under ``torch.distributed`` with P > 1 processes (data-parallel :func:`aekit.fit`), fresh
    draws come from a stream per rank r, seeded from (``seed``, P, r): every process holds a
    copy of the source and is handed its own rows of the global batch, so one shared stream
    would give every process the same patches (a global batch of P identical halves). The
    one-process stream is unchanged.

    Images are picked with probability proportional to their number of possible patch
    positions, so every pixel is about equally likely to be seen.

    Parameters
    ----------
    images : sequence of array (C, H, W) or (H, W)
        All with the same C and sides >= ``patch_size``.
    patch_size : int
    n_patches : int
        ``len(source)``: patches per epoch.
    augment : bool
        Random flips / 90° rotations (the dihedral group D4).
    damage : callable ``(x, generator) -> x̃``, optional
        E.g. :class:`~aekit.images.GaussianNoise`; the loss target stays the clean patch.
    fresh : bool
    seed : int
    focus_channel : int, optional
        A channel of the images that marks pixels of interest (> 0.5), e.g. the mask channel
        of stacked (image, mask) pairs.
    focus_fraction : float
        In [0, 1]: the probability that a patch is centred on a pixel of interest instead of
        drawn uniformly. Such a patch takes a marked pixel uniformly over all marked pixels of
        all images, and puts it at a uniformly random position inside the patch, clamped at
        the image border. This is the "positive-centred" sampling of segmentation training
        for rare foreground: Ronneberger et al. 2015 weight the loss instead; the nnU-Net of
        Isensee et al. 2021, section "Training", forces a third of the patches onto
        foreground. With 0 (the default) the draws are exactly those of a source without
        focus.

    References
    ----------
    Zhang et al., "Beyond a Gaussian denoiser", IEEE TIP 2017, section IV-A (training on
    random 40×40 / 50×50 patches with flips and rotations).
    """

    def __init__(self, images: Sequence, patch_size: int = 48, n_patches: int = 4096, *,
                 augment: bool = True, damage: Callable | None = None, fresh: bool = True,
                 seed: int = 0, focus_channel: int | None = None, focus_fraction: float = 0.0):
        if len(images) == 0:
            raise ValueError("images is empty")
        self.images = [torch.from_numpy(as_chw(im, f"images[{i}]", any_channels=True)) for i, im in
                       enumerate(images)]
        p = int(patch_size)
        if p < 1 or int(n_patches) < 1:
            raise ValueError(f"patch_size and n_patches must be >= 1, got {patch_size}, "
                             f"{n_patches}")
        c = self.images[0].shape[0]
        for i, im in enumerate(self.images):
            if im.shape[0] != c:
                raise ValueError(f"images[{i}] has {im.shape[0]} channels, images[0] has {c}")
            if min(im.shape[1:]) < p:
                raise ValueError(f"images[{i}] of size {tuple(im.shape[1:])} is smaller than "
                                 f"patch_size={p}")
        self.patch_size, self.n_patches, self.channels = p, int(n_patches), c
        self.augment, self.damage, self.fresh, self.seed = bool(augment), damage, fresh, seed
        w = np.array([(im.shape[1] - p + 1) * (im.shape[2] - p + 1) for im in self.images],
                     np.float64)
        self._cum = torch.from_numpy(np.cumsum(w / w.sum()))
        self._g = torch.Generator().manual_seed(int(seed))
        self._rank_g: torch.Generator | None = None  # the stream of this rank (see above)
        self._rank_key: tuple[int, int] | None = None
        ff = float(focus_fraction)
        if not 0.0 <= ff <= 1.0:
            raise ValueError(f"focus_fraction must be in [0, 1], got {focus_fraction}")
        if ff > 0 and focus_channel is None:
            raise ValueError("focus_fraction > 0 needs focus_channel (the channel marking the "
                             "pixels to centre patches on)")
        self.focus_channel, self.focus_fraction = focus_channel, ff
        self._marked: list[torch.Tensor] = []
        if focus_channel is not None:
            fc = int(focus_channel)
            if not -c <= fc < c:
                raise ValueError(f"focus_channel={focus_channel} is not a channel of "
                                 f"{c}-channel images")
            # flat positions of the marked pixels of every image
            self._marked = [torch.nonzero(im[fc].flatten() > 0.5).flatten()
                            for im in self.images]
            counts = torch.tensor([len(t) for t in self._marked], dtype=torch.int64)
            if ff > 0 and int(counts.sum()) == 0:
                raise ValueError(f"focus_fraction={ff} but no image has a marked pixel (> 0.5) "
                                 f"in channel {focus_channel}")
            self._marked_end = torch.cumsum(counts, 0)  # exact integer bounds per image

    def __len__(self) -> int:
        return self.n_patches

    def _draw(self, m: int, g: torch.Generator) -> torch.Tensor:
        p = self.patch_size
        u = torch.rand(m, 4, generator=g, dtype=torch.float64)
        which = torch.searchsorted(self._cum, u[:, 0].contiguous()).clamp(max=len(self.images) - 1)
        focused = None
        if self.focus_fraction > 0:  # extra draws only when focusing: the default is unchanged
            v = torch.rand(m, 2, generator=g, dtype=torch.float64)
            focused = v[:, 0] < self.focus_fraction
            total = int(self._marked_end[-1])
            # one marked pixel uniformly over all marked pixels of all images
            r = (v[:, 1] * total).long().clamp(max=total - 1)
            pick = torch.searchsorted(self._marked_end, r, right=True)
        out = torch.empty(m, self.channels, p, p)
        for j in range(m):
            if focused is not None and bool(focused[j]):
                i = int(pick[j])
                im = self.images[i]
                first = int(self._marked_end[i]) - len(self._marked[i])
                pos = int(self._marked[i][int(r[j]) - first])
                py, px = divmod(pos, im.shape[2])
                # the marked pixel at a uniform offset inside the patch, clamped to the image
                y = min(max(py - int(u[j, 1] * p), 0), im.shape[1] - p)
                x = min(max(px - int(u[j, 2] * p), 0), im.shape[2] - p)
            else:
                im = self.images[int(which[j])]
                y = int(u[j, 1] * (im.shape[1] - p + 1))
                x = int(u[j, 2] * (im.shape[2] - p + 1))
            patch = im[:, y:y + p, x:x + p]
            if self.augment:
                patch = dihedral(patch, int(u[j, 3] * 8))
            out[j] = patch
        return out

    def take(self, idx: torch.Tensor) -> Batch:
        """Patches for ``idx``: fresh random ones, or the fixed patches ``idx``."""
        idx = torch.as_tensor(idx, dtype=torch.int64)
        if self.fresh:
            g = self._fresh_generator()
            x = self._draw(len(idx), g)
        else:
            parts, g = [], None
            for i in idx.tolist():
                gi = torch.Generator().manual_seed(int(self.seed) * 1_000_003 + int(i))
                parts.append(self._draw(1, gi))
                if self.damage is not None:
                    parts[-1] = (parts[-1], self.damage(parts[-1], gi))
            if self.damage is not None:
                x = torch.cat([a for a, _ in parts])
                return Batch(x, x_tilde=torch.cat([b for _, b in parts]))
            x = torch.cat(parts)
        if self.damage is None:
            return Batch(x)
        return Batch(x, x_tilde=self.damage(x, g))

    def all(self) -> Batch:
        """Every patch (full-batch optimisers)."""
        return self.take(torch.arange(len(self)))

    def _fresh_generator(self) -> torch.Generator:
        """The generator of fresh draws: the source's own in one process, else this rank's."""
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
            return self._g
        key = (dist.get_world_size(), dist.get_rank())
        if self._rank_key != key:
            world, rank = key
            seed = (int(self.seed) * 1_000_003 + 7_919 * world + 104_729 * (rank + 1)) % 2 ** 63
            self._rank_g, self._rank_key = torch.Generator().manual_seed(seed), key
        return self._rank_g

    def state_dict(self) -> dict:
        """The state of the fresh-draw generator (this rank's under torch.distributed)."""
        return {"generator": self._fresh_generator().get_state()}

    def load_state_dict(self, state: dict) -> None:
        self._fresh_generator().set_state(state["generator"])
