"""common.data: both sources, orientation, character names, validation sets, bad input."""

import gzip
import os
import shutil
import time

import numpy as np
import pytest

import common.data as data
from conftest import EMNIST_CHARACTERS, write_idx


def test_local_files_load_with_official_names_and_any_counts(tiny_data):
    for dataset in data.DATASETS:
        for split, count in (("train", 470), ("test", 94)):
            images, labels = data.load(dataset, split, tiny_data)
            assert images.shape == (count, 28, 28) and images.dtype == np.uint8
            assert labels.shape == (count,) and labels.dtype == np.int64
    assert data.load("emnist", "train", tiny_data)[1].max() == 46


def test_files_in_subfolders_and_uncompressed_files_are_found(tmp_path, tiny_data):
    shutil.copytree(tiny_data, tmp_path / "mnist")
    for name in os.listdir(tmp_path / "mnist"):
        if name.startswith("emnist"):
            os.remove(tmp_path / "mnist" / name)
    # EMNIST as plain (not gzipped) IDX files in another sub-folder
    os.makedirs(tmp_path / "emnist")
    for name in os.listdir(tiny_data):
        if name.startswith("emnist") and name.endswith(".gz"):
            with gzip.open(os.path.join(tiny_data, name)) as source:
                (tmp_path / "emnist" / name[:-3]).write_bytes(source.read())
    shutil.copy(os.path.join(tiny_data, "emnist-balanced-mapping.txt"), tmp_path / "emnist")
    for dataset in data.DATASETS:
        ours, _ = data.load(dataset, "test", str(tmp_path))
        reference, _ = data.load(dataset, "test", tiny_data)
        np.testing.assert_array_equal(ours, reference)


def _l_glyph():
    """An asymmetric 'L': a vertical bar on the left, a foot to the right at the bottom."""
    glyph = np.zeros((28, 28), dtype=np.uint8)
    glyph[4:24, 6:9] = 255  # vertical stroke, left side
    glyph[21:24, 6:20] = 255  # foot, bottom
    return glyph


def test_emnist_transposed_storage_is_fixed_to_upright(tmp_path, tiny_data):
    shutil.copytree(tiny_data, tmp_path / "data")
    folder = tmp_path / "data"
    glyph = _l_glyph()
    stored = np.stack([glyph.T, glyph.T])  # as EMNIST stores it: transposed
    for split in ("train", "test"):
        write_idx(folder / f"emnist-balanced-{split}-images-idx3-ubyte.gz", stored)
        write_idx(folder / f"emnist-balanced-{split}-labels-idx1-ubyte.gz", np.array([21, 21]))
    images, _ = data.load("emnist", "train", str(folder))
    np.testing.assert_array_equal(images[0], glyph)
    assert images[0][4:20, 7].all() and images[0][22, 6:20].all()  # bar left, foot at bottom
    # MNIST is stored upright and must be left alone
    write_idx(folder / "t10k-images-idx3-ubyte.gz", np.stack([glyph, glyph]))
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.array([1, 1]))
    np.testing.assert_array_equal(data.load("mnist", "test", str(folder))[0][0], glyph)


def test_tfds_source_gives_same_upright_arrays(monkeypatch):
    import tensorflow_datasets as tfds

    monkeypatch.setattr(data, "network_available", lambda *args, **kwargs: True)
    with tfds.testing.mock_data(num_examples=6):
        mnist_images, mnist_labels = data.load("mnist", "train")
        emnist_images, emnist_labels = data.load("emnist", "test")
    with tfds.testing.mock_data(num_examples=6):  # the same random examples again
        raw = next(iter(tfds.load("emnist/balanced", split="test").batch(6)))
    assert mnist_images.shape == (6, 28, 28) and mnist_images.dtype == np.uint8
    assert mnist_labels.dtype == np.int64 and emnist_labels.max() < 47
    np.testing.assert_array_equal(emnist_images, raw["image"].numpy()[..., 0].transpose(0, 2, 1))


def test_no_network_and_no_cache_fails_fast_naming_both_fixes(monkeypatch, tmp_path):
    import tensorflow_datasets as tfds

    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(tfds.core.constants, "DATA_DIR", str(tmp_path), raising=False)
    monkeypatch.setattr(data, "TFDS_DOWNLOAD_HOST", ("unreachable.invalid", 443))
    started = time.perf_counter()
    with pytest.raises(ConnectionError) as error:
        data.load("mnist", "train")
    assert time.perf_counter() - started < data.NETWORK_PROBE_SECONDS + 5
    assert "--data-dir" in str(error.value) and "connect" in str(error.value)


def test_class_names_from_mapping_and_defaults(tmp_path, tiny_data):
    assert data.class_names("mnist") == list("0123456789")
    assert "".join(data.class_names("emnist")) == EMNIST_CHARACTERS
    assert "".join(data.class_names("emnist", tiny_data)) == EMNIST_CHARACTERS
    mapping = tmp_path / "emnist-balanced-mapping.txt"
    mapping.write_text("0 48\n1 120\n")
    assert data.class_names("emnist", str(tmp_path)) == ["0", "x"]


def test_validation_sets(tiny_data):
    digits_images, digits_labels = data.validation_set("digits", tiny_data)
    assert len(digits_images) == 94 and digits_labels.max() <= 9
    upper_images, upper_labels = data.validation_set("digits_upper", tiny_data)
    _, all_labels = data.load("emnist", "test", tiny_data)
    assert len(upper_images) == (all_labels < 36).sum() < len(all_labels)
    assert upper_labels.max() == 35


def test_select_characters(tiny_data):
    images, labels = data.load("emnist", "test", tiny_data)
    names = data.class_names("emnist", tiny_data)
    chosen_images, chosen_labels = data.select_characters(images, labels, "AEIOU", names)
    assert set(chosen_labels.tolist()) == {10, 14, 18, 24, 30}
    assert len(chosen_images) == np.isin(labels, [10, 14, 18, 24, 30]).sum()
    with pytest.raises(ValueError, match="'c'.*supported: 0123"):
        data.select_characters(images, labels, "c", names)


def test_pipeline_scales_batches_and_shuffles_reproducibly(tiny_data):
    images, labels = data.load("mnist", "train", tiny_data)
    dataset = data.make_dataset(images, labels, batch_size=32, seed=3, value_range=(-1, 1))
    batches = list(dataset)
    assert len(batches) == 470 // 32
    batch_images, batch_labels = batches[0]
    assert batch_images.shape == (32, 28, 28, 1) and batch_images.dtype.name == "float32"
    assert -1.0 <= float(batch_images.numpy().min()) and float(batch_images.numpy().max()) <= 1.0
    again = next(iter(data.make_dataset(images, labels, batch_size=32, seed=3)))
    np.testing.assert_array_equal(again[1].numpy(), batch_labels.numpy())
    other = next(iter(data.make_dataset(images, labels, batch_size=32, seed=4)))
    assert not np.array_equal(other[1].numpy(), batch_labels.numpy())
    # images stay paired with their labels through the shuffle
    index = int(np.flatnonzero((images == ((batch_images[0, ..., 0].numpy() + 1) / 2 * 255)
                                .round().astype(np.uint8)).all(axis=(1, 2)))[0])
    assert labels[index] == batch_labels[0]


@pytest.fixture
def data_copy(tmp_path, tiny_data):
    folder = tmp_path / "data"
    shutil.copytree(tiny_data, folder)
    return folder


MNIST_TEST_IMAGES = "t10k-images-idx3-ubyte.gz"
MNIST_TEST_LABELS = "t10k-labels-idx1-ubyte.gz"


def test_missing_file_is_named(data_copy):
    os.remove(data_copy / MNIST_TEST_LABELS)
    with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte.gz"):
        data.load("mnist", "test", str(data_copy))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        data.load("mnist", "test", str(data_copy / "nowhere"))


def test_wrong_magic_number_is_named(data_copy):
    # labels written where images belong: magic 0x801 instead of 0x803
    shutil.copy(data_copy / MNIST_TEST_LABELS, data_copy / MNIST_TEST_IMAGES)
    with pytest.raises(ValueError, match=r"t10k-images.*magic number 0x00000801.*0x00000803"):
        data.load("mnist", "test", str(data_copy))


def test_truncated_gzip_is_named(data_copy):
    path = data_copy / MNIST_TEST_IMAGES
    path.write_bytes(path.read_bytes()[:-200])
    with pytest.raises(ValueError, match="t10k-images-idx3-ubyte.gz"):
        data.load("mnist", "test", str(data_copy))


def test_corrupt_gzip_is_named(data_copy):
    path = data_copy / MNIST_TEST_IMAGES
    raw = bytearray(path.read_bytes())
    raw[40:60] = b"\xff" * 20
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="t10k-images-idx3-ubyte.gz"):
        data.load("mnist", "test", str(data_copy))


def test_truncated_idx_data_is_named(data_copy):
    with gzip.open(data_copy / MNIST_TEST_IMAGES) as file:
        raw = file.read()
    with gzip.open(data_copy / MNIST_TEST_IMAGES, "wb") as file:
        file.write(raw[:-784 * 3])
    with pytest.raises(ValueError, match="t10k-images.*truncated"):
        data.load("mnist", "test", str(data_copy))


def test_image_label_count_mismatch_is_named(data_copy):
    write_idx(data_copy / MNIST_TEST_LABELS, np.zeros(93, dtype=np.uint8))
    with pytest.raises(ValueError, match="94 images.*93 labels"):
        data.load("mnist", "test", str(data_copy))


def test_label_outside_mapping_is_named(data_copy):
    write_idx(data_copy / MNIST_TEST_LABELS, np.full(94, 10, dtype=np.uint8))
    with pytest.raises(ValueError, match="label 10 is outside the mnist mapping"):
        data.load("mnist", "test", str(data_copy))
    write_idx(data_copy / "emnist-balanced-test-labels-idx1-ubyte.gz", np.full(94, 47))
    with pytest.raises(ValueError, match="label 47"):
        data.load("emnist", "test", str(data_copy))


def test_unknown_names_are_rejected(tiny_data):
    with pytest.raises(ValueError, match="Unknown dataset 'fashion'"):
        data.load("fashion", "train", tiny_data)
    with pytest.raises(ValueError, match="Unknown split 'validation'"):
        data.load("mnist", "validation", tiny_data)
    with pytest.raises(ValueError, match="Unknown validation set 'letters'"):
        data.validation_set("letters", tiny_data)


def test_stand_in_is_recognised(tmp_path, tiny_data):
    assert "STAND-IN" in data.source_description("emnist", tiny_data)  # counts differ
    assert data.source_description("mnist", tiny_data) == "MNIST"
    assert data.source_description("emnist") == "EMNIST Balanced"
