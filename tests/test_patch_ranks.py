"""PatchSource under data parallelism: each rank draws its own fresh patches.

Every process of a data-parallel ``fit`` holds a copy of the source and takes its rows of the
global batch. With one shared stream, both ranks would draw the same patches (a global batch
of two identical halves). The ranks are simulated by patching ``torch.distributed``'s
queries; the one-process stream must stay exactly what it was.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.distributed as dist

from aekit.images import GaussianNoise, PatchSource


def _images():
    rng = np.random.default_rng(0)
    return [rng.random((1, 40, 52)).astype(np.float32), rng.random((1, 33, 47)).astype(np.float32)]


def _as_rank(monkeypatch, world, rank):
    monkeypatch.setattr(dist, "is_available", lambda: True)
    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(dist, "get_world_size", lambda *a, **k: world)
    monkeypatch.setattr(dist, "get_rank", lambda *a, **k: rank)


def _draws(src, steps=3, m=8):
    out = []
    for s in range(steps):
        b = src.take(torch.arange(s * m, (s + 1) * m))
        out.append((b.x.clone(), b.x_tilde.clone()))
    return out


def test_one_process_stream_is_the_seeded_generator():
    src = PatchSource(_images(), 16, 64, damage=GaussianNoise(0.1), seed=5)
    ref = PatchSource(_images(), 16, 64, damage=GaussianNoise(0.1), seed=5)
    g = torch.Generator().manual_seed(5)  # the documented stream: the source's own generator
    x = ref._draw(8, g)
    got = src.take(torch.arange(8))
    assert torch.equal(got.x, x)
    assert torch.equal(got.x_tilde, GaussianNoise(0.1)(x, g))


@pytest.mark.parametrize("world", [2, 4])
def test_ranks_draw_different_patches_reproducibly(monkeypatch, world):
    per_rank = []
    for rank in range(world):
        _as_rank(monkeypatch, world, rank)
        a = _draws(PatchSource(_images(), 16, 64, damage=GaussianNoise(0.1), seed=5))
        b = _draws(PatchSource(_images(), 16, 64, damage=GaussianNoise(0.1), seed=5))
        for (xa, ta), (xb, tb) in zip(a, b, strict=True):  # same seed, rank, world: same draws
            assert torch.equal(xa, xb) and torch.equal(ta, tb)
        per_rank.append(a)
    for r in range(1, world):
        for (x0, t0), (xr, tr) in zip(per_rank[0], per_rank[r], strict=True):
            same = (x0 == xr).flatten(1).all(1).float().mean().item()
            assert same < 0.5, f"rank {r} repeats {same:.0%} of rank 0's patches"
            assert not torch.equal(t0 - x0, tr - xr), f"rank {r} repeats rank 0's noise"


def test_state_round_trip_is_the_rank_stream(monkeypatch):
    _as_rank(monkeypatch, 2, 1)
    src = PatchSource(_images(), 16, 64, seed=2)
    src.take(torch.arange(4))
    state = src.state_dict()
    after = src.take(torch.arange(4)).x
    src2 = PatchSource(_images(), 16, 64, seed=2)
    src2.load_state_dict(state)
    assert torch.equal(src2.take(torch.arange(4)).x, after)
    monkeypatch.setattr(dist, "get_world_size", lambda *a, **k: 1)  # one process again
    one = PatchSource(_images(), 16, 64, seed=2)
    assert torch.equal(src.take(torch.arange(4)).x, one.take(torch.arange(4)).x)
