"""Scores a trained run on the study's two validation sets: `eval.json` in the run folder.

The evaluator is a small CNN classifier of the 47 EMNIST Balanced characters, trained on MNIST
train + EMNIST train (upright), once, and cached in `<outputs>/evaluator/` beside the runs
(retrained when missing or when the training data changed). Its 128-unit penultimate layer
gives the features for the distribution metrics; no pretrained network is downloaded.

For each validation set (`digits` = MNIST test; `digits_upper` = EMNIST test, labels 0-35),
from N generated samples (N = the set's size, at most `max_samples`):
- FID and KID (with its standard error) between samples and set, in evaluator features;
- precision and recall of generative models (k-nearest-neighbour manifolds, k = 3;
  Kynkaanniemi et al. 2019): how many samples look real, how much of the set is covered;
- the evaluator's class histogram of the samples, the share it calls letters (the study's
  "false positive" question) and coverage: the share of the set's classes that receive at
  least half of a uniform share (1 / (2 x classes)) of the samples;
- in-set FID: the FID of only those samples the evaluator assigns to the set's classes (at
  least 200 of them), i.e. the quality of the digits a model makes, whatever its class mix;
- VAE only: ELBO, reconstruction and KL in nats per image on the set;
- conditional models: the evaluator's accuracy on samples of each requested class.
"""

import hashlib
import json
import os
import time

import numpy as np

from common import data

EVALUATOR_EPOCHS = 3
EVALUATOR_BATCH_SIZE = 128
FEATURE_LAYER = "features"
NEAREST_NEIGHBOURS = 3
KID_SUBSET_SIZE = 1000
KID_SUBSETS = 50
MAX_SAMPLES = 10_000
MIN_SAMPLES_FOR_FID = 200
SAMPLE_SEED = 2024


# --------------------------------------------------------------------------------------------
# Metrics on feature arrays (N, D)
# --------------------------------------------------------------------------------------------


def frechet_distance(features_a, features_b):
    """FID: |mu_a - mu_b|^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2)).

    Tr((S_a S_b)^(1/2)) is computed as the trace of the square root of the symmetric matrix
    S_a^(1/2) S_b S_a^(1/2), which has the same eigenvalues, with numpy alone.
    """
    features_a = np.asarray(features_a, dtype=np.float64)
    features_b = np.asarray(features_b, dtype=np.float64)
    mean_a, mean_b = features_a.mean(axis=0), features_b.mean(axis=0)
    covariance_a = np.cov(features_a, rowvar=False)
    covariance_b = np.cov(features_b, rowvar=False)
    eigenvalues, eigenvectors = np.linalg.eigh(covariance_a)
    root_a = (eigenvectors * np.sqrt(np.clip(eigenvalues, 0, None))) @ eigenvectors.T
    middle = root_a @ covariance_b @ root_a
    trace_root = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None)).sum()
    distance = (np.sum((mean_a - mean_b) ** 2) + np.trace(covariance_a)
                + np.trace(covariance_b) - 2 * trace_root)
    return float(max(distance, 0.0))


def kernel_inception_distance(features_a, features_b, subset_size=KID_SUBSET_SIZE,
                              subsets=KID_SUBSETS, seed=0):
    """KID: unbiased MMD^2 with the cubic polynomial kernel, averaged over random subsets.

    Returns (mean, standard error of the mean over subsets).
    """
    features_a = np.asarray(features_a, dtype=np.float64)
    features_b = np.asarray(features_b, dtype=np.float64)
    size = min(subset_size, len(features_a), len(features_b))
    if size < 2:
        raise ValueError("KID needs at least two samples in each set.")
    dimensions = features_a.shape[1]
    rng = np.random.default_rng(seed)
    estimates = []
    for _ in range(subsets):
        a = features_a[rng.choice(len(features_a), size, replace=False)]
        b = features_b[rng.choice(len(features_b), size, replace=False)]
        kernel_aa = (a @ a.T / dimensions + 1) ** 3
        kernel_bb = (b @ b.T / dimensions + 1) ** 3
        kernel_ab = (a @ b.T / dimensions + 1) ** 3
        off_diagonal = size * (size - 1)
        estimates.append(
            (kernel_aa.sum() - np.trace(kernel_aa)) / off_diagonal
            + (kernel_bb.sum() - np.trace(kernel_bb)) / off_diagonal
            - 2 * kernel_ab.mean()
        )
    estimates = np.array(estimates)
    return float(estimates.mean()), float(estimates.std(ddof=1) / np.sqrt(len(estimates)))


def _squared_distances(a, b):
    return np.maximum((a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T, 0)


def _radii(features, k, chunk=2048):
    """Distance from each point to its k-th nearest other point of the same set."""
    radii = np.empty(len(features))
    for start in range(0, len(features), chunk):
        distances = _squared_distances(features[start : start + chunk], features)
        # index k, not k-1: the nearest point is the point itself (distance 0)
        radii[start : start + chunk] = np.sqrt(np.partition(distances, k, axis=1)[:, k])
    return radii


def _inside_manifold(points, manifold, radii, chunk=2048):
    inside = np.empty(len(points), dtype=bool)
    for start in range(0, len(points), chunk):
        distances = np.sqrt(_squared_distances(points[start : start + chunk], manifold))
        inside[start : start + chunk] = (distances <= radii[None, :]).any(axis=1)
    return inside


def precision_recall(real_features, fake_features, k=NEAREST_NEIGHBOURS):
    """Precision: share of fakes inside the real manifold; recall: reals inside the fake one."""
    real = np.asarray(real_features, dtype=np.float32)
    fake = np.asarray(fake_features, dtype=np.float32)
    if min(len(real), len(fake)) <= k:
        raise ValueError(f"precision/recall need more than k={k} samples in each set.")
    precision = _inside_manifold(fake, real, _radii(real, k)).mean()
    recall = _inside_manifold(real, fake, _radii(fake, k)).mean()
    return float(precision), float(recall)


def class_statistics(predicted, set_classes, class_names):
    """Histogram of predicted classes, letters share and coverage of `set_classes`."""
    counts = np.bincount(predicted, minlength=len(class_names))
    shares = counts / max(len(predicted), 1)
    fair_share = 1.0 / (2 * len(set_classes))
    return {
        "histogram": {class_names[label]: int(count) for label, count in enumerate(counts)},
        "letters_share": float(shares[data.NUM_DIGITS:].sum()),
        "coverage": float(np.mean([shares[label] >= fair_share for label in set_classes])),
    }


# --------------------------------------------------------------------------------------------
# The evaluator classifier
# --------------------------------------------------------------------------------------------


def build_evaluator(num_classes):
    import keras
    from keras import layers

    return keras.Sequential([
        keras.Input((28, 28, 1)),
        layers.Conv2D(32, 3, activation="relu"),
        layers.MaxPooling2D(),
        layers.Conv2D(64, 3, activation="relu"),
        layers.MaxPooling2D(),
        layers.Flatten(),
        layers.Dropout(0.3),
        layers.Dense(128, activation="relu", name=FEATURE_LAYER),
        layers.Dense(num_classes, name="logits"),
    ], name="evaluator")


def _fingerprint(arrays):
    digest = hashlib.sha256()
    for array in arrays:
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()[:16]


class Evaluator:
    """The cached classifier: `predict` gives classes, `features` the penultimate layer."""

    def __init__(self, folder, data_dir=None, epochs=EVALUATOR_EPOCHS):
        import keras

        self.folder = folder
        mnist_images, mnist_labels = data.load("mnist", "train", data_dir)
        emnist_images, emnist_labels = data.load("emnist", "train", data_dir)
        self.class_names = data.class_names("emnist", data_dir)
        fingerprint = _fingerprint([mnist_images, mnist_labels, emnist_images, emnist_labels])
        model_path = os.path.join(folder, "evaluator.keras")
        info_path = os.path.join(folder, "evaluator.json")
        info = {}
        if os.path.exists(info_path):
            with open(info_path) as file:
                info = json.load(file)
        if info.get("fingerprint") == fingerprint and os.path.exists(model_path):
            self.model = keras.saving.load_model(model_path)
            self.info = info
        else:
            print(f"Training the evaluator classifier ({folder}): once for this data.")
            os.makedirs(folder, exist_ok=True)
            self.model = build_evaluator(len(self.class_names))
            images = np.concatenate([mnist_images, emnist_images])
            labels = np.concatenate([mnist_labels, emnist_labels])
            started = time.perf_counter()
            self.model.compile(optimizer="adam", metrics=["accuracy"],
                               loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
            self.model.fit(data.make_dataset(images, labels, EVALUATOR_BATCH_SIZE, seed=0),
                           epochs=epochs, verbose=2, shuffle=False)
            self.info = {
                "fingerprint": fingerprint,
                "data_source": data.source_description("emnist", data_dir),
                "train_images": int(len(images)),
                "epochs": epochs,
                "training_seconds": time.perf_counter() - started,
                "test_accuracy": {
                    "mnist": self.accuracy(*data.load("mnist", "test", data_dir)),
                    "emnist": self.accuracy(*data.load("emnist", "test", data_dir)),
                },
            }
            self.model.save(model_path)
            with open(info_path, "w") as file:
                json.dump(self.info, file, indent=2)
        self.feature_model = keras.Model(self.model.inputs,
                                         self.model.get_layer(FEATURE_LAYER).output)

    def predict(self, images01):
        return self.model.predict(images01, verbose=0, batch_size=1024).argmax(axis=1)

    def features(self, images01):
        return self.feature_model.predict(images01, verbose=0, batch_size=1024)

    def accuracy(self, images, labels):
        return float((self.predict(data.scale_images(images)) == labels).mean())


# --------------------------------------------------------------------------------------------
# Scoring a run
# --------------------------------------------------------------------------------------------


def score_samples(evaluator, real_images01, real_labels, fake_images01, set_classes):
    """Every sample-based metric of `fake_images01` against one validation set."""
    real_features = evaluator.features(real_images01)
    fake_features = evaluator.features(fake_images01)
    kid, kid_error = kernel_inception_distance(real_features, fake_features)
    precision, recall = precision_recall(real_features, fake_features)
    scores = {
        "samples": int(len(fake_images01)),
        "fid": frechet_distance(real_features, fake_features),
        "kid": kid,
        "kid_standard_error": kid_error,
        "precision": precision,
        "recall": recall,
    }
    predicted = evaluator.predict(fake_images01)
    scores.update(class_statistics(predicted, set_classes, evaluator.class_names))
    # The samples the evaluator calls one of the set's classes, alone: how good the digits
    # are that a model makes, apart from how many of its samples are digits at all.
    in_set = np.isin(predicted, set_classes)
    scores["in_set_samples"] = int(in_set.sum())
    if in_set.sum() >= MIN_SAMPLES_FOR_FID:
        scores["in_set_fid"] = frechet_distance(real_features, fake_features[in_set])
    return scores


def vae_elbo(encoder, decoder, images01, labels, num_classes, batch_size=512):
    """Mean negative ELBO, reconstruction and KL (nats per image) of a trained VAE on a set."""
    import tensorflow as tf

    from common import vae

    model = vae.VAE(encoder, decoder, num_classes=num_classes, seed=SAMPLE_SEED)
    totals = np.zeros(2)
    for start in range(0, len(images01), batch_size):
        batch = tf.constant(images01[start : start + batch_size])
        batch_labels = tf.constant(labels[start : start + batch_size].astype(np.int32))
        losses = model.losses_of(batch, batch_labels, training=False)
        totals += np.array([float(loss) for loss in losses]) * len(batch)
    reconstruction, kl = totals / len(images01)
    return {"negative_elbo": reconstruction + kl, "reconstruction": reconstruction, "kl": kl}


def latent_statistics(encoder, images01, labels, num_classes, neighbours=5):
    """How separable the classes are in a VAE's latent space (the study's crowding question).

    - latent_knn_accuracy: leave-one-out 5-nearest-neighbour accuracy of the class from the
      latent means (1.0: every class its own cluster; low: classes crowd together);
    - latent_centres_within_1: share of classes whose median code lies within 1 of the
      origin (the prior's standard deviation): the "central cluster" of the study.
    """
    from common import vae

    points = vae.encode(encoder, images01, labels if num_classes else None).astype(np.float32)
    votes = []
    for start in range(0, len(points), 2048):
        distances = _squared_distances(points[start : start + 2048], points)
        distances[np.arange(len(distances)), np.arange(start, start + len(distances))] = np.inf
        nearest = np.argpartition(distances, neighbours, axis=1)[:, :neighbours]
        votes += [np.bincount(labels[row]).argmax() for row in nearest]
    classes = sorted(set(labels.tolist()))
    centres = np.array([np.median(points[labels == label], axis=0) for label in classes])
    return {
        "latent_knn_accuracy": float((np.array(votes) == labels).mean()),
        "latent_centres_within_1": float((np.linalg.norm(centres, axis=1) <= 1.0).mean()),
    }


def evaluate_run(run_path, data_dir=None, evaluator_folder=None, max_samples=MAX_SAMPLES):
    """Scores the finished run in `run_path` on both validation sets; writes `eval.json`."""
    from common import models

    config = models.read_config(run_path)
    kind = config["model"]
    if not os.path.exists(os.path.join(run_path, "finished.json")):
        raise ValueError(f"{run_path} has not finished training; nothing to evaluate yet.")
    evaluator_folder = evaluator_folder or os.path.join(
        os.path.dirname(os.path.abspath(run_path)), "evaluator")
    started = time.perf_counter()
    evaluator = Evaluator(evaluator_folder, data_dir)
    image_maker = models.load_network(run_path, models.IMAGE_MAKER[kind])
    encoder = models.load_network(run_path, "encoder") if kind == "vae" else None
    model_classes = len(config["class_names"]) if config["hyperparameters"]["CONDITIONAL"] else 0
    rng = np.random.default_rng(SAMPLE_SEED)
    results = {"run": run_path, "model": kind, "data_source": config["data_source"],
               "evaluator": evaluator.info, "validation_sets": {}}
    for name in data.VALIDATION_SETS:
        images, labels = data.validation_set(name, data_dir)
        if len(images) > max_samples:
            keep = rng.choice(len(images), max_samples, replace=False)
            images, labels = images[keep], labels[keep]
        real01 = data.scale_images(images)
        set_classes = sorted(set(labels.tolist()))
        latent = rng.normal(size=(len(images), models.latent_size(image_maker))).astype(np.float32)
        requested = None
        if model_classes:
            # Ask for the set's own classes, as far as the model knows them.
            known = labels[labels < model_classes]
            requested = rng.choice(known, len(images)) if len(known) else None
        fake01 = models.make_images(kind, image_maker, latent, requested)
        scores = score_samples(evaluator, real01, labels, fake01, set_classes)
        if requested is not None:
            predicted = evaluator.predict(fake01)
            scores["conditional_accuracy"] = float((predicted == requested).mean())
            scores["conditional_accuracy_per_class"] = {
                config["class_names"][label]: float((predicted[requested == label] == label).mean())
                for label in sorted(set(requested.tolist()))
            }
        if encoder is not None:
            usable = labels < model_classes if model_classes else np.ones(len(labels), bool)
            scores.update(vae_elbo(encoder, image_maker, real01[usable], labels[usable],
                                   model_classes))
            scores.update(latent_statistics(encoder, real01[usable], labels[usable],
                                            model_classes))
        results["validation_sets"][name] = scores
        print(f"{name:>13}: FID {scores['fid']:.2f}  KID {scores['kid']:.4f}  precision "
              f"{scores['precision']:.3f}  recall {scores['recall']:.3f}  letters "
              f"{scores['letters_share']:.3f}  coverage {scores['coverage']:.2f}"
              + (f"  -ELBO {scores['negative_elbo']:.1f}" if kind == "vae" else ""))
    results["seconds"] = time.perf_counter() - started
    with open(os.path.join(run_path, "eval.json"), "w") as file:
        json.dump(results, file, indent=2)
    print(f"Wrote {os.path.join(run_path, 'eval.json')}")
    return results
