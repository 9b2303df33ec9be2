"""Datasets and array loading: built-in digits, MNIST-format files, plain arrays, splits,
the real benchmark archives, streaming over large files, and augmentation.

Real data is never bundled: loaders take a path (or read ``$AEKIT_DATA``, defaulting to
``../shared/data`` next to the repository when that exists).

Modules: :mod:`~aekit.data.arrays` (file formats, checks, :class:`NpyReader`),
:mod:`~aekit.data.datasets` (named datasets), :mod:`~aekit.data.archives` (safe in-memory tar
and zip reading), :mod:`~aekit.data.streaming` (a model over rows larger than memory),
:mod:`~aekit.data.augment` (label-free image augmentation).
"""

from .arrays import (
    Dataset,
    NpyReader,
    check_finite_2d,
    load_array,
    load_idx,
    scale_unit,
    train_val_split,
)
from .datasets import data_dir, load_dataset, load_digits, load_mnist

__all__ = [
    "Dataset",
    "NpyReader",
    "check_finite_2d",
    "data_dir",
    "load_array",
    "load_dataset",
    "load_digits",
    "load_idx",
    "load_mnist",
    "scale_unit",
    "train_val_split",
]
