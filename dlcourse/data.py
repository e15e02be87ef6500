"""Datasets as image tensors with fixed train/validation/test splits.

Offline, everywhere: scikit-learn's bundled digits (1,797 grey 8x8 images).
On Colab: MNIST and CIFAR-10 through torchvision, which is imported only when
asked for, because no CPU build of it exists on every machine the course runs on.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Subset, TensorDataset

from dlcourse.config import is_quick_mode

SPLIT_SEED = 0  # the splits are part of the course: every notebook sees the same ones


@dataclass
class DataSplits:
    """A dataset cut into train, validation and test parts."""

    name: str
    train: Dataset
    val: Dataset
    test: Dataset
    num_classes: int
    image_shape: tuple[int, ...]  # (channels, height, width)

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}


def split_indices(n: int, n_val: int, n_test: int, seed: int = SPLIT_SEED) -> tuple[np.ndarray, ...]:
    """A seeded permutation of ``range(n)`` cut into train, validation and test indices."""
    if n_val + n_test >= n:
        raise ValueError(f"cannot hold out {n_val} + {n_test} of only {n} examples")
    order = np.random.default_rng(seed).permutation(n)
    return order[n_val + n_test :], order[:n_val], order[n_val : n_val + n_test]


def load_digits(n_val: int = 300, n_test: int = 300) -> DataSplits:
    """scikit-learn's digits as float images in [0, 1] of shape (1, 8, 8).

    Pixel values 0..16 are divided by 16. Labels are int64 class indices 0..9.
    """
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    images = torch.tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0
    labels = torch.tensor(bunch.target, dtype=torch.int64)
    train, val, test = split_indices(len(labels), n_val, n_test)
    return DataSplits(
        name="digits",
        train=TensorDataset(images[train], labels[train]),
        val=TensorDataset(images[val], labels[val]),
        test=TensorDataset(images[test], labels[test]),
        num_classes=10,
        image_shape=(1, 8, 8),
    )


def import_torchvision():
    """Import torchvision, or explain why it is missing and what to use instead."""
    try:
        return importlib.import_module("torchvision")
    except ImportError as error:
        raise ImportError(
            "torchvision is not installed, so MNIST and CIFAR-10 are unavailable here. "
            "Use load_dataset('digits') offline, or run this notebook on Colab, "
            "where torchvision is preinstalled."
        ) from error


def load_torchvision(name: str, root: str = "data", n_val: int = 5000, download: bool = True) -> DataSplits:
    """MNIST or CIFAR-10 from torchvision as tensors in [0, 1]; validation held out of train."""
    torchvision = import_torchvision()
    datasets = {"mnist": ("MNIST", 10, (1, 28, 28)), "cifar10": ("CIFAR10", 10, (3, 32, 32))}
    class_name, num_classes, shape = datasets[name]
    dataset_class = getattr(torchvision.datasets, class_name)
    to_tensor = torchvision.transforms.ToTensor()
    full_train = dataset_class(root, train=True, download=download, transform=to_tensor)
    test = dataset_class(root, train=False, download=download, transform=to_tensor)
    train_idx, val_idx, _ = split_indices(len(full_train), n_val, 0)
    return DataSplits(
        name=name,
        train=Subset(full_train, train_idx.tolist()),
        val=Subset(full_train, val_idx.tolist()),
        test=test,
        num_classes=num_classes,
        image_shape=shape,
    )


def load_dataset(name: str = "digits", root: str = "data") -> DataSplits:
    """Load "digits" (offline), "mnist" or "cifar10" (torchvision) by name."""
    key = name.lower().replace("-", "")
    if key == "digits":
        return load_digits()
    if key in {"mnist", "cifar10"}:
        return load_torchvision(key, root=root)
    raise ValueError(f"unknown dataset {name!r}; choose 'digits', 'mnist' or 'cifar10'")


def dataset_for_this_run(full: str = "mnist") -> str:
    """The dataset a lab should use: "digits" in quick mode or without torchvision, else ``full``.

    Graders and CPU-only machines get the offline digits; Colab gets the real dataset.
    """
    if is_quick_mode() or importlib.util.find_spec("torchvision") is None:
        return "digits"
    return full


def make_loaders(
    splits: DataSplits, batch_size: int = 64, seed: int = SPLIT_SEED, num_workers: int = 0
) -> dict[str, DataLoader]:
    """DataLoaders for the three splits; only the training one shuffles, with a seeded order."""
    generator = torch.Generator().manual_seed(seed)
    return {
        "train": DataLoader(
            splits.train, batch_size=batch_size, shuffle=True, generator=generator, num_workers=num_workers
        ),
        "val": DataLoader(splits.val, batch_size=batch_size, num_workers=num_workers),
        "test": DataLoader(splits.test, batch_size=batch_size, num_workers=num_workers),
    }
