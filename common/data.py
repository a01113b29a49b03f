"""The one place that knows about datasets: MNIST and EMNIST Balanced.

Two sources give the same arrays:
- tensorflow-datasets (`mnist`, `emnist/balanced`), the default, which downloads once and caches;
- the official gzipped (or plain) IDX files in a local folder (`data_dir`, `--data-dir` in the
  scripts), for machines without internet. The folder may hold the files directly or in
  sub-folders (e.g. `data/mnist/` and `data/emnist-balanced-standin/`).

EMNIST stores every image transposed. `load` fixes that here, once, for both sources, so every
image that leaves this module is upright. Nothing here hard-codes the official image counts: a
folder in the official format with other counts (such as the EMNIST stand-in) reads unchanged.
"""

import gzip
import os
import socket
import struct
import threading
import zlib

import numpy as np

DATASETS = ("mnist", "emnist")
SPLITS = ("train", "test")
VALIDATION_SETS = ("digits", "digits_upper")
TFDS_NAMES = {"mnist": "mnist", "emnist": "emnist/balanced"}
IDX_FILE_NAMES = {
    ("mnist", "train"): ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    ("mnist", "test"): ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
    ("emnist", "train"): (
        "emnist-balanced-train-images-idx3-ubyte",
        "emnist-balanced-train-labels-idx1-ubyte",
    ),
    ("emnist", "test"): (
        "emnist-balanced-test-images-idx3-ubyte",
        "emnist-balanced-test-labels-idx1-ubyte",
    ),
}
EMNIST_MAPPING_FILE = "emnist-balanced-mapping.txt"
# The official EMNIST Balanced characters: digits, uppercase, and the 11 lowercase letters
# whose shapes differ from their capitals (the other 15 are merged into the capitals).
EMNIST_CHARACTERS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabdefghnqrt"
MNIST_CHARACTERS = "0123456789"
NUM_DIGITS = 10
# digits + uppercase letters: labels 0-35 in EMNIST Balanced.
NUM_DIGITS_AND_UPPERCASE = 36
# Only used to tell the real EMNIST Balanced train split from a stand-in, never to load.
OFFICIAL_EMNIST_TRAIN_COUNT = 112_800

IDX_IMAGES_MAGIC = 0x00000803  # unsigned bytes, 3 dimensions
IDX_LABELS_MAGIC = 0x00000801  # unsigned bytes, 1 dimension
TFDS_DOWNLOAD_HOST = ("storage.googleapis.com", 443)
NETWORK_PROBE_SECONDS = 4.0


def check_dataset(dataset):
    if dataset not in DATASETS:
        raise ValueError(f"Unknown dataset {dataset!r}: expected one of {', '.join(DATASETS)}.")


def check_split(split):
    if split not in SPLITS:
        raise ValueError(f"Unknown split {split!r}: expected one of {', '.join(SPLITS)}.")


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def load(dataset, split, data_dir=None):
    """Returns `(images, labels)`: uint8 (N, 28, 28) upright images and int64 labels."""
    check_dataset(dataset)
    check_split(split)
    if data_dir is None:
        images, labels = _load_from_tfds(dataset, split)
        source = f"tensorflow-datasets {TFDS_NAMES[dataset]}:{split}"
    else:
        images_path, labels_path = (
            find_file(data_dir, name) for name in IDX_FILE_NAMES[(dataset, split)]
        )
        images = read_idx(images_path, IDX_IMAGES_MAGIC)
        labels = read_idx(labels_path, IDX_LABELS_MAGIC).astype(np.int64)
        if len(images) != len(labels):
            raise ValueError(
                f"{images_path} holds {len(images)} images but {labels_path} holds "
                f"{len(labels)} labels: the two files must match."
            )
        source = labels_path
    if images.shape[1:] != (28, 28):
        raise ValueError(f"{source}: expected 28x28 images, found {images.shape[1:]}.")
    num_classes = len(class_names(dataset, data_dir))
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        bad = labels[(labels < 0) | (labels >= num_classes)][0]
        raise ValueError(
            f"{source}: label {bad} is outside the {dataset} mapping (0-{num_classes - 1})."
        )
    if dataset == "emnist":
        # EMNIST stores each image transposed (column-major); fix it once, here.
        images = np.ascontiguousarray(images.transpose(0, 2, 1))
    return images, labels


def class_names(dataset, data_dir=None):
    """The character of each label: `0-9` for MNIST; `0-9`, `A-Z`, `abdefghnqrt` for EMNIST."""
    check_dataset(dataset)
    if dataset == "mnist":
        return list(MNIST_CHARACTERS)
    if data_dir is not None:
        mapping_path = find_file(data_dir, EMNIST_MAPPING_FILE, required=False)
        if mapping_path is not None:
            return read_mapping(mapping_path)
    return list(EMNIST_CHARACTERS)


def validation_set(name, data_dir=None):
    """The study's two validation sets, as `(images, labels)` with EMNIST labels.

    `digits`: MNIST test (10,000 images). `digits_upper`: EMNIST Balanced test restricted to
    digits and uppercase letters (labels 0-35). MNIST labels equal EMNIST's 0-9.
    """
    if name == "digits":
        return load("mnist", "test", data_dir)
    if name == "digits_upper":
        images, labels = load("emnist", "test", data_dir)
        keep = labels < NUM_DIGITS_AND_UPPERCASE
        return images[keep], labels[keep]
    raise ValueError(
        f"Unknown validation set {name!r}: expected one of {', '.join(VALIDATION_SETS)}."
    )


def labels_for_characters(characters, names):
    """Labels of `characters` (e.g. "5" or "AEIOU") in the list `names` from `class_names`."""
    labels = []
    for character in characters:
        if character not in names:
            raise ValueError(
                f"Character {character!r} is not in this dataset; supported: {''.join(names)}."
            )
        labels.append(names.index(character))
    return labels


def select_characters(images, labels, characters, names):
    """The images and labels of the chosen characters only, in their original order."""
    keep = np.isin(labels, labels_for_characters(characters, names))
    return images[keep], labels[keep]


def source_description(dataset, data_dir=None):
    """A short phrase naming where the data came from, for figure titles and reports.

    Figures made from a folder that is not the official EMNIST Balanced release (such as the
    stand-in in ../shared/data) must say so; this is how they find out.
    """
    check_dataset(dataset)
    if data_dir is None:
        return "MNIST" if dataset == "mnist" else "EMNIST Balanced"
    if dataset == "mnist":
        return "MNIST"
    labels_path = find_file(data_dir, IDX_FILE_NAMES[("emnist", "train")][1], required=False)
    folder = os.path.basename(os.path.dirname(labels_path or data_dir)).lower()
    count = read_idx_header(labels_path, IDX_LABELS_MAGIC)[0] if labels_path else None
    if "standin" in folder or "stand-in" in folder or count != OFFICIAL_EMNIST_TRAIN_COUNT:
        return "EMNIST Balanced STAND-IN (not official EMNIST Balanced)"
    return "EMNIST Balanced"


def make_dataset(images, labels=None, batch_size=64, shuffle=True, seed=0,
                 value_range=(0.0, 1.0), drop_remainder=True):
    """A `tf.data` pipeline of float32 (batch, 28, 28, 1) images scaled to `value_range`.

    The uint8 arrays are held in memory (4x smaller than floats) and scaled a whole batch at a
    time after batching, which is far cheaper than per image; prefetch overlaps the next batch
    with the training step. Yields `images` or `(images, labels)`.
    """
    import tensorflow as tf

    low, high = value_range
    if low >= high:
        raise ValueError(f"value_range must be increasing, got {value_range}.")
    tensors = images if labels is None else (images, labels)
    dataset = tf.data.Dataset.from_tensor_slices(tensors)
    if shuffle:
        dataset = dataset.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)

    def scale(batch_images, *batch_labels):
        batch_images = tf.cast(batch_images[..., None], tf.float32) * ((high - low) / 255.0) + low
        return (batch_images, *batch_labels) if batch_labels else batch_images

    dataset = dataset.map(scale, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)


def scale_images(images, value_range=(0.0, 1.0)):
    """uint8 (N, 28, 28) -> float32 (N, 28, 28, 1) in `value_range` (numpy, for evaluation)."""
    low, high = value_range
    return images[..., None].astype(np.float32) * ((high - low) / 255.0) + low


# --------------------------------------------------------------------------------------------
# Local IDX files
# --------------------------------------------------------------------------------------------


def find_file(data_dir, name, required=True):
    """`name` (gzipped or plain) in `data_dir` or one of its direct sub-folders."""
    if not os.path.isdir(data_dir):
        raise FileNotFoundError(f"Data folder {data_dir!r} does not exist.")
    folders = [data_dir] + sorted(
        os.path.join(data_dir, entry)
        for entry in os.listdir(data_dir)
        if os.path.isdir(os.path.join(data_dir, entry))
    )
    candidates = (name,) if name.endswith(".txt") else (name + ".gz", name)
    found = [
        os.path.join(folder, candidate)
        for folder in folders
        for candidate in candidates
        if os.path.isfile(os.path.join(folder, candidate))
    ]
    if len(found) > 1:
        raise ValueError(f"{name} is in more than one place under {data_dir}: {found}.")
    if found:
        return found[0]
    if required:
        raise FileNotFoundError(
            f"{name}.gz (or {name}) not found in {data_dir} or its sub-folders. Put the official "
            f"IDX files there, or leave out --data-dir to download with tensorflow-datasets."
        )
    return None


def _read_bytes(path):
    try:
        if path.endswith(".gz"):
            with gzip.open(path, "rb") as file:
                return file.read()
        with open(path, "rb") as file:
            return file.read()
    except (OSError, EOFError, zlib.error) as error:
        raise ValueError(f"{path} is not a readable gzip file ({error}).") from error


def read_idx_header(path, expected_magic):
    """(count, ...) dimensions from an IDX file's header, without reading the whole file."""
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as file:
            header = file.read(4 + 4 * (expected_magic & 0xFF))
    except (OSError, EOFError, zlib.error) as error:
        raise ValueError(f"{path} is not a readable gzip file ({error}).") from error
    return _parse_header(path, header, expected_magic)


def _parse_header(path, data, expected_magic):
    num_dims = expected_magic & 0xFF
    if len(data) < 4 + 4 * num_dims:
        raise ValueError(f"{path} is too short ({len(data)} bytes) to hold an IDX header.")
    (magic,) = struct.unpack(">I", data[:4])
    if magic != expected_magic:
        kind = "images" if expected_magic == IDX_IMAGES_MAGIC else "labels"
        raise ValueError(
            f"{path} has IDX magic number 0x{magic:08x}, expected 0x{expected_magic:08x} "
            f"(unsigned-byte {kind}, {num_dims} dimensions)."
        )
    return struct.unpack(f">{num_dims}I", data[4 : 4 + 4 * num_dims])


def read_idx(path, expected_magic):
    """The array in an official IDX file (uint8), checking magic number and size."""
    data = _read_bytes(path)
    shape = _parse_header(path, data, expected_magic)
    offset = 4 + 4 * len(shape)
    expected = int(np.prod(shape))
    if len(data) - offset != expected:
        raise ValueError(
            f"{path} is truncated or corrupt: its header promises {expected} bytes of data "
            f"for shape {shape}, but it holds {len(data) - offset}."
        )
    return np.frombuffer(data, dtype=np.uint8, offset=offset).reshape(shape)


def read_mapping(path):
    """Characters from `emnist-balanced-mapping.txt` (lines of `label ascii_code`)."""
    names = {}
    with open(path, encoding="ascii", errors="replace") as file:
        for line_number, line in enumerate(file, start=1):
            if not line.strip():
                continue
            parts = line.split()
            if len(parts) != 2 or not all(part.isdigit() for part in parts):
                raise ValueError(
                    f"{path} line {line_number}: expected 'label ascii_code', found {line.strip()!r}."
                )
            names[int(parts[0])] = chr(int(parts[1]))
    if sorted(names) != list(range(len(names))) or not names:
        raise ValueError(f"{path}: labels must run 0..N-1 without gaps, found {sorted(names)}.")
    return [names[label] for label in range(len(names))]


# --------------------------------------------------------------------------------------------
# tensorflow-datasets
# --------------------------------------------------------------------------------------------


def network_available(host=TFDS_DOWNLOAD_HOST, seconds=NETWORK_PROBE_SECONDS):
    """Whether tfds's download host answers within `seconds` (DNS included)."""
    result = []

    def probe():
        try:
            with socket.create_connection(host, timeout=seconds):
                result.append(True)
        except OSError:
            pass

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(seconds)
    return bool(result)


def _load_from_tfds(dataset, split):
    import tensorflow_datasets as tfds

    builder = tfds.builder(TFDS_NAMES[dataset])
    if not _tfds_prepared(builder) and not network_available():
        # Without this check tfds retries its download for minutes before failing deep inside.
        raise ConnectionError(
            f"Dataset {TFDS_NAMES[dataset]!r} is not in the tensorflow-datasets cache "
            f"({builder.data_dir}) and {TFDS_DOWNLOAD_HOST[0]} cannot be reached. Either connect "
            f"to the internet once so tfds can download and cache it, or pass --data-dir DIR "
            f"(data_dir=DIR) with the official IDX files."
        )
    builder.download_and_prepare()
    # Large fixed batches, not batch_size=-1: that needs a known cardinality, which
    # tfds.testing.mock_data's generator datasets lack (TensorFlow aborts on them).
    batches = list(tfds.as_numpy(builder.as_dataset(split=split).batch(8192)))
    if not batches:
        raise ValueError(f"tensorflow-datasets {TFDS_NAMES[dataset]}:{split} is empty.")
    images = np.concatenate([batch["image"] for batch in batches]).astype(np.uint8)
    labels = np.concatenate([batch["label"] for batch in batches]).astype(np.int64)
    return images.reshape(-1, 28, 28), labels


def _tfds_prepared(builder):
    return os.path.exists(os.path.join(builder.data_dir, "dataset_info.json"))
