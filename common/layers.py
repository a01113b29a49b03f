"""Faster versions of two Keras layers: same functions, same weights, less CPU time.

Measured on the 2-core build machine (benchmarks/RESULTS.md has the whole-step effect):
- SingleFilterConv2D: Conv2D(1, kernel, padding="same"), the last layer of both generators.
  TensorFlow's oneDNN convolution is slow with one output channel (14 GFLOP/s here, against
  ~200 for the other layers), forward and backward. The forward pass is the same sum as a
  depthwise convolution summed over channels, and the gradients are the two convolutions
  below; together 5x faster than Conv2D for the GAN's 5x5 kernel at batch 64.
- FusedBatchNormalization: BatchNormalization whose training pass is TensorFlow's fused
  kernel (one op, against Keras 3's moments + arithmetic); inference is unchanged.
"""

import keras
import tensorflow as tf
from keras import layers


@tf.custom_gradient
def _single_filter_convolution(images, kernel):
    """tf.nn.conv2d(images, kernel, 1, "SAME") for a (k, k, channels, 1) kernel, k odd."""
    output = tf.reduce_sum(tf.nn.depthwise_conv2d(images, kernel, [1, 1, 1, 1], "SAME"),
                           axis=-1, keepdims=True)

    def gradient(upstream):
        # d/d images: the upstream gradient convolved with the flipped kernel (channels out).
        flipped = tf.transpose(tf.reverse(kernel, axis=[0, 1]), [0, 1, 3, 2])
        images_gradient = tf.nn.conv2d(upstream, flipped, 1, "SAME")
        # d/d kernel: asked of TensorFlow with input and output swapped, the layout it is
        # fast for (one input channel), then flipped back.
        size = tf.shape(kernel)
        swapped = tf.compat.v1.nn.conv2d_backprop_filter(
            upstream, tf.stack([size[0], size[1], 1, size[2]]), images, [1, 1, 1, 1], "SAME")
        kernel_gradient = tf.transpose(tf.reverse(swapped, axis=[0, 1]), [0, 1, 3, 2])
        return images_gradient, kernel_gradient

    return output, gradient


@keras.saving.register_keras_serializable(package="handwriting")
class SingleFilterConv2D(layers.Layer):
    """Conv2D(1, kernel_size, padding="same", activation=...) with a faster implementation.

    Same weights as Conv2D (kernel (k, k, channels, 1), bias (1,)), same initialisers.
    Even kernel sizes, whose "same" padding is lopsided, use tf.nn.conv2d.
    """

    def __init__(self, kernel_size, activation=None, **kwargs):
        super().__init__(**kwargs)
        if int(kernel_size) < 1:
            raise ValueError(f"kernel_size must be at least 1, got {kernel_size}.")
        self.kernel_size = int(kernel_size)
        self.activation = keras.activations.get(activation)

    def build(self, input_shape):
        self.kernel = self.add_weight(
            name="kernel", shape=(self.kernel_size, self.kernel_size, input_shape[-1], 1),
            initializer="glorot_uniform")
        self.bias = self.add_weight(name="bias", shape=(1,), initializer="zeros")

    def call(self, images):
        kernel = tf.convert_to_tensor(self.kernel)
        if self.kernel_size % 2:
            output = _single_filter_convolution(images, kernel)
        else:
            output = tf.nn.conv2d(images, kernel, 1, "SAME")
        return self.activation(output + self.bias)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], 1)

    def get_config(self):
        return {**super().get_config(), "kernel_size": self.kernel_size,
                "activation": keras.activations.serialize(self.activation)}


@keras.saving.register_keras_serializable(package="handwriting")
class FusedBatchNormalization(layers.BatchNormalization):
    """BatchNormalization trained with the fused kernel (last axis, dense or image inputs;
    other options fall back to Keras's own)."""

    def call(self, inputs, training=None, mask=None):
        fusable = (self.axis == -1 and self.scale and self.center and not self.renorm
                   and mask is None and len(inputs.shape) in (2, 4))
        if not (training and self.trainable and fusable):
            return super().call(inputs, training=training, mask=mask)
        shape = tf.shape(inputs)
        channels = inputs.shape[-1]
        # The fused kernel wants NHWC; a dense layer's (batch, units) is (batch, 1, 1, units).
        images = tf.reshape(inputs, [-1, 1, 1, channels]) if len(inputs.shape) == 2 else inputs
        normalized, mean, variance = tf.compat.v1.nn.fused_batch_norm(
            images, tf.convert_to_tensor(self.gamma), tf.convert_to_tensor(self.beta),
            epsilon=self.epsilon, is_training=True)
        # The kernel returns the unbiased variance; Keras keeps the biased one.
        count = tf.cast(tf.size(images) // channels, variance.dtype)
        variance = variance * (count - 1) / count
        self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1 - self.momentum))
        self.moving_variance.assign(
            self.moving_variance * self.momentum + variance * (1 - self.momentum))
        return tf.reshape(normalized, shape)
