"""Shared fixtures. Real datasets are looked up in $AEKIT_DATA or ../shared/data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from aekit.data import data_dir

os.environ.setdefault("CI", "true")  # tests never draw progress bars


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


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
