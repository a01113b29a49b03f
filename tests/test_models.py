"""Retraining (weight transfer), the GAN and VAE models and the command-line contract."""

import numpy as np
import pytest

import common.experiment as experiment
import common.gan as gan
import common.models as models
import common.vae as vae

VAE_HYPERPARAMETERS = {"LATENT_DIM": 2, "ENCODER_FILTERS": (4, 8), "DECODER_FILTERS": (8, 4),
                       "KERNEL_SIZE": 3, "DENSE_UNITS": 8, "LEARNING_RATE": 1e-3,
                       "CONDITIONAL": False, "SEED": 0}
GAN_HYPERPARAMETERS = {
    "LATENT_DIM": 8, "GENERATOR_FILTERS": (8, 4), "DISCRIMINATOR_FILTERS": (4, 8),
    "KERNEL_SIZE": 3, "DROPOUT": 0.3, "GENERATOR_LEARNING_RATE": 2e-4,
    "DISCRIMINATOR_LEARNING_RATE": 2e-4, "ADAM_BETA_1": 0.5, "LABEL_SMOOTHING": 0.1,
    "CONDITIONAL": True, "SEED": 0,
}


def test_conditional_retraining_keeps_the_digit_classes_and_starts_letters_fresh():
    digits_model = gan.build(GAN_HYPERPARAMETERS, num_classes=10)
    letters_model = gan.build(GAN_HYPERPARAMETERS, num_classes=47)
    fresh = letters_model.generator.get_layer("label_embedding").get_weights()[0].copy()
    models.transfer_weights(digits_model.generator, letters_model.generator)
    source = digits_model.generator.get_layer("label_embedding").get_weights()[0]
    target = letters_model.generator.get_layer("label_embedding").get_weights()[0]
    np.testing.assert_array_equal(target[:10], source)
    np.testing.assert_array_equal(target[10:], fresh[10:])
    np.testing.assert_array_equal(letters_model.generator.get_layer("project").get_weights()[0],
                                  digits_model.generator.get_layer("project").get_weights()[0])


def test_conditional_vae_retraining_copies_the_one_hot_rows_of_the_dense_layers():
    hyperparameters = {**VAE_HYPERPARAMETERS, "CONDITIONAL": True}
    digits_model = vae.build(hyperparameters, num_classes=10)
    letters_model = vae.build(hyperparameters, num_classes=47)
    models.transfer_weights(digits_model.decoder, letters_model.decoder)
    source = digits_model.decoder.get_layer("project").get_weights()[0]  # (2 + 10, units)
    target = letters_model.decoder.get_layer("project").get_weights()[0]  # (2 + 47, units)
    np.testing.assert_array_equal(target[:12], source)


def test_other_shapes_are_refused_by_name():
    small = gan.build(GAN_HYPERPARAMETERS, num_classes=10)
    wider = gan.build({**GAN_HYPERPARAMETERS, "GENERATOR_FILTERS": (16, 4)}, num_classes=10)
    with pytest.raises(ValueError, match="Layer 'project'.*architectures differ"):
        models.transfer_weights(small.generator, wider.generator)


def test_gan_train_step_updates_both_networks_with_finite_losses():
    import tensorflow as tf

    model = gan.build({**GAN_HYPERPARAMETERS, "CONDITIONAL": False}, num_classes=10)
    before = [w.copy() for w in (model.generator.get_weights()[0],
                                 model.discriminator.get_weights()[0])]
    images = tf.random.uniform((16, 28, 28, 1), -1, 1)
    logs = model.train_step((images, tf.zeros(16, tf.int32)))
    assert all(np.isfinite(float(value)) for value in logs.values())
    assert set(logs) == {"discriminator_loss", "generator_loss", "real_accuracy"}
    assert not np.array_equal(before[0], model.generator.get_weights()[0])
    assert not np.array_equal(before[1], model.discriminator.get_weights()[0])


def test_hyperparameters_of_keeps_only_uppercase_constants():
    namespace = {"EPOCHS": 3, "OUT_DIR": "x", "DATA_DIR": None, "lower": 1, "MODULE": np,
                 "FILTERS": (1, 2)}
    assert experiment.hyperparameters_of(namespace) == {
        "EPOCHS": 3, "OUT_DIR": "x", "DATA_DIR": None, "FILTERS": (1, 2)}


def test_configure_overrides_constants_and_types(monkeypatch):
    namespace = {"__doc__": "A test.", "EPOCHS": 3, "LEARNING_RATE": 1e-3, "CONDITIONAL": False,
                 "FILTERS": (32, 64), "DATA_DIR": None, "OUT_DIR": "outputs/x"}
    experiment.configure(namespace, ["--epochs", "5", "--learning-rate", "0.01",
                                     "--conditional", "true", "--filters", "8,16",
                                     "--data-dir", "/data"])
    assert namespace["EPOCHS"] == 5 and namespace["LEARNING_RATE"] == 0.01
    assert namespace["CONDITIONAL"] is True and namespace["FILTERS"] == (8, 16)
    assert namespace["DATA_DIR"] == "/data" and namespace["OUT_DIR"] == "outputs/x"


def test_resuming_from_another_models_checkpoint_names_the_file(tmp_path):
    import types

    gan_model = gan.build(GAN_HYPERPARAMETERS, 10)
    checkpoint = tmp_path / experiment.CHECKPOINT_WEIGHTS
    gan_model.save_weights(str(checkpoint))
    vae_model = vae.build({"LATENT_DIM": 2, "ENCODER_FILTERS": (4, 8), "DECODER_FILTERS": (8, 4),
                           "KERNEL_SIZE": 3, "DENSE_UNITS": 8, "LEARNING_RATE": 1e-3,
                           "CONDITIONAL": False, "SEED": 0}, 10)
    run = types.SimpleNamespace(completed_epochs=1, path=str(tmp_path),
                                file=lambda name: str(tmp_path / name))
    with pytest.raises(ValueError, match=f"{checkpoint} does not fit this model"):
        experiment.RunFolder.restore_checkpoint(run, vae_model)


def test_auto_precision_is_mixed_bfloat16_only_where_a_gpu_is_present():
    assert experiment.precision_policy("auto", gpus=["GPU:0"]) == "mixed_bfloat16"
    assert experiment.precision_policy("auto", gpus=[]) == "float32"
    assert experiment.precision_policy("mixed_bfloat16", gpus=[]) == "mixed_bfloat16"
    assert experiment.precision_policy("float32", gpus=["GPU:0"]) == "float32"
    with pytest.raises(ValueError, match="--precision must be one of auto, float32, "
                                         "mixed_bfloat16, got 'float16'"):
        experiment.precision_policy("float16")


@pytest.mark.parametrize("kind", ["gan", "vae"])
def test_mixed_bfloat16_computes_in_bfloat16_with_float32_weights_losses_and_checkpoints(
        kind, tmp_path):
    import keras
    import tensorflow as tf

    build, hyperparameters = ((gan.build, {**GAN_HYPERPARAMETERS, "CONDITIONAL": False})
                              if kind == "gan" else (vae.build, VAE_HYPERPARAMETERS))
    plain = build({**hyperparameters, "PRECISION": "float32"}, 10)
    mixed = build({**hyperparameters, "PRECISION": "mixed_bfloat16"}, 10)
    assert keras.mixed_precision.global_policy().name == "float32"  # restored after building
    image_maker = mixed.generator if kind == "gan" else mixed.decoder
    hidden = image_maker.get_layer("upsample_1")
    assert hidden.compute_dtype == "bfloat16" and hidden.output.dtype == "bfloat16"
    assert image_maker.output.dtype == "float32"
    assert {variable.dtype for variable in mixed.weights} == {"float32"}
    # A float32 run's checkpoint loads into the mixed model: same weights, same images.
    checkpoint = str(tmp_path / "plain.weights.h5")
    plain.save_weights(checkpoint)
    mixed.load_weights(checkpoint)
    latent = np.random.default_rng(0).normal(size=(8, models.latent_size(image_maker)))
    expected = models.make_images(kind, plain.generator if kind == "gan" else plain.decoder,
                                  latent.astype(np.float32))
    got = models.make_images(kind, image_maker, latent.astype(np.float32))
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, expected, atol=0.05)  # bfloat16: ~3 significant digits
    images = tf.random.uniform((16, 28, 28, 1), -1 if kind == "gan" else 0, 1)
    logs = mixed.train_step((images, tf.zeros(16, tf.int32)))
    assert all(value.dtype == "float32" and np.isfinite(float(value)) for value in logs.values())


def test_resuming_a_run_from_before_a_new_hyperparameter_compares_the_recorded_ones(
        tmp_path, tiny_data, capsys):
    import argparse
    import json

    options = argparse.Namespace(resume=False, overwrite=False, strategy_name="default",
                                 strategy=experiment.distribution_strategy("default"))
    hyperparameters = {**VAE_HYPERPARAMETERS, "EPOCHS": 2, "PRECISION": "auto"}
    path = tmp_path / "run"
    experiment.RunFolder(str(path), "vae", hyperparameters, options, "mnist", tiny_data)
    config = json.loads((path / experiment.CONFIG_FILE).read_text())
    del config["hyperparameters"]["PRECISION"]  # as written before PRECISION existed
    (path / experiment.CONFIG_FILE).write_text(json.dumps(config))
    options.resume = True
    experiment.RunFolder(str(path), "vae", hyperparameters, options, "mnist", tiny_data)
    assert "predates PRECISION: resuming with the script's values" in capsys.readouterr().out
    with pytest.raises(ValueError, match=r"Cannot resume .*'EPOCHS': \(2, 3\)"):
        experiment.RunFolder(str(path), "vae", {**hyperparameters, "EPOCHS": 3}, options,
                             "mnist", tiny_data)
