"""Tiny datasets in the official IDX format, written by the tests themselves.

Each class is a fixed random template of thick strokes plus per-image noise and shifts, so a
classifier can learn the classes from a few images; EMNIST files are written transposed, as
EMNIST stores them.
"""

import gzip
import os
import struct
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

EMNIST_CHARACTERS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabdefghnqrt"


def class_templates(num_classes, seed=0):
    rng = np.random.default_rng(seed)
    templates = np.zeros((num_classes, 28, 28), dtype=np.float32)
    for label in range(num_classes):
        for _ in range(3):  # three strokes per class
            row, column = rng.integers(6, 22, size=2)
            d_row, d_column = rng.integers(-1, 2, size=2)
            for step in range(10):
                r, c = row + d_row * step, column + d_column * step
                if 4 <= r < 24 and 4 <= c < 24:
                    templates[label, r - 1 : r + 2, c - 1 : c + 2] = 1.0
    return templates


def make_images(labels, seed, templates):
    rng = np.random.default_rng(seed)
    images = templates[labels].copy()
    for index in range(len(images)):
        images[index] = np.roll(images[index], rng.integers(-1, 2, size=2), axis=(0, 1))
    images = np.clip(images * rng.uniform(0.7, 1.0, size=(len(labels), 1, 1))
                     + rng.normal(0, 0.05, images.shape), 0, 1)
    return (images * 255).astype(np.uint8)


def write_idx(path, array, compress=True):
    array = np.asarray(array, dtype=np.uint8)
    magic = 0x800 | array.ndim
    header = struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape)
    opener = gzip.open if compress else open
    with opener(path, "wb") as file:
        file.write(header + array.tobytes())


def write_dataset(folder, counts, seed=0):
    """MNIST and EMNIST Balanced files (train/test) with `counts` images per split."""
    os.makedirs(folder, exist_ok=True)
    templates = class_templates(len(EMNIST_CHARACTERS), seed)
    names = {
        ("mnist", "train"): ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
        ("mnist", "test"): ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
        ("emnist", "train"): ("emnist-balanced-train-images-idx3-ubyte",
                              "emnist-balanced-train-labels-idx1-ubyte"),
        ("emnist", "test"): ("emnist-balanced-test-images-idx3-ubyte",
                             "emnist-balanced-test-labels-idx1-ubyte"),
    }
    for offset, ((dataset, split), (images_name, labels_name)) in enumerate(names.items()):
        num_classes = 10 if dataset == "mnist" else len(EMNIST_CHARACTERS)
        labels = np.arange(counts[split]) % num_classes
        np.random.default_rng(seed + offset).shuffle(labels)
        images = make_images(labels, seed + offset, templates)
        if dataset == "emnist":
            images = images.transpose(0, 2, 1)  # EMNIST's stored orientation
        write_idx(os.path.join(folder, images_name + ".gz"), images)
        write_idx(os.path.join(folder, labels_name + ".gz"), labels)
    with open(os.path.join(folder, "emnist-balanced-mapping.txt"), "w") as file:
        for label, character in enumerate(EMNIST_CHARACTERS):
            file.write(f"{label} {ord(character)}\n")
    return folder


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    """A folder of tiny MNIST + EMNIST files: 470 train and 94 test images each."""
    return write_dataset(str(tmp_path_factory.mktemp("data")), {"train": 470, "test": 94})
