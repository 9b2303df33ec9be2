"""Datasets and array loading: built-in digits, MNIST-format files, plain arrays, splits,
the real benchmark archives, streaming over large files, and augmentation.

Real data is never bundled: loaders take a path (or read ``$AEKIT_DATA``, defaulting to
``../shared/data`` next to the repository when that exists).

Modules: :mod:`~aekit.data.arrays` (file formats, checks, :class:`NpyReader`),
:mod:`~aekit.data.datasets` (named datasets), :mod:`~aekit.data.archives` (safe in-memory tar
and zip reading), :mod:`~aekit.data.streaming` (a model over rows larger than memory),
:mod:`~aekit.data.augment` (label-free image augmentation), :mod:`~aekit.data.batch`
(:class:`Batch` and the data sources :func:`aekit.fit` draws from), :mod:`~aekit.data.images`
(folders of images, optionally paired with targets). Image files and folders are data
everywhere data is taken: :func:`load_array` / :func:`load_dataset` read them through
:func:`load_images` (recursive, resized with ``image_size`` or cut with ``patch_size``).
"""

from .arrays import (
    Dataset,
    NpyReader,
    check_finite_2d,
    is_image_path,
    load_array,
    load_idx,
    scale_unit,
    train_val_split,
)
from .batch import ArraySource, Batch, DataSource, as_source
from .datasets import data_dir, load_dataset, load_digits, load_images, load_mnist
from .images import ImageFolder, read_image

__all__ = [
    "ArraySource",
    "Batch",
    "DataSource",
    "Dataset",
    "ImageFolder",
    "NpyReader",
    "as_source",
    "check_finite_2d",
    "data_dir",
    "is_image_path",
    "load_array",
    "load_dataset",
    "load_digits",
    "load_idx",
    "load_images",
    "load_mnist",
    "read_image",
    "scale_unit",
    "train_val_split",
]
