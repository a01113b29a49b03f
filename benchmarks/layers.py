"""Per-layer timing: where a training step's time goes, and why common/layers.py exists.

    python benchmarks/layers.py            # writes benchmarks/LAYERS.md

Each layer of the default GAN generator (batch 64) and VAE decoder (batch 128), alone, with
the input shapes it sees in training, and the alternatives tried for the slow ones: forward,
and forward + backward (gradients for the input and the weights), best of 5 repeats of 30
calls, and GFLOP/s (backward = 2x forward, as in benchmark.py), beside the float32 matmul
limit measured in the same run. Run by hand, not in CI.
"""

import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import tensorflow as tf  # noqa: E402
from keras import layers  # noqa: E402

import common.layers as fast_layers  # noqa: E402

sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
import benchmark  # noqa: E402


class PhaseConv2DTranspose(layers.Layer):
    """Rejected alternative: Conv2DTranspose(filters, 3, strides=2, padding="same") as four
    stride-1 convolutions, one per output phase (2x2, 2x1, 1x2 and 1x1 taps: the same 9 taps,
    no multiplications by inserted zeros), interleaved by depth_to_space."""

    def __init__(self, filters, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(3, 3, self.filters, input_shape[-1]),
                                      initializer="glorot_uniform", name="kernel")

    def call(self, images):
        # Output row 2m takes kernel rows 0 (input row m) and 2 (row m - 1); row 2m + 1 takes
        # kernel row 1 (row m). The same for columns.
        kernel = tf.transpose(self.kernel, [0, 1, 3, 2])
        even_rows, odd_rows = tf.gather(kernel, [2, 0], axis=0), kernel[1:2]
        padded = tf.pad(images, [[0, 0], [1, 0], [1, 0], [0, 0]])
        phases = [
            tf.nn.conv2d(padded, tf.gather(even_rows, [2, 0], axis=1), 1, "VALID"),
            tf.nn.conv2d(padded[:, :, 1:], even_rows[:, 1:2], 1, "VALID"),
            tf.nn.conv2d(padded[:, 1:], tf.gather(odd_rows, [2, 0], axis=1), 1, "VALID"),
            tf.nn.conv2d(images, odd_rows[:, 1:2], 1, "VALID")]
        return tf.nn.depth_to_space(tf.concat(phases, axis=-1), 2)


class PatchesConv2D(layers.Layer):
    """Rejected alternative: Conv2D(filters, 3, strides=2, padding="same") of a one-channel
    28x28 image as nine strided slices (the patches) and one matrix multiplication."""

    def __init__(self, filters, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(9, self.filters), initializer="glorot_uniform",
                                      name="kernel")
        self.bias = self.add_weight(shape=(self.filters,), initializer="zeros", name="bias")

    def call(self, images):
        padded = tf.pad(images[..., 0], [[0, 0], [0, 1], [0, 1]])  # "same" pads after, here
        taps = [padded[:, row:row + 27:2, column:column + 27:2]
                for row in range(3) for column in range(3)]
        patches = tf.reshape(tf.stack(taps, axis=-1), [-1, 9])
        return tf.reshape(tf.matmul(patches, self.kernel) + self.bias, [-1, 14, 14, self.filters])


CASES = [  # (model, batch, description, layer factory, input shape (no batch), forward FLOPs)
    ("GAN", 64, "Conv2DTranspose 7x7x64 -> 14x14x64, 4x4, stride 2",
     lambda: layers.Conv2DTranspose(64, 4, strides=2, padding="same", use_bias=False),
     (7, 7, 64), 2 * 49 * 16 * 64 * 64),
    ("GAN", 64, "Conv2DTranspose 14x14x64 -> 28x28x32, 4x4, stride 2",
     lambda: layers.Conv2DTranspose(32, 4, strides=2, padding="same", use_bias=False),
     (14, 14, 64), 2 * 196 * 16 * 64 * 32),
    ("GAN", 64, "one filter 28x28x32 -> 28x28x1, 5x5: Conv2D (keras-io)",
     lambda: layers.Conv2D(1, 5, padding="same"), (28, 28, 32), 2 * 784 * 25 * 32),
    ("GAN", 64, "one filter 28x28x32 -> 28x28x1, 5x5: Conv2DTranspose, stride 1",
     lambda: layers.Conv2DTranspose(1, 5, padding="same"), (28, 28, 32), 2 * 784 * 25 * 32),
    ("GAN", 64, "one filter 28x28x32 -> 28x28x1, 5x5: SingleFilterConv2D (ours)",
     lambda: fast_layers.SingleFilterConv2D(5), (28, 28, 32), 2 * 784 * 25 * 32),
    ("GAN", 64, "BatchNormalization 28x28x32 (Keras)",
     lambda: layers.BatchNormalization(), (28, 28, 32), 0),
    ("GAN", 64, "FusedBatchNormalization 28x28x32 (ours)",
     lambda: fast_layers.FusedBatchNormalization(), (28, 28, 32), 0),
    ("GAN", 64, "discriminator Conv2D 28x28x1 -> 14x14x32, 3x3, stride 2",
     lambda: layers.Conv2D(32, 3, strides=2, padding="same"), (28, 28, 1), 2 * 196 * 9 * 32),
    ("GAN", 64, "discriminator Conv2D 14x14x32 -> 7x7x64, 3x3, stride 2",
     lambda: layers.Conv2D(64, 3, strides=2, padding="same"), (14, 14, 32),
     2 * 49 * 9 * 32 * 64),
    ("GAN", 64, "discriminator 28x28x1 -> 14x14x32 as patches + matmul (rejected)",
     lambda: PatchesConv2D(32), (28, 28, 1), 2 * 196 * 9 * 32),
    ("VAE", 128, "Conv2DTranspose 7x7x64 -> 14x14x64, 3x3, stride 2",
     lambda: layers.Conv2DTranspose(64, 3, strides=2, padding="same", activation="relu"),
     (7, 7, 64), 2 * 49 * 9 * 64 * 64),
    ("VAE", 128, "Conv2DTranspose 14x14x64 -> 28x28x32, 3x3, stride 2",
     lambda: layers.Conv2DTranspose(32, 3, strides=2, padding="same", activation="relu"),
     (14, 14, 64), 2 * 196 * 9 * 64 * 32),
    ("VAE", 128, "14x14x64 -> 28x28x32, 3x3, stride 2, as four phase convolutions (rejected)",
     lambda: PhaseConv2DTranspose(32), (14, 14, 64), 2 * 196 * 9 * 64 * 32),
    ("VAE", 128, "14x14x64 -> 28x28x32, 3x3, stride 2, channels_first (rejected)",
     lambda: layers.Conv2DTranspose(32, 3, strides=2, padding="same", activation="relu",
                                    data_format="channels_first"),
     (64, 14, 14), 2 * 196 * 9 * 64 * 32),
    ("VAE", 128, "one filter 28x28x32 -> 28x28x1, 3x3: Conv2DTranspose (keras-io)",
     lambda: layers.Conv2DTranspose(1, 3, padding="same"), (28, 28, 32), 2 * 784 * 9 * 32),
    ("VAE", 128, "one filter 28x28x32 -> 28x28x1, 3x3: SingleFilterConv2D (ours)",
     lambda: fast_layers.SingleFilterConv2D(3), (28, 28, 32), 2 * 784 * 9 * 32),
]


def best_milliseconds(function, inputs, calls=30, repeats=5):
    function(inputs)
    function(inputs)
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(calls):
            result = function(inputs)
        tf.nest.map_structure(lambda tensor: tensor.numpy(), result)
        best = min(best, (time.perf_counter() - started) / calls)
    return best * 1000


def time_layer(layer, inputs):
    @tf.function
    def forward(images):
        return layer(images, training=True)

    @tf.function
    def forward_backward(images):
        with tf.GradientTape() as tape:
            tape.watch(images)
            loss = tf.reduce_sum(tf.square(layer(images, training=True)))
        return tape.gradient(loss, [images] + layer.trainable_variables)

    return best_milliseconds(forward, inputs), best_milliseconds(forward_backward, inputs)


def main():
    limit = benchmark.matmul_gflops()
    lines = ["# Per-layer timing", "",
             f"Command: `python benchmarks/layers.py` on "
             f"{os.cpu_count()} CPU cores; {time.strftime('%Y-%m-%d')}; float32 matmul limit "
             f"{limit:.0f} GFLOP/s in this run.", "",
             "Best of 5 x 30 calls; GFLOP/s of forward + backward counts the backward pass as "
             "twice the forward.", "",
             "| model (batch) | layer | forward ms | forward + backward ms | GFLOP/s |",
             "|---|---|---|---|---|"]
    for model, batch, description, factory, shape, flops in CASES:
        inputs = tf.random.normal((batch, *shape))
        forward, both = time_layer(factory(), inputs)
        rate = f"{3 * flops * batch / both / 1e6:.0f}" if flops else "-"
        lines.append(f"| {model} ({batch}) | {description} | {forward:.2f} | {both:.2f} | {rate} |")
        print(lines[-1], flush=True)
    benchmark.write(os.path.join(ROOT, "benchmarks", "LAYERS.md"), lines)


if __name__ == "__main__":
    main()
