"""common.evaluation: the metrics behave as metrics, and the evaluator sees letters as letters."""

import json

import numpy as np
import pytest

import common.data as data
import common.evaluation as evaluation
import common.models as models


def clustered_features(count, seed, centres=None, classes=5, dimensions=16):
    rng = np.random.default_rng(seed)
    centres = centres if centres is not None else np.random.default_rng(99).normal(
        0, 4, size=(classes, dimensions))
    labels = rng.integers(0, len(centres), size=count)
    return centres[labels] + rng.normal(size=(count, dimensions)), labels


def test_fid_and_kid_of_a_set_against_itself_are_zero():
    features, _ = clustered_features(600, seed=0)
    assert evaluation.frechet_distance(features, features) == pytest.approx(0, abs=1e-6)
    kid, error = evaluation.kernel_inception_distance(features, features, subset_size=200,
                                                      subsets=10)
    assert abs(kid) < 3 * error + 1e-3


@pytest.mark.parametrize("distortion", ["noise", "blur"])
def test_fid_and_kid_rise_monotonically_with_distortion(distortion, tiny_data):
    images, _ = data.load("mnist", "train", tiny_data)
    real = data.scale_images(images)[..., 0]
    rng = np.random.default_rng(0)

    def distort(level):
        if distortion == "noise":
            return np.clip(real + rng.normal(0, level, real.shape), 0, 1)
        blurred = real.copy()
        for _ in range(level):  # repeated 3x3 box blur
            padded = np.pad(blurred, ((0, 0), (1, 1), (1, 1)), mode="edge")
            blurred = sum(padded[:, r : r + 28, c : c + 28] for r in range(3) for c in range(3)) / 9
        return blurred

    levels = [0.1, 0.3, 0.6] if distortion == "noise" else [1, 2, 4]
    reference = real.reshape(len(real), -1)
    fids, kids = [], []
    for level in levels:
        distorted = distort(level).reshape(len(real), -1)
        fids.append(evaluation.frechet_distance(reference[:, ::8], distorted[:, ::8]))
        kids.append(evaluation.kernel_inception_distance(reference[:, ::8], distorted[:, ::8],
                                                         subset_size=200, subsets=10)[0])
    assert fids[0] < fids[1] < fids[2]
    assert kids[0] < kids[1] < kids[2]


def test_precision_and_recall_are_one_for_identical_sets_and_fall_without_a_class():
    real, labels = clustered_features(1000, seed=1)
    assert evaluation.precision_recall(real, real) == (1.0, 1.0)
    without_one_class = real[labels != 0]
    share = (labels == 0).mean()
    # samples missing a class: all still look real, but part of the real set is not covered
    precision, recall = evaluation.precision_recall(real, without_one_class)
    assert precision == 1.0 and recall == pytest.approx(1 - share, abs=0.05)
    # samples of a class the real set lacks: that share of the samples does not look real
    precision, recall = evaluation.precision_recall(without_one_class, real)
    assert precision == pytest.approx(1 - share, abs=0.05) and recall == 1.0


def test_class_statistics_letters_share_and_coverage():
    names = list(data.EMNIST_CHARACTERS)
    predicted = np.array([0] * 50 + [1] * 45 + [20] * 5)
    statistics = evaluation.class_statistics(predicted, list(range(10)), names)
    assert statistics["letters_share"] == pytest.approx(0.05)
    assert statistics["coverage"] == pytest.approx(0.2)  # only '0' and '1' get a fair share
    assert statistics["histogram"]["K"] == 5


@pytest.fixture(scope="module")
def evaluator(tiny_data, tmp_path_factory):
    return evaluation.Evaluator(str(tmp_path_factory.mktemp("evaluator")), tiny_data, epochs=8)


def test_evaluator_calls_digits_digits_and_is_cached(evaluator, tiny_data):
    images, labels = data.validation_set("digits", tiny_data)
    predicted = evaluator.predict(data.scale_images(images))
    statistics = evaluation.class_statistics(predicted, list(range(10)), evaluator.class_names)
    assert statistics["letters_share"] < 0.05
    letters_images, letters_labels = data.load("emnist", "test", tiny_data)
    letters = letters_labels >= 10
    letters_predicted = evaluator.predict(data.scale_images(letters_images[letters]))
    assert (letters_predicted >= 10).mean() > 0.9
    assert evaluator.info["test_accuracy"]["mnist"] > 0.9
    again = evaluation.Evaluator(evaluator.folder, tiny_data)
    assert again.info == evaluator.info  # loaded from the cache: same training record


def test_evaluator_retrains_when_the_data_changes(evaluator, tiny_data, tmp_path):
    from conftest import write_dataset

    other = write_dataset(str(tmp_path / "other"), {"train": 200, "test": 47}, seed=5)
    retrained = evaluation.Evaluator(evaluator.folder, other, epochs=1)
    assert retrained.info["fingerprint"] != evaluator.info["fingerprint"]
    with open(f"{evaluator.folder}/evaluator.json") as file:
        assert json.load(file)["train_images"] == 400


def test_sampling_unknown_run_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a run folder"):
        models.sample(str(tmp_path), 4)


def test_in_set_fid_scores_only_the_samples_of_the_sets_classes(evaluator, tiny_data):
    digits, digit_labels = data.validation_set("digits", tiny_data)
    emnist, emnist_labels = data.load("emnist", "train", tiny_data)
    letters = emnist[emnist_labels >= 10][:300]
    real = data.scale_images(np.concatenate([digits] * 3))
    fake = data.scale_images(np.concatenate([digits] * 3 + [letters]))
    scores = evaluation.score_samples(evaluator, real, None, fake, list(range(10)))
    assert scores["in_set_samples"] >= 0.9 * len(real)
    assert scores["in_set_fid"] < 0.2 * scores["fid"]  # the letters are what is wrong
