"""Training-speed benchmark: our four default models against the study's tutorial recipes.

    python benchmarks/benchmark.py --data-dir ../shared/data            # writes RESULTS.md
    python benchmarks/benchmark.py --data-dir ../shared/data --quick    # fewer timed steps

Run by hand, not in CI. In one process, so the ratios share the machine's state:
- the machine's practical float32 limit: GFLOP/s of a large matmul;
- the input pipeline alone (images/s, common.data.make_dataset);
- for each quadrant, training images/s of the script's default model and of the baseline
  (keras-io DCGAN recipe: batch 32, a discriminator step and a generator step that each
  generate, plain tf.data without prefetch; keras-io VAE recipe: batch 128), the median of
  several timed windows after warm-up, and achieved GFLOP/s from a per-layer FLOP count.
"""

import argparse
import ast
import os
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402

import common.data as data  # noqa: E402
import common.gan as gan  # noqa: E402
import common.vae as vae  # noqa: E402

SCRIPTS = {"gan_mnist": "mnist", "gan_emnist": "emnist", "vae_mnist": "mnist",
           "vae_emnist": "emnist"}


def script_constants(name):
    """The UPPERCASE constants at the top of a training script, without running it."""
    with open(os.path.join(ROOT, f"{name}.py")) as file:
        tree = ast.parse(file.read())
    return {node.targets[0].id: ast.literal_eval(node.value) for node in tree.body
            if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
            and node.targets[0].id.isupper()}


def forward_flops(network):
    """Multiply-adds x 2 of one image through `network`, counted layer by layer."""
    import keras

    total = 0
    for layer in network.layers:
        if isinstance(layer, keras.layers.Conv2DTranspose):
            _, height, width, channels = layer.input.shape  # each input pixel scatters a kernel
            total += 2 * height * width * np.prod(layer.kernel_size) * channels * layer.filters
        elif isinstance(layer, keras.layers.Conv2D):
            _, height, width, _ = layer.output.shape
            channels = layer.input.shape[-1]
            total += 2 * height * width * np.prod(layer.kernel_size) * channels * layer.filters
        elif isinstance(layer, keras.layers.Dense):
            total += 2 * layer.input.shape[-1] * layer.units
    return int(total)


def training_flops(kind, model, baseline):
    """FLOPs per training image, counting a backward pass as twice its forward pass.

    Ours (GAN): one generator pass shared by both updates: 3G + 3D(real) + 3D(fake) + 2D
    (the generator's gradient flows back through the discriminator once more).
    keras-io (GAN): discriminator step 1G + 3D(real) + 3D(fake), generator step 3G + 3D.
    VAE: 3 x (encoder + decoder).
    """
    if kind == "vae":
        return 3 * (forward_flops(model.encoder) + forward_flops(model.decoder))
    generator, discriminator = forward_flops(model.generator), forward_flops(model.discriminator)
    if baseline:
        return 4 * generator + 9 * discriminator
    return 3 * generator + 8 * discriminator


def matmul_gflops(size=2048, repeats=20):
    import tensorflow as tf

    matrix = tf.random.normal((size, size))
    multiply = tf.function(lambda a: tf.matmul(a, a))
    multiply(matrix).numpy()
    started = time.perf_counter()
    for _ in range(repeats):
        result = multiply(matrix)
    result.numpy()
    return 2 * size**3 * repeats / (time.perf_counter() - started) / 1e9


def pipeline_images_per_second(images, labels, batch_size, batches=400):
    dataset = data.make_dataset(images, labels, batch_size, seed=0).repeat()
    iterator = iter(dataset)
    for _ in range(20):
        next(iterator)
    started = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return batches * batch_size / (time.perf_counter() - started)


class KerasIoDCGAN(gan.GAN):
    """The keras-io DCGAN tutorial's train_step: the generator runs in both steps."""

    def train_step(self, data_batch):
        import tensorflow as tf
        import keras

        real_images, labels = data_batch
        batch_size = tf.shape(real_images)[0]
        noise = keras.random.normal((batch_size, self.latent_dim), seed=self.seed_generator)
        generated = self.generator(self._inputs(noise, labels))
        combined = tf.concat([generated, real_images], axis=0)
        targets = tf.concat([tf.ones((batch_size, 1)), tf.zeros((batch_size, 1))], axis=0)
        targets += 0.05 * tf.random.uniform(tf.shape(targets))
        with tf.GradientTape() as tape:
            logits = self.discriminator(self._inputs(combined, tf.concat([labels, labels], 0)))
            discriminator_loss = self.loss_function(targets, logits)
        gradients = tape.gradient(discriminator_loss, self.discriminator.trainable_weights)
        self.discriminator_optimizer.apply_gradients(
            zip(gradients, self.discriminator.trainable_weights))
        noise = keras.random.normal((batch_size, self.latent_dim), seed=self.seed_generator)
        with tf.GradientTape() as tape:
            logits = self.discriminator(self._inputs(self.generator(self._inputs(noise, labels)),
                                                     labels))
            generator_loss = self.loss_function(tf.zeros((batch_size, 1)), logits)
        gradients = tape.gradient(generator_loss, self.generator.trainable_weights)
        self.generator_optimizer.apply_gradients(zip(gradients, self.generator.trainable_weights))
        self.discriminator_loss_tracker.update_state(discriminator_loss)
        self.generator_loss_tracker.update_state(generator_loss)
        return {"discriminator_loss": self.discriminator_loss_tracker.result(),
                "generator_loss": self.generator_loss_tracker.result()}


def build_model(kind, constants, num_classes, baseline):
    import keras

    constants = dict(constants, CONDITIONAL=False)
    if kind == "vae":
        return vae.build(constants, num_classes)
    model = gan.build(constants, num_classes)
    if baseline:
        baseline_model = KerasIoDCGAN(model.discriminator, model.generator,
                                      constants["LATENT_DIM"], seed=0)
        baseline_model.compile(keras.optimizers.Adam(1e-4), keras.optimizers.Adam(1e-4))
        baseline_model.build_optimizers()
        return baseline_model
    return model


def plain_dataset(images, labels, batch_size, value_range):
    """The tutorials' input: from_tensor_slices, shuffle, batch; no prefetch."""
    import tensorflow as tf

    low, high = value_range
    dataset = tf.data.Dataset.from_tensor_slices((images, labels)).shuffle(len(images))
    dataset = dataset.map(lambda x, y: (tf.cast(x[..., None], tf.float32) / 255.0
                                        * (high - low) + low, y))
    return dataset.batch(batch_size, drop_remainder=True)


def training_images_per_second(model, dataset, batch_size, steps, windows):
    """Median images/s over `windows` timed windows of `steps` steps, after a warm-up."""
    import keras

    times = []

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.started)

    model.fit(dataset.repeat(), steps_per_epoch=steps, epochs=windows + 1, verbose=0,
              callbacks=[Timer()])
    return statistics.median(steps * batch_size / seconds for seconds in times[1:])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--quick", action="store_true", help="short windows (a smoke check)")
    parser.add_argument("--output", default=os.path.join(ROOT, "benchmarks", "RESULTS.md"))
    arguments = parser.parse_args()
    import tensorflow as tf

    steps, windows = (20, 2) if arguments.quick else (150, 4)
    limit = matmul_gflops()
    print(f"float32 matmul limit: {limit:.0f} GFLOP/s")
    rows = []
    loaded = {dataset: data.load(dataset, "train", arguments.data_dir)
              for dataset in ("mnist", "emnist")}
    images, labels = loaded["mnist"]
    pipeline = pipeline_images_per_second(images, labels, 64)
    print(f"input pipeline alone: {pipeline:.0f} images/s (batch 64)")
    for script, dataset in SCRIPTS.items():
        kind = script[:3]
        constants = script_constants(script)
        images, labels = loaded[dataset]
        num_classes = len(data.class_names(dataset, arguments.data_dir))
        value_range = (-1, 1) if kind == "gan" else (0, 1)
        results = {}
        for baseline in (True, False):
            model = build_model(kind, constants, num_classes, baseline)
            batch_size = (32 if kind == "gan" else 128) if baseline else constants["BATCH_SIZE"]
            dataset_tf = (plain_dataset(images, labels, batch_size, value_range) if baseline
                          else data.make_dataset(images, labels, batch_size, seed=0,
                                                 value_range=value_range))
            speed = training_images_per_second(model, dataset_tf, batch_size, steps, windows)
            flops = training_flops(kind, model, baseline)
            results[baseline] = (speed, flops * speed / 1e9, batch_size)
            print(f"{script} {'baseline' if baseline else 'ours'}: {speed:.0f} images/s, "
                  f"{flops / 1e6:.1f} MFLOP/image, {flops * speed / 1e9:.1f} GFLOP/s")
        rows.append((script, results))
    machine = f"{os.cpu_count()} CPU cores, GPUs: {tf.config.list_physical_devices('GPU') or 'none'}"
    lines = [
        "# Training speed", "",
        f"Command: `python benchmarks/benchmark.py --data-dir ../shared/data"
        f"{' --quick' if arguments.quick else ''}` on {machine}; {time.strftime('%Y-%m-%d')}.",
        f"Median of {windows} windows of {steps} steps after one warm-up window.", "",
        f"- float32 matmul (2048x2048) limit: **{limit:.0f} GFLOP/s**",
        f"- input pipeline alone (common.data.make_dataset, batch 64): **{pipeline:.0f} images/s**",
        "",
        "| quadrant | baseline batch | baseline img/s | ours batch | ours img/s | ours / baseline "
        "| baseline GFLOP/s | ours GFLOP/s | ours % of matmul limit |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for script, results in rows:
        (base_speed, base_gflops, base_batch), (speed, gflops, batch) = results[True], results[False]
        lines.append(f"| {script} | {base_batch} | {base_speed:.0f} | {batch} | {speed:.0f} | "
                     f"{speed / base_speed:.2f}x | {base_gflops:.1f} | {gflops:.1f} | "
                     f"{100 * gflops / limit:.0f}% |")
    lines += ["", "FLOPs per image are counted per layer (Conv2D: 2 x output pixels x kernel "
              "area x in x out channels; Conv2DTranspose: the same over input pixels; Dense: "
              "2 x in x out), and a backward pass counts twice its forward pass (see "
              "`training_flops`)."]
    with open(arguments.output, "w") as file:
        file.write("\n".join(lines) + "\n")
    print(f"Wrote {arguments.output}")


if __name__ == "__main__":
    main()
