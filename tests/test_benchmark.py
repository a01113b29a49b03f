"""The benchmark's bound variant: README's case that the float32 targets are out of reach
rests on it keeping every convolution and matrix multiplication and nothing else."""

import os
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import ROOT
from test_models import GAN_HYPERPARAMETERS, VAE_HYPERPARAMETERS

import common.gan as gan
import common.layers as fast_layers
import common.models as models
import common.vae as vae

sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
import benchmark  # noqa: E402


@pytest.mark.parametrize("kind", ["gan", "vae"])
def test_bound_keeps_the_convolutions_and_drops_the_elementwise_work(kind):
    h = {**(GAN_HYPERPARAMETERS if kind == "gan" else VAE_HYPERPARAMETERS),
         "CONDITIONAL": False, "STEPS_PER_EXECUTION": 1}
    model = (gan.build if kind == "gan" else vae.build)(h, num_classes=10)
    bound = benchmark.rewrapped(kind, model, h, without_elementwise=True)
    for name in models.NETWORKS[kind]:
        network, stripped = getattr(model, name), getattr(bound, name)
        assert benchmark.forward_flops(stripped) == benchmark.forward_flops(network) > 0
        assert [weight.shape for weight in stripped.weights if "kernel" in weight.path] == [
            weight.shape for weight in network.weights if "kernel" in weight.path]
        for layer in stripped.layers:
            assert not isinstance(layer, (keras.layers.BatchNormalization,
                                          keras.layers.LeakyReLU)), layer.name
            if isinstance(layer, (keras.layers.Conv2D, keras.layers.Conv2DTranspose,
                                  keras.layers.Dense)):
                assert layer.activation is keras.activations.linear, layer.name
                assert layer.bias is None, layer.name
    # The output layer keeps its squashing, so the losses stay finite and training runs.
    output = getattr(bound, models.IMAGE_MAKER[kind]).layers[-1]
    assert isinstance(output, fast_layers.SingleFilterConv2D)
    assert output.activation is keras.activations.get("tanh" if kind == "gan" else "sigmoid")
    images = tf.random.uniform((8, 28, 28, 1), -1 if kind == "gan" else 0, 1)
    logs = bound.train_step((images, tf.zeros(8, tf.int32)))
    assert all(np.isfinite(float(value)) for value in logs.values())
