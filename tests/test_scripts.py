"""Smoke tests: the four real scripts, end to end, on tiny data (1-3 epochs, a few batches)."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import ROOT

QUICK = ["--epochs", "1", "--limit", "128", "--batch-size", "32"]


def run_script(script, *arguments, expect_success=True, timeout=300):
    environment = dict(os.environ, CI="1")
    result = subprocess.run([sys.executable, os.path.join(ROOT, script), *map(str, arguments)],
                            capture_output=True, text=True, timeout=timeout, env=environment)
    if expect_success and result.returncode != 0:
        raise AssertionError(f"{script} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


@pytest.fixture(scope="session")
def runs(tmp_path_factory):
    return tmp_path_factory.mktemp("outputs")


@pytest.fixture(scope="session")
def gan_mnist_run(runs, tiny_data):
    out = runs / "gan_mnist"
    run_script("gan_mnist.py", *QUICK, "--data-dir", tiny_data, "--out-dir", out)
    return out


@pytest.fixture(scope="session")
def vae_mnist_run(runs, tiny_data):
    out = runs / "vae_mnist"
    run_script("vae_mnist.py", *QUICK, "--data-dir", tiny_data, "--out-dir", out,
               "--plot-chars", "5")
    return out


@pytest.fixture(scope="session")
def conditional_gan_mnist_run(runs, tiny_data):
    out = runs / "gan_mnist_conditional"
    run_script("gan_mnist.py", *QUICK, "--conditional", "true", "--data-dir", tiny_data,
               "--out-dir", out)
    return out


def load_safely(path):
    import keras

    import common.vae  # noqa: F401  (registers the Sampling layer)

    return keras.saving.load_model(str(path), safe_mode=True)


def assert_run_contract(out, networks, epochs=1):
    config = json.loads((out / "config.json").read_text())
    assert config["hyperparameters"]["EPOCHS"] == epochs
    assert config["versions"]["keras"].startswith("3.")
    assert config["machine"]["cpu_count"] >= 1
    for epoch in range(1, epochs + 1):
        assert (out / f"samples_epoch_{epoch:03d}.png").stat().st_size > 1000
    for name in ("samples_final.png", "training.gif", "loss_curves.png", "history.csv",
                 "checkpoint.weights.h5", "finished.json", "eval.json"):
        assert (out / name).stat().st_size > 0, name
    history = (out / "history.csv").read_text().splitlines()
    assert history[0].startswith("epoch,") and "seconds" in history[0]
    assert [int(line.split(",")[0]) for line in history[1:]] == list(range(1, epochs + 1))
    assert any(name.startswith("events") for _, _, files in os.walk(out / "logs")
               for name in files)
    for name in networks:
        model = load_safely(out / f"{name}.keras")
        assert model.count_params() > 0
    evaluation = json.loads((out / "eval.json").read_text())
    for name in ("digits", "digits_upper"):
        scores = evaluation["validation_sets"][name]
        for metric in ("fid", "kid", "kid_standard_error", "precision", "recall",
                       "letters_share", "coverage", "in_set_samples"):
            assert np.isfinite(scores[metric]), (name, metric)
    return config, evaluation


def test_gan_mnist_writes_every_output(gan_mnist_run):
    config, _ = assert_run_contract(gan_mnist_run, ("generator", "discriminator"))
    assert config["model"] == "gan" and config["data_source"] == "MNIST"
    import tensorflow as tf

    # PRECISION auto, recorded as what it chose on this machine.
    gpus = tf.config.list_physical_devices("GPU")
    assert config["precision"] == ("mixed_bfloat16" if gpus else "float32")
    generator = load_safely(gan_mnist_run / "generator.keras")
    assert generator.output.shape[1:] == (28, 28, 1)


def test_vae_mnist_writes_every_output_and_latent_figures(vae_mnist_run):
    _, evaluation = assert_run_contract(vae_mnist_run, ("encoder", "decoder"))
    for name in ("latent_scatter.png", "latent_scatter_5.png", "latent_grid.png"):
        assert (vae_mnist_run / name).stat().st_size > 1000
    digits = evaluation["validation_sets"]["digits"]
    assert digits["negative_elbo"] == pytest.approx(digits["reconstruction"] + digits["kl"])
    assert "val_loss" in (vae_mnist_run / "history.csv").read_text().splitlines()[0]


def test_conditional_gan_generates_text_and_retrains_on_emnist(conditional_gan_mnist_run, runs,
                                                               tiny_data):
    out = runs / "gan_emnist_conditional"
    result = run_script("gan_emnist.py", *QUICK, "--conditional", "true", "--data-dir",
                        tiny_data, "--out-dir", out, "--init-from", conditional_gan_mnist_run)
    assert "Initialised from" in result.stdout
    assert (out / "retraining_before_after.png").stat().st_size > 1000
    config, evaluation = assert_run_contract(out, ("generator", "discriminator"))
    assert "STAND-IN" in config["data_source"]  # tiny EMNIST files are not official counts
    assert 0 <= evaluation["validation_sets"]["digits"]["conditional_accuracy"] <= 1
    run_script("gan_emnist.py", "--out-dir", out, "--generate", "HI 42")
    assert (out / "generated_HI_42.png").stat().st_size > 500
    refused = run_script("gan_emnist.py", "--out-dir", out, "--generate", "hi",
                         expect_success=False)
    assert refused.returncode == 2
    assert "'i'" in refused.stderr and "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabdefghnqrt" \
        in refused.stderr


def test_generate_needs_a_conditional_model(gan_mnist_run):
    refused = run_script("gan_mnist.py", "--out-dir", gan_mnist_run, "--generate", "42",
                         expect_success=False)
    assert refused.returncode == 2 and "CONDITIONAL = False" in refused.stderr


def test_vae_retrained_on_emnist_and_conditional_vae_generates(vae_mnist_run, runs, tiny_data):
    retrained = runs / "vae_emnist_retrained"
    result = run_script("vae_emnist.py", *QUICK, "--data-dir", tiny_data, "--out-dir",
                        retrained, "--init-from", vae_mnist_run, "--plot-chars", "AEIOU")
    assert "Initialised from" in result.stdout
    assert_run_contract(retrained, ("encoder", "decoder"))
    assert (retrained / "latent_scatter_AEIOU.png").exists()
    assert (retrained / "retraining_before_after.png").exists()

    conditional = runs / "vae_emnist_conditional"
    run_script("vae_emnist.py", *QUICK, "--data-dir", tiny_data, "--out-dir", conditional,
               "--conditional", "true", "--latent-dim", "3")
    assert_run_contract(conditional, ("encoder", "decoder"))
    run_script("vae_emnist.py", "--out-dir", conditional, "--generate", "AB 7")
    assert (conditional / "generated_AB_7.png").exists()


def test_init_from_another_model_is_refused(vae_mnist_run, runs, tiny_data):
    out = runs / "refused"
    result = run_script("gan_emnist.py", *QUICK, "--data-dir", tiny_data, "--out-dir", out,
                        "--init-from", vae_mnist_run, expect_success=False)
    assert result.returncode == 2 and "holds a vae run" in result.stderr
    assert not out.exists()
    result = run_script("vae_emnist.py", *QUICK, "--data-dir", tiny_data, "--out-dir",
                        out / "other", "--init-from", vae_mnist_run, "--dense-units", "8",
                        expect_success=False)
    assert result.returncode == 2 and "DENSE_UNITS" in result.stderr


@pytest.mark.parametrize("arguments, message", [
    (["--plot-chars", "Q"], "'Q' is not in this dataset"),
    (["--latent-axes", "0,2"], "--latent-axes needs two different axes below LATENT_DIM = 2"),
])
def test_bad_figure_options_fail_before_training(arguments, message, runs, tiny_data):
    out = runs / "bad_figures"
    result = run_script("vae_mnist.py", *QUICK, *arguments, "--data-dir", tiny_data,
                        "--out-dir", out, expect_success=False)
    assert result.returncode == 2 and message in result.stderr
    assert not out.exists()


def test_finished_run_is_never_silently_overwritten(vae_mnist_run, tiny_data):
    before = (vae_mnist_run / "decoder.keras").stat().st_mtime_ns
    refused = run_script("vae_mnist.py", *QUICK, "--data-dir", tiny_data, "--out-dir",
                         vae_mnist_run, expect_success=False)
    assert refused.returncode == 2 and "already holds a finished run" in refused.stderr
    assert (vae_mnist_run / "decoder.keras").stat().st_mtime_ns == before


def test_overwrite_replaces_a_run(runs, tiny_data):
    out = runs / "overwritten"
    run_script("vae_mnist.py", *QUICK, "--data-dir", tiny_data, "--out-dir", out)
    (out / "note.txt").write_text("stale")
    run_script("vae_mnist.py", *QUICK, "--data-dir", tiny_data, "--out-dir", out, "--overwrite",
               "--latent-dim", "3")
    assert not (out / "note.txt").exists()
    assert json.loads((out / "config.json").read_text())["hyperparameters"]["LATENT_DIM"] == 3


def test_resume_after_kill_continues_history(runs, tiny_data):
    out = runs / "resumed"
    arguments = ["vae_mnist.py", "--epochs", "3", "--batch-size", "8", "--data-dir", tiny_data,
                 "--out-dir", out]
    process = subprocess.Popen([sys.executable, os.path.join(ROOT, arguments[0]),
                                *map(str, arguments[1:])],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env=dict(os.environ, CI="1"))
    deadline = time.time() + 240
    while not (out / "checkpoint.json").exists() and time.time() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed_after = json.loads((out / "checkpoint.json").read_text())["epoch"]
    assert killed_after < 3 and not (out / "finished.json").exists()
    result = run_script(*arguments, "--resume")
    assert f"after epoch {killed_after}" in result.stdout
    history = (out / "history.csv").read_text().splitlines()
    assert [int(line.split(",")[0]) for line in history[1:]] == [1, 2, 3]
    assert (out / "finished.json").exists()
    refused = run_script(*arguments, "--resume", "--epochs", "5", expect_success=False)
    assert refused.returncode == 2


@pytest.mark.parametrize("arguments, message", [
    (["--epochs", "0"], "--epochs must be positive"),
    (["--epochs", "two"], "expected int, got 'two'"),
    (["--dropout", "1.5"], "--dropout must be in [0, 1)"),
    (["--generator-filters", "64,x"], "comma-separated"),
    (["--conditional", "maybe"], "expected true or false"),
    (["--learning-rate", "0.1"], "unrecognized arguments: --learning-rate"),
    (["--batch-size", "1000"], "--batch-size 1000 is larger than the 470 training images"),
    (["--precision", "float16"], "--precision must be one of auto, float32, mixed_bfloat16"),
])
def test_bad_command_line_values_are_rejected_before_work(arguments, message, runs, tiny_data):
    out = runs / "never"
    result = run_script("gan_mnist.py", *arguments, "--data-dir", tiny_data, "--out-dir", out,
                        expect_success=False, timeout=120)
    assert result.returncode == 2
    assert message in result.stderr
    assert not out.exists()


def test_nan_loss_stops_training_and_keeps_last_good_checkpoint(tmp_path, tiny_data):
    import argparse

    import common.data as data
    import common.experiment as experiment
    import common.vae as vae

    hyperparameters = {"LATENT_DIM": 2, "ENCODER_FILTERS": (8, 8), "DECODER_FILTERS": (8, 8),
                       "KERNEL_SIZE": 3, "DENSE_UNITS": 8, "LEARNING_RATE": 1e-3,
                       "CONDITIONAL": False, "SEED": 0}
    options = argparse.Namespace(resume=False, overwrite=False, strategy_name="default",
                                 strategy=experiment.distribution_strategy("default"))
    run = experiment.RunFolder(str(tmp_path / "run"), "vae", hyperparameters, options, "mnist",
                               tiny_data)
    model = vae.build(hyperparameters, num_classes=10)
    images, labels = data.load("mnist", "train", tiny_data)
    experiment.fit(model, data.make_dataset(images, labels, 64), run, epochs=1)
    good = model.get_weights()
    broken = data.make_dataset(images, labels, 64).map(lambda x, y: (x * np.nan, y))
    with pytest.raises(FloatingPointError, match="became nan at batch 1 of epoch 2"):
        experiment.fit(model, broken, run, epochs=3)
    assert json.loads((tmp_path / "run" / "checkpoint.json").read_text())["epoch"] == 1
    assert len((tmp_path / "run" / "history.csv").read_text().splitlines()) == 2
    fresh = vae.build(hyperparameters, num_classes=10)
    fresh.load_weights(str(tmp_path / "run" / "checkpoint.weights.h5"))
    for saved, kept in zip(fresh.get_weights(), good):
        np.testing.assert_array_equal(saved, kept)


def test_report_tables_finished_runs_and_lists_missing_ones(gan_mnist_run, vae_mnist_run,
                                                            tmp_path):
    import shutil

    outputs = tmp_path / "outputs"
    for run in (gan_mnist_run, vae_mnist_run):
        shutil.copytree(run, outputs / run.name)
    unfinished = outputs / "gan_emnist"
    shutil.copytree(gan_mnist_run, unfinished)
    (unfinished / "finished.json").unlink()
    run_script("compare.py", "--outputs", outputs)
    report = (outputs / "REPORT.md").read_text()
    assert "| GAN, MNIST | MNIST | 1 |" in report and "| VAE, MNIST | MNIST | 1 |" in report
    gan_fid = json.loads((gan_mnist_run / "eval.json").read_text())["validation_sets"][
        "digits"]["fid"]
    assert f"GAN {gan_fid:.1f}" in report  # conclusion 2 quotes the measured FIDs
    assert "- GAN, EMNIST from scratch: no finished, evaluated run" in report
    assert "`gan_emnist`: not finished, left out" in report
    assert "1. Speed: not checked" in report
    for figure in ("report_samples.png", "report_latent.png", "report_losses.png"):
        assert (outputs / figure).stat().st_size > 1000


@pytest.mark.parametrize("script, single_device_run, precision", [
    ("gan_mnist.py", "gan_mnist_run", "float32"),
    ("gan_mnist.py", "gan_mnist_run", "mixed_bfloat16"),  # what auto picks on GPUs
    ("vae_mnist.py", "vae_mnist_run", "float32"),
])
def test_mirrored_strategy_on_two_logical_cpus(script, single_device_run, precision, request,
                                               runs, tiny_data, monkeypatch):
    single = request.getfixturevalue(single_device_run)
    out = runs / f"mirrored_{script[:3]}_{precision}"
    monkeypatch.setenv("HANDWRITING_LOGICAL_CPUS", "2")
    extra = ["--plot-chars", "5"] if script.startswith("vae") else []  # as the single run
    result = run_script(script, *QUICK, "--strategy", "mirrored", "--precision", precision,
                        "--data-dir", tiny_data, "--out-dir", out, *extra)
    assert "MirroredStrategy over 2 replica(s)." in result.stdout
    config = json.loads((out / "config.json").read_text())
    assert config["strategy"] == {"name": "mirrored", "replicas": 2}
    assert config["precision"] == precision
    header, row = (out / "history.csv").read_text().splitlines()
    losses = [float(value) for name, value in zip(header.split(","), row.split(","))
              if name.endswith("loss")]
    assert losses and all(np.isfinite(losses))
    assert sorted(os.listdir(out)) == sorted(os.listdir(single))


def test_mixed_bfloat16_run_writes_the_same_outputs(vae_mnist_run, runs, tiny_data):
    out = runs / "vae_mnist_bfloat16"
    run_script("vae_mnist.py", *QUICK, "--precision", "mixed_bfloat16", "--data-dir", tiny_data,
               "--out-dir", out, "--plot-chars", "5")
    config, _ = assert_run_contract(out, ("encoder", "decoder"))
    assert config["hyperparameters"]["PRECISION"] == "mixed_bfloat16"
    assert config["precision"] == "mixed_bfloat16"
    decoder = load_safely(out / "decoder.keras")
    assert decoder.get_layer("upsample_1").compute_dtype == "bfloat16"
    assert sorted(os.listdir(out)) == sorted(os.listdir(vae_mnist_run))
