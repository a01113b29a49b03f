"""common/layers.py computes what Keras's own layers compute: outputs, gradients, statistics."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import common.layers as fast_layers


def outputs_and_gradients(layer, inputs, upstream, training=None):
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        outputs = layer(inputs, training=training) if training is not None else layer(inputs)
        loss = tf.reduce_sum(outputs * upstream)
    gradients = tape.gradient(loss, [inputs] + layer.trainable_variables)
    return outputs.numpy(), [gradient.numpy() for gradient in gradients]


@pytest.mark.parametrize("kernel_size", [3, 4, 5])
def test_single_filter_conv_matches_conv2d(kernel_size):
    rng = np.random.default_rng(kernel_size)
    inputs = tf.constant(rng.normal(size=(3, 12, 10, 6)).astype(np.float32))
    upstream = tf.constant(rng.normal(size=(3, 12, 10, 1)).astype(np.float32))
    fast = fast_layers.SingleFilterConv2D(kernel_size, activation="tanh")
    reference = keras.layers.Conv2D(1, kernel_size, padding="same", activation="tanh")
    fast.build(inputs.shape)
    reference.build(inputs.shape)
    # A non-zero bias, so the bias path is checked too.
    reference.set_weights([fast.get_weights()[0], np.array([0.3], np.float32)])
    fast.set_weights(reference.get_weights())
    fast_outputs, fast_gradients = outputs_and_gradients(fast, inputs, upstream)
    reference_outputs, reference_gradients = outputs_and_gradients(reference, inputs, upstream)
    np.testing.assert_allclose(fast_outputs, reference_outputs, atol=1e-5)
    for name, got, expected in zip(("images", "kernel", "bias"), fast_gradients,
                                   reference_gradients):
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4, err_msg=name)


def test_single_filter_conv_rejects_a_kernel_size_below_one():
    with pytest.raises(ValueError, match="kernel_size must be at least 1, got 0"):
        fast_layers.SingleFilterConv2D(0)


@pytest.mark.parametrize("shape", [(32, 20), (8, 7, 5, 6)])
def test_fused_batch_normalization_matches_keras(shape):
    rng = np.random.default_rng(len(shape))
    inputs = tf.constant((rng.normal(size=shape) * 3 + 1).astype(np.float32))
    upstream = tf.constant(rng.normal(size=shape).astype(np.float32))
    fused = fast_layers.FusedBatchNormalization(momentum=0.5)
    reference = keras.layers.BatchNormalization(momentum=0.5)
    fused.build(inputs.shape)
    reference.build(inputs.shape)
    fused_outputs, fused_gradients = outputs_and_gradients(fused, inputs, upstream, True)
    reference_outputs, reference_gradients = outputs_and_gradients(reference, inputs, upstream,
                                                                   True)
    np.testing.assert_allclose(fused_outputs, reference_outputs, atol=1e-4)
    for got, expected in zip(fused_gradients, reference_gradients):
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
    # The moving statistics move the same way (Keras keeps the biased batch variance).
    np.testing.assert_allclose(fused.moving_mean.numpy(), reference.moving_mean.numpy(),
                               atol=1e-5)
    np.testing.assert_allclose(fused.moving_variance.numpy(),
                               reference.moving_variance.numpy(), rtol=1e-5)
    np.testing.assert_allclose(fused(inputs, training=False).numpy(),
                               reference(inputs, training=False).numpy(), atol=1e-4)


def test_fast_layers_survive_a_safe_mode_round_trip(tmp_path):
    inputs = keras.Input((8, 8, 3))
    hidden = fast_layers.FusedBatchNormalization()(inputs)
    outputs = fast_layers.SingleFilterConv2D(3, activation="sigmoid")(hidden)
    model = keras.Model(inputs, outputs)
    model.layers[-1].set_weights([np.full((3, 3, 3, 1), 0.1, np.float32),
                                  np.array([0.2], np.float32)])
    path = os.path.join(tmp_path, "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    images = np.random.default_rng(0).normal(size=(2, 8, 8, 3)).astype(np.float32)
    assert isinstance(loaded.layers[-1], fast_layers.SingleFilterConv2D)
    np.testing.assert_allclose(loaded.predict(images, verbose=0), model.predict(images, verbose=0),
                               atol=1e-6)


def test_fused_batch_normalization_under_mixed_bfloat16_matches_keras():
    rng = np.random.default_rng(3)
    inputs = tf.constant((rng.normal(size=(16, 7, 7, 8)) * 3 + 1).astype(np.float32))
    fused = fast_layers.FusedBatchNormalization(momentum=0.5, dtype="mixed_bfloat16")
    reference = keras.layers.BatchNormalization(momentum=0.5, dtype="mixed_bfloat16")
    fused_outputs = fused(inputs, training=True)
    reference_outputs = reference(inputs, training=True)
    assert fused_outputs.dtype == reference_outputs.dtype == tf.bfloat16
    assert fused.moving_mean.dtype == "float32"
    # bfloat16 keeps 8 bits of mantissa: agreement to about 1% of the unit-variance output.
    np.testing.assert_allclose(tf.cast(fused_outputs, tf.float32).numpy(),
                               tf.cast(reference_outputs, tf.float32).numpy(), atol=0.03)
    np.testing.assert_allclose(fused.moving_variance.numpy(),
                               reference.moving_variance.numpy(), rtol=0.02)


@pytest.mark.parametrize("rewrite", ["phases", "patches"])
def test_benchmarked_layer_rewrites_compute_the_layers_they_replace(rewrite):
    """LAYERS.md times two rejected rewrites; their timings mean something only if they
    compute the same function as the Keras layer (same weights, outputs and gradients)."""
    import sys

    from conftest import ROOT

    sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
    import layers as benchmarked

    rng = np.random.default_rng(0)
    if rewrite == "phases":
        shape, output_shape = (2, 7, 7, 5), (2, 14, 14, 4)
        fast = benchmarked.PhaseConv2DTranspose(4)
        reference = keras.layers.Conv2DTranspose(4, 3, strides=2, padding="same",
                                                 use_bias=False)
    else:
        shape, output_shape = (2, 28, 28, 1), (2, 14, 14, 4)
        fast = benchmarked.PatchesConv2D(4)
        reference = keras.layers.Conv2D(4, 3, strides=2, padding="same")
    inputs = tf.constant(rng.normal(size=shape).astype(np.float32))
    upstream = tf.constant(rng.normal(size=output_shape).astype(np.float32))
    fast.build(inputs.shape)
    reference.build(inputs.shape)
    weights = reference.get_weights()
    fast.set_weights([weights[0].reshape(fast.kernel.shape), *weights[1:]])
    fast_outputs, fast_gradients = outputs_and_gradients(fast, inputs, upstream)
    outputs, gradients = outputs_and_gradients(reference, inputs, upstream)
    np.testing.assert_allclose(fast_outputs, outputs, atol=1e-5)
    for fast_gradient, gradient in zip(fast_gradients, gradients):
        np.testing.assert_allclose(fast_gradient.reshape(gradient.shape), gradient, atol=1e-4)
