"""Shared fixtures. Real datasets are looked up in $AEKIT_DATA or ../shared/data."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from aekit.data import data_dir

os.environ.setdefault("CI", "true")  # tests never draw progress bars


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def blobs():
    """Factory ``blobs(n, d=20, k=4, seed=0) -> (X, y)``: n points in [0, 1]^d around k
    uniform random centres (Gaussian spread 0.15, clipped), float32, with their centre ids."""

    def make(n, d=20, k=4, seed=0):
        r = np.random.default_rng(seed)
        centres = r.random((k, d))
        y = r.integers(0, k, n)
        X = np.clip(centres[y] + 0.15 * r.standard_normal((n, d)), 0, 1).astype(np.float32)
        return X, y

    return make


@pytest.fixture(scope="session")
def digits():
    from aekit.data import load_digits

    return load_digits()


@pytest.fixture(scope="session")
def mnist_path() -> Path:
    p = data_dir() / "mnist.npz"
    if not p.exists():
        pytest.skip(f"MNIST not found at {p} (set AEKIT_DATA to the folder holding mnist.npz)")
    return p
