"""Training-speed benchmark: our four default models against the study's tutorial recipes.

    python benchmarks/benchmark.py --data-dir ../shared/data                  # RESULTS.md
    python benchmarks/benchmark.py --data-dir ../shared/data --quick          # smoke check
    python benchmarks/benchmark.py --data-dir ../shared/data --quality-epochs 3 --quality-seeds 2
    python benchmarks/benchmark.py --data-dir ../shared/data --quality-epochs 3 --quality-seeds 2 \
        --quality-variants bfloat16 --quality-output benchmarks/QUALITY_PRECISION.md
    python benchmarks/benchmark.py --data-dir ../shared/data --quality-epochs 3 --quality-seeds 2 \
        --quality-variants 'batch 512' --quality-output benchmarks/QUALITY_BATCH.md
    python benchmarks/benchmark.py --data-dir ../shared/data --full-runs /tmp/runs   # RUNS.md

Run by hand, not in CI.
- speed (default), in one process so the ratios share the machine's state: a large float32
  matmul (the machine's practical limit), the input pipeline alone, and for each quadrant the
  training images/s of the baseline (the tutorials' recipe and Keras's own layers: keras-io
  DCGAN step at batch 32, keras-io VAE at batch 128), of the script's default model, and of
  each optimisation tried (VARIANTS), with achieved GFLOP/s from a per-layer FLOP count.
- quality: digits FID after the same epochs for the baseline, the default and the batch
  changes (QUALITY.md): a speed-up is kept only where samples are no worse.
- full runs: each script's default command, alone, timed end to end with its evaluation.
"""

import argparse
import ast
import itertools
import json
import shlex
import shutil
import subprocess
import os
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402

import common.data as data  # noqa: E402
import common.gan as gan  # noqa: E402
import common.layers as fast_layers  # noqa: E402
import common.models as models  # noqa: E402
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
        elif isinstance(layer, fast_layers.SingleFilterConv2D):
            _, height, width, channels = layer.input.shape
            total += 2 * height * width * layer.kernel_size**2 * channels
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


def matmul_gflops(size=2048, repeats=20, dtype="float32"):
    import tensorflow as tf

    matrix = tf.cast(tf.random.normal((size, size)), dtype)
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


class OneDiscriminatorCallGAN(gan.GAN):
    """Our step with real and fake images concatenated into one discriminator call."""

    def discriminate(self, real_images, fake_images, labels):
        import tensorflow as tf

        logits = self.discriminator(self._inputs(tf.concat([real_images, fake_images], 0),
                                                 tf.concat([labels, labels], 0)), training=True)
        return tf.split(logits, 2)


BOUND_LABEL = "bound: default without element-wise work (not a usable network)"


def without_elementwise_work(network):
    """A copy of `network` with the same convolutions and matrix multiplications and nothing
    else in its hidden layers: batch normalisation and LeakyReLU layers become identities,
    convolutions and dense layers lose their activation and bias (the output layer keeps its
    tanh or sigmoid, so the losses stay finite). A network of linear maps, useless for
    generation, but its training step bounds what any rewrite of the element-wise work
    (fusing, dropping or reordering it) could gain with TensorFlow's convolutions.
    """
    import keras

    class PassThrough(keras.layers.Layer):
        def call(self, inputs, training=None, mask=None):  # BatchNormalization's arguments
            return inputs

    def copy(layer):
        if isinstance(layer, (keras.layers.BatchNormalization, keras.layers.LeakyReLU)):
            return PassThrough(name=layer.name)
        config = layer.get_config()
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.Conv2DTranspose,
                              keras.layers.Dense)):
            config.update(activation=None, use_bias=False)
        return layer.__class__.from_config(config)

    return keras.models.clone_model(network, clone_function=copy)


def rewrapped(kind, model, h, recipe=None, without_elementwise=False):
    """A new training model over `model`'s networks: in `recipe`'s GAN training step (see
    VARIANTS), and/or over without_elementwise_work copies of the networks."""
    import keras

    copy = without_elementwise_work if without_elementwise else (lambda network: network)
    networks = {name: copy(getattr(model, name)) for name in models.NETWORKS[kind]}

    def fresh(optimizer):  # the same settings, no state: new networks have new variables
        return optimizer.__class__.from_config(optimizer.get_config())

    if kind == "gan":
        step = {None: gan.GAN, "keras-io": KerasIoDCGAN,
                "one-discriminator-call": OneDiscriminatorCallGAN}[recipe]
        optimizers = ((keras.optimizers.Adam(1e-4), keras.optimizers.Adam(1e-4))  # keras-io's
                      if recipe == "keras-io"
                      else (fresh(model.discriminator_optimizer), fresh(model.generator_optimizer)))
        new = step(**networks, latent_dim=h["LATENT_DIM"], label_smoothing=h["LABEL_SMOOTHING"],
                   seed=h["SEED"])
        new.compile(*optimizers, steps_per_execution=h["STEPS_PER_EXECUTION"])
    else:
        new = vae.VAE(**networks, seed=h["SEED"])
        new.compile(optimizer=fresh(model.optimizer), steps_per_execution=h["STEPS_PER_EXECUTION"])
    new.build_optimizers()
    return new


# Each quadrant's variants, timed in turns in one process. A variant is the script's default
# model with the changes given; "baseline" is the tutorials' recipe with Keras's own layers.
VARIANTS = {
    "gan": [
        ("baseline: keras-io DCGAN step, batch 32", {"recipe": "keras-io", "BATCH_SIZE": 32,
                                                     "fast_layers": False,
                                                     "PRECISION": "float32"}),
        ("one generator pass per step, batch 64", {"BATCH_SIZE": 64, "fast_layers": False}),
        ("+ common/layers.py (fused batch norm, one-filter conv)", {"BATCH_SIZE": 64}),
        ("default + batch 128", {"BATCH_SIZE": 128}),
        ("default + batch 256", {"BATCH_SIZE": 256}),
        ("default + batch 512", {"BATCH_SIZE": 512}),
        ("default + steps_per_execution 8", {"BATCH_SIZE": 64, "STEPS_PER_EXECUTION": 8}),
        ("default + XLA (jit_compile)", {"BATCH_SIZE": 64, "jit_compile": True}),
        ("default + real and fake through the discriminator in one call",
         {"BATCH_SIZE": 64, "recipe": "one-discriminator-call"}),
        (BOUND_LABEL, {"BATCH_SIZE": 64, "without_elementwise": True}),
        ("default + --precision mixed_bfloat16 (opt-in on CPUs)",
         {"BATCH_SIZE": 64, "PRECISION": "mixed_bfloat16"}),
    ],
    "vae": [
        ("baseline: keras-io VAE, batch 128", {"BATCH_SIZE": 128, "fast_layers": False,
                                               "PRECISION": "float32"}),
        ("+ common/layers.py (one-filter conv)", {"BATCH_SIZE": 128}),
        ("default + batch 256", {"BATCH_SIZE": 256}),
        ("default + steps_per_execution 8", {"BATCH_SIZE": 128, "STEPS_PER_EXECUTION": 8}),
        ("default + XLA (jit_compile)", {"BATCH_SIZE": 128, "jit_compile": True}),
        (BOUND_LABEL, {"BATCH_SIZE": 128, "without_elementwise": True}),
        ("default + --precision mixed_bfloat16 (opt-in on CPUs)",
         {"BATCH_SIZE": 128, "PRECISION": "mixed_bfloat16"}),
    ],
}


def build_variant(kind, constants, num_classes, changes):
    """The model of `constants` (a script's defaults) with `changes`; returns (model, batch)."""
    h = dict(constants, CONDITIONAL=False)
    h.update({key: value for key, value in changes.items() if key.isupper()})
    build = gan.build if kind == "gan" else vae.build
    model = build(h, num_classes, fast_layers=changes.get("fast_layers", True))
    recipe, without_elementwise = changes.get("recipe"), changes.get("without_elementwise")
    if recipe or without_elementwise:  # the same networks (or their copies) in another model
        model = rewrapped(kind, model, h, recipe, without_elementwise)
    model.jit_compile = changes.get("jit_compile", False)
    return model, h["BATCH_SIZE"]


def is_script_default(kind, constants, changes):
    """Whether a variant is what the script trains by default (its layers and settings)."""
    if changes.get("recipe") or not changes.get("fast_layers", True):
        return False
    if changes.get("jit_compile") or changes.get("without_elementwise"):
        return False
    return all(constants[key] == value for key, value in changes.items() if key.isupper())


def in_memory_dataset(images, labels, batch_size, value_range):
    """Scaled float32 batches held in memory: the timings measure training, not input (the
    real pipeline is timed separately and is >100x faster than any training step)."""
    import tensorflow as tf

    scaled = data.scale_images(images, value_range)
    return tf.data.Dataset.from_tensor_slices((scaled, labels)).batch(
        batch_size, drop_remainder=True).repeat()


def time_window(model, dataset, batch_size, images_per_window):
    """Images/s of one `fit()` window, from the step timestamps after its first tenth (so
    fit's start-up, seconds on this machine, is not counted)."""
    import keras

    stamps = []

    class Stamps(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            stamps.append(time.perf_counter())

    executions = max(3, images_per_window // (batch_size * model.steps_per_execution))
    model.fit(dataset, steps_per_epoch=executions * model.steps_per_execution, epochs=1,
              verbose=0, callbacks=[Stamps()])
    skip = max(1, len(stamps) // 10)
    images = (len(stamps) - 1 - skip) * batch_size * model.steps_per_execution
    return images / (stamps[-1] - stamps[skip])


def time_variants(kind, constants, images, labels, num_classes, variants, rounds,
                  images_per_window):
    """Median images/s of each variant; variants take turns, so a slow spell of this noisy
    machine falls on all of them alike."""
    value_range = (-1, 1) if kind == "gan" else (0, 1)
    entries = []
    for label, changes in variants:
        model, batch_size = build_variant(kind, constants, num_classes, changes)
        window_images = images[:images_per_window], labels[:images_per_window]
        dataset = in_memory_dataset(*window_images, batch_size, value_range)
        time_window(model, dataset, batch_size, images_per_window)  # warm-up: tracing
        entries.append((label, changes, model, dataset, batch_size))
    speeds = {label: [] for label, *_ in entries}
    for _ in range(rounds):
        for label, _, model, dataset, batch_size in entries:
            speeds[label].append(time_window(model, dataset, batch_size, images_per_window))
    results = []
    for label, changes, model, _, batch_size in entries:
        speed = statistics.median(speeds[label])
        flops = training_flops(kind, model, changes.get("recipe") == "keras-io")
        results.append({"label": label, "batch": batch_size, "speed": speed,
                        "gflops": flops * speed / 1e9, "mflop_per_image": flops / 1e6,
                        "default": is_script_default(kind, constants, changes)})
        print(f"  {label}: {speed:.0f} images/s {[round(v) for v in speeds[label]]}")
    return results


def speed(arguments):
    """Matmul limit, input pipeline, and every variant of every quadrant -> RESULTS.md."""
    import tensorflow as tf

    rounds, images_per_window = (1, 1024) if arguments.quick else (4, 12800)
    limit = matmul_gflops()
    print(f"float32 matmul limit: {limit:.0f} GFLOP/s")
    bfloat16_limit = matmul_gflops(dtype="bfloat16")
    print(f"bfloat16 matmul: {bfloat16_limit:.0f} GFLOP/s")
    loaded = {dataset: data.load(dataset, "train", arguments.data_dir)
              for dataset in ("mnist", "emnist")}
    pipeline = pipeline_images_per_second(*loaded["mnist"], 64)
    print(f"input pipeline alone: {pipeline:.0f} images/s (batch 64)")
    tables = {}
    for script, dataset in SCRIPTS.items():
        kind = script[:3]
        constants = script_constants(script)
        # The MNIST quadrants try every variant; the EMNIST ones (same networks, more
        # classes of data) compare the baseline with the script's default and bfloat16.
        variants = VARIANTS[kind] if dataset == "mnist" else [
            VARIANTS[kind][0], ("script default", {}), VARIANTS[kind][-1]]
        print(script)
        tables[script] = time_variants(
            kind, constants, *loaded[dataset], len(data.class_names(dataset, arguments.data_dir)),
            variants, rounds, images_per_window)
    machine = f"{os.cpu_count()} CPU cores, GPUs: {tf.config.list_physical_devices('GPU') or 'none'}"
    lines = [
        "# Training speed", "",
        f"Command: `python benchmarks/benchmark.py --data-dir ../shared/data"
        f"{' --quick' if arguments.quick else ''}` on {machine}; {time.strftime('%Y-%m-%d')}.",
        f"Each variant's images/s is the median of {rounds} windows of {images_per_window} "
        "images, the variants of a quadrant taking turns (after one warm-up window each); a "
        "window counts from its first tenth of steps on. Training reads scaled batches held in "
        "memory, the same for every variant.", "",
        f"- float32 matmul (2048x2048) limit: **{limit:.0f} GFLOP/s** (bfloat16: "
        f"{bfloat16_limit:.0f} GFLOP/s; the mixed_bfloat16 rows are also counted against the "
        "float32 limit)",
        f"- input pipeline alone (common.data.make_dataset, batch 64): **{pipeline:.0f} images/s**",
        "", "## Ours (each script's defaults) against the baseline", "",
        "| quadrant | baseline img/s | ours batch | ours img/s | ours / baseline "
        "| ours GFLOP/s | ours % of matmul limit |",
        "|---|---|---|---|---|---|---|",
    ]
    for script, rows in tables.items():
        baseline, = [row for row in rows if row["label"].startswith("baseline")]
        ours, = [row for row in rows if row["default"]]
        lines.append(f"| {script} | {baseline['speed']:.0f} | {ours['batch']} | "
                     f"{ours['speed']:.0f} | **{ours['speed'] / baseline['speed']:.2f}x** | "
                     f"{ours['gflops']:.1f} | {100 * ours['gflops'] / limit:.0f}% |")
    lines += ["", "Opt-in `--precision mixed_bfloat16` (not the CPU default: the issue reserves "
              "mixed precision for GPUs):", ""]
    for script, rows in tables.items():
        baseline = rows[0]
        for row in rows:
            if "bfloat16" in row["label"]:
                lines.append(f"- {script}: {row['speed']:.0f} images/s, "
                             f"**{row['speed'] / baseline['speed']:.2f}x** the baseline")
    lines += ["", "## Every optimisation, measured in the same run", "",
              "The first rows add one change each, up to the script's default; each "
              "\"default + ...\" row adds one change to the script's default. \"in the "
              "script\": the script trains exactly this by default. The \"bound:\" row is not an "
              "optimisation but a limit: the default step with its batch normalisation, "
              "activations and biases taken out (`without_elementwise_work`), the fastest any "
              "rewrite of the element-wise work could train with these convolutions.", ""]
    for script, rows in tables.items():
        lines += [f"### {script}", "",
                  "| variant | batch | MFLOP/image | img/s | x baseline | GFLOP/s | % of limit "
                  "| in the script |", "|---|---|---|---|---|---|---|---|"]
        for row in rows:
            lines.append(f"| {row['label']} | {row['batch']} | {row['mflop_per_image']:.1f} | "
                         f"{row['speed']:.0f} | {row['speed'] / rows[0]['speed']:.2f}x | "
                         f"{row['gflops']:.1f} | {100 * row['gflops'] / limit:.0f}% | "
                         f"{'yes' if row['default'] else ''} |")
        lines.append("")
    lines += ["FLOPs per image are counted per layer (Conv2D: 2 x output pixels x kernel area x "
              "in x out channels; Conv2DTranspose: the same over input pixels; the one-filter "
              "convolution as a Conv2D; Dense: 2 x in x out; normalisation and activations not "
              "counted), and a backward pass counts twice its forward pass (see "
              "`training_flops`)."]
    write(arguments.output, lines)


# Trained for the same number of epochs on MNIST and scored like a run (evaluation.py): the
# speed-ups are kept only where the samples are no worse than the baseline's.
QUALITY_VARIANTS = {
    "gan": [VARIANTS["gan"][0], ("script default", {}),
            ("default + batch 128", {"BATCH_SIZE": 128}),
            ("default + batch 128, learning rates x2", {"BATCH_SIZE": 128,
                                                        "GENERATOR_LEARNING_RATE": 4e-4,
                                                        "DISCRIMINATOR_LEARNING_RATE": 4e-4}),
            ("default + batch 512", {"BATCH_SIZE": 512}),
            ("default + batch 512, learning rates x4", {"BATCH_SIZE": 512,
                                                        "GENERATOR_LEARNING_RATE": 8e-4,
                                                        "DISCRIMINATOR_LEARNING_RATE": 8e-4}),
            VARIANTS["gan"][-1]],  # mixed_bfloat16
    "vae": [VARIANTS["vae"][0], ("script default", {}), VARIANTS["vae"][-1]],
}


def quality(arguments):
    """Digits FID (and the VAE's -ELBO) after the same epochs for each QUALITY_VARIANT."""
    import keras

    import common.evaluation as evaluation

    images, labels = data.load("mnist", "train", arguments.data_dir)
    real, real_labels = data.validation_set("digits", arguments.data_dir)
    real01 = data.scale_images(real)
    evaluator = evaluation.Evaluator(arguments.evaluator, arguments.data_dir)
    epochs, seeds = arguments.quality_epochs, arguments.quality_seeds
    chosen = arguments.quality_variants
    command = (f"python benchmarks/benchmark.py --data-dir ../shared/data --quality-epochs "
               f"{epochs} --quality-seeds {seeds}"
               + (f" --quality-variants {shlex.quote(chosen)} --quality-output "
                  f"{os.path.relpath(arguments.quality_output, ROOT)}" if chosen else ""))
    lines = ["# Sample quality of the speed-ups", "",
             f"Command: `{command}`; {time.strftime('%Y-%m-%d')}. Each variant "
             f"trains {epochs} epochs on the 60,000 MNIST digits (common.data.make_dataset), "
             "then 10,000 samples are scored against the 10,000 MNIST test digits with the "
             "evaluator of common/evaluation.py; one row per seed (weights, noise, shuffling). "
             "Seconds include fit's start-up and the first epoch's tracing.", "",
             "| model | variant | seed | batch | seconds | digits FID | precision | recall "
             "| -ELBO (nats) |", "|---|---|---|---|---|---|---|---|---|"]
    for kind, variants in QUALITY_VARIANTS.items():
        constants = script_constants(f"{kind}_mnist")
        value_range = (-1, 1) if kind == "gan" else (0, 1)
        chosen_variants = [(label, changes) for label, changes in variants
                           if not chosen or chosen in label]
        for (label, changes), seed in itertools.product(chosen_variants, range(seeds)):
            keras.utils.set_random_seed(seed)
            model, batch_size = build_variant(kind, dict(constants, SEED=seed), 10, changes)
            dataset = data.make_dataset(images, labels, batch_size, seed=seed,
                                        value_range=value_range)
            started = time.perf_counter()
            model.fit(dataset, epochs=epochs, verbose=0)
            seconds = time.perf_counter() - started
            image_maker = model.generator if kind == "gan" else model.decoder
            latent = np.random.default_rng(0).normal(
                size=(len(real01), models.latent_size(image_maker))).astype(np.float32)
            fake01 = models.make_images(kind, image_maker, latent)
            scores = evaluation.score_samples(evaluator, real01, real_labels, fake01,
                                              list(range(10)))
            elbo = ""
            if kind == "vae":
                elbo = "{:.1f}".format(evaluation.vae_elbo(
                    model.encoder, model.decoder, real01, real_labels, 0)["negative_elbo"])
            lines.append(f"| {kind} | {label} | {seed} | {batch_size} | {seconds:.0f} | "
                         f"{scores['fid']:.1f} | {scores['precision']:.3f} | "
                         f"{scores['recall']:.3f} | {elbo} |")
            print(lines[-1], flush=True)
    write(arguments.quality_output, lines)


def full_runs(arguments):
    """Each script's full default run, alone, one after another -> RUNS.md."""
    folder = os.path.abspath(arguments.full_runs)
    cached_evaluator = os.path.join(ROOT, "outputs", "evaluator")
    if not os.path.exists(os.path.join(folder, "evaluator")) and os.path.exists(cached_evaluator):
        # Scored by the same evaluator as outputs/, without training it again.
        shutil.copytree(cached_evaluator, os.path.join(folder, "evaluator"))
    lines = ["# Full default runs", "",
             f"Each command run alone on {os.cpu_count()} CPU cores, one after another; "
             f"{time.strftime('%Y-%m-%d')}. Wall time is the whole command (data, training with "
             "its per-epoch figures and checkpoints, final figures, evaluation).", "",
             "| command | epochs | wall (min) | training (min) | evaluation (s) | FID digits "
             "| FID digits+upper |", "|---|---|---|---|---|---|---|"]
    for script in SCRIPTS:
        out_dir = os.path.join(folder, script)
        command = [sys.executable, f"{script}.py", "--out-dir", out_dir]
        if arguments.data_dir:
            command += ["--data-dir", arguments.data_dir]
        command += arguments.script_args.split()
        print(" ".join(command), flush=True)
        started = time.perf_counter()
        subprocess.run(command, cwd=ROOT, check=True)
        wall = time.perf_counter() - started
        with open(os.path.join(out_dir, "finished.json")) as file:
            finished = json.load(file)
        with open(os.path.join(out_dir, "eval.json")) as file:
            scores = json.load(file)
        sets = scores["validation_sets"]
        shown = " ".join(command[1:]).replace(folder, "RUNS")
        lines.append(f"| `python {shown}` | {finished['epochs']} | {wall / 60:.1f} | "
                     f"{finished['training_seconds'] / 60:.1f} | {scores['seconds']:.0f} | "
                     f"{sets['digits']['fid']:.1f} | {sets['digits_upper']['fid']:.1f} |")
        write(arguments.runs_output, lines)


def write(path, lines):
    with open(path, "w") as file:
        file.write("\n".join(lines) + "\n")
    print(f"Wrote {path}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--quick", action="store_true", help="short windows (a smoke check)")
    parser.add_argument("--output", default=os.path.join(ROOT, "benchmarks", "RESULTS.md"))
    parser.add_argument("--quality-epochs", type=int, default=0,
                        help="instead of speed: train each QUALITY_VARIANT this many epochs "
                             "and score its samples (writes QUALITY.md)")
    parser.add_argument("--quality-output",
                        default=os.path.join(ROOT, "benchmarks", "QUALITY.md"))
    parser.add_argument("--evaluator", default=os.path.join(ROOT, "outputs", "evaluator"),
                        help="the evaluator's cache folder (trained there if missing)")
    parser.add_argument("--quality-seeds", type=int, default=1)
    parser.add_argument("--quality-variants", metavar="TEXT", default="",
                        help="only the quality variants whose label contains TEXT")
    parser.add_argument("--full-runs", metavar="FOLDER",
                        help="instead of speed: run each script with its defaults into FOLDER, "
                             "one after another, and time them (writes RUNS.md)")
    parser.add_argument("--script-args", default="",
                        help="extra options for every full run, e.g. \"--epochs 1 --limit 2000\"")
    parser.add_argument("--runs-output", default=os.path.join(ROOT, "benchmarks", "RUNS.md"))
    arguments = parser.parse_args()
    if arguments.full_runs:
        full_runs(arguments)
    elif arguments.quality_epochs:
        quality(arguments)
    else:
        speed(arguments)


if __name__ == "__main__":
    main()
