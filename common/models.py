"""The trained networks of a run folder: save, load, sample, retrain from, write text.

A run saves its networks as native `.keras` files (loadable with `keras.saving.load_model` in
safe mode): `generator.keras` and `discriminator.keras` for a GAN, `encoder.keras` and
`decoder.keras` for a VAE. The image maker (generator or decoder) takes noise or a latent code
(and a label, when conditional) and draws a 28x28 image.
"""

import json
import os
import re
import zlib

import numpy as np

from common import experiment

NETWORKS = {"gan": ("generator", "discriminator"), "vae": ("encoder", "decoder")}
IMAGE_MAKER = {"gan": "generator", "vae": "decoder"}
# Hyperparameters that may differ between a run and the run it is retrained from.
MAY_DIFFER_ON_RETRAINING = {
    "DATA_DIR", "OUT_DIR", "INIT_FROM", "EPOCHS", "LIMIT", "SEED", "STEPS_PER_EXECUTION",
    "LEARNING_RATE", "GENERATOR_LEARNING_RATE", "DISCRIMINATOR_LEARNING_RATE", "ADAM_BETA_1",
    "LABEL_SMOOTHING", "DROPOUT", "BATCH_SIZE", "NUM_SAMPLES", "PLOT_CHARS", "GRID_SIZE",
    "EVALUATION_SAMPLES", "PRECISION",
}


def read_config(run_path):
    path = os.path.join(run_path, "config.json")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} not found: {run_path} is not a run folder.")
    with open(path) as file:
        return json.load(file)


def save_networks(model, kind, run_path):
    for name in NETWORKS[kind]:
        getattr(model, name).save(os.path.join(run_path, f"{name}.keras"))


def load_network(run_path, name):
    import keras

    from common import vae  # registers Sampling and common.layers for safe mode  # noqa: F401

    path = os.path.join(run_path, f"{name}.keras")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} not found: has this run finished training?")
    return keras.saving.load_model(path, safe_mode=True)


def make_images(kind, image_maker, latent, labels=None):
    """Images in [0, 1] from a generator (tanh, [-1, 1]) or decoder (sigmoid, [0, 1])."""
    inputs = [latent] if labels is None else [latent, np.asarray(labels, dtype=np.int32)]
    images = image_maker.predict(inputs, verbose=0, batch_size=512)
    return (images + 1.0) / 2.0 if kind == "gan" else images


def latent_size(image_maker):
    return image_maker.inputs[0].shape[-1]


def sample(run_path, count, labels=None, seed=0):
    """`count` images in [0, 1] drawn from a finished run's prior (and `labels`, if given)."""
    config = read_config(run_path)
    kind = config["model"]
    image_maker = load_network(run_path, IMAGE_MAKER[kind])
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(count, latent_size(image_maker))).astype(np.float32)
    return make_images(kind, image_maker, latent, labels)


def transfer_weights(source, target):
    """Copies `source`'s weights into `target` layer by layer, matching layers by name.

    A weight whose first axis is shorter in `source` (label embeddings, the rows of a Dense
    that read a one-hot label) is copied into the leading rows: the classes the source knew
    (EMNIST's first 10 labels are MNIST's digits) carry over, the new classes start fresh.
    """
    source_layers = {layer.name: layer for layer in source.layers}
    copied = 0
    for layer in target.layers:
        if layer.name not in source_layers or not layer.weights:
            continue
        new_weights = []
        for old, new in zip(source_layers[layer.name].get_weights(), layer.get_weights()):
            if old.shape == new.shape:
                new_weights.append(old)
            elif old.shape[1:] == new.shape[1:] and old.shape[0] < new.shape[0]:
                new[: old.shape[0]] = old
                new_weights.append(new)
            else:
                raise ValueError(
                    f"Layer {layer.name!r} of {target.name} has weights of shape {new.shape}, "
                    f"but the run to retrain from has {old.shape}: the architectures differ."
                )
        layer.set_weights(new_weights)
        copied += 1
    return copied


def init_from(model, kind, hyperparameters, source_path):
    """Starts `model` from the trained networks in `source_path` (the study's retraining)."""
    config = read_config(source_path)
    if config.get("model") != kind:
        raise ValueError(
            f"--init-from {source_path} holds a {config.get('model')} run; this script trains "
            f"a {kind}."
        )
    different = experiment.differing_hyperparameters(
        config["hyperparameters"], hyperparameters,
        ignore=MAY_DIFFER_ON_RETRAINING | (hyperparameters.keys() - config["hyperparameters"]))
    if different:
        raise ValueError(
            f"--init-from {source_path} has another architecture; differing hyperparameters "
            f"(there, here): {different}."
        )
    for name in NETWORKS[kind]:
        transfer_weights(load_network(source_path, name), getattr(model, name))
    print(f"Initialised from {source_path}.")


def write_handwriting(run_path, text):
    """`text` in generated handwriting from a conditional run; returns the PNG's path."""
    from common import plots

    config = read_config(run_path)
    if not config["hyperparameters"].get("CONDITIONAL"):
        raise ValueError(
            f"--generate needs a conditional model, but {run_path} was trained with "
            f"CONDITIONAL = False. Train with --conditional true first."
        )
    names = config["class_names"]
    unsupported = sorted({character for character in text if character != " "
                          and character not in names})
    if unsupported:
        raise ValueError(
            f"--generate: {''.join(unsupported)!r} not in this dataset; supported characters: "
            f"{''.join(names)} and space."
        )
    characters = [character for character in text if character != " "]
    images = iter(sample(run_path, len(characters),
                         labels=[names.index(character) for character in characters],
                         seed=zlib.crc32(text.encode())) if characters else [])
    line = [None if character == " " else next(images) for character in text]
    path = os.path.join(run_path, f"generated_{re.sub('[^A-Za-z0-9]+', '_', text).strip('_')}.png")
    plots.save_handwriting(line, path, f"{text!r}: {config['model'].upper()} trained on "
                                       f"{config['data_source']}")
    print(f"Wrote {path}")
    return path


def save_retraining_figure(source_path, run, count=50, columns=10):
    """What retraining did: samples of the source model (top) and of the retrained model
    (bottom) from the same noise; conditional models are asked for the digits 0-9 in turn."""
    from common import plots

    conditional = run.hyperparameters["CONDITIONAL"]
    labels = np.arange(count) % 10 if conditional else None
    before = sample(source_path, count, labels, seed=run.hyperparameters["SEED"])
    after = sample(run.path, count, labels, seed=run.hyperparameters["SEED"])
    plots.save_image_grid(
        np.concatenate([before, after]), run.file("retraining_before_after.png"),
        run.title(f"top: {os.path.basename(os.path.normpath(source_path))} before "
                  f"retraining; bottom: after (same noise)"), columns=columns)
