"""The study's DCGAN (keras-io DCGAN tutorial, adapted to 28x28 handwriting).

Recipe, chosen for quality and speed on a CPU (see README, "Training recipe"):
- images scaled to [-1, 1] and a tanh output: symmetric targets train better than sigmoid.
- LeakyReLU(0.2) everywhere and batch normalisation in the generator only (DCGAN paper);
  optional dropout in the discriminator (DROPOUT; 0, as in the study, by default).
- Adam(2e-4, beta_1=0.5) for both networks (DCGAN paper); one-sided label smoothing.
- one generator forward pass per step, both networks updated from it (the TensorFlow DCGAN
  tutorial's scheme): a third less work per step than generating twice, as keras-io does.
- common/layers.py's fused batch normalisation and one-filter convolution: the same functions
  as Keras's layers, 1.4x faster training together on the build machine (benchmarks/).
- conditional (optional): a label embedding multiplies the noise for the generator and is a
  28x28 extra channel for the discriminator.
"""

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from common import layers as fast
from common import experiment, models, plots

NOISE_SEED_OFFSET = 17


def build_generator(latent_dim, filters, kernel_size, num_classes=0, fast_layers=True):
    """Dense -> Reshape(7x7) -> Conv2DTranspose (stride 2) per filter -> Conv2D(1) 28x28.

    `fast_layers`: the batch normalisation and the last convolution from common/layers.py
    (same functions, faster here); False builds Keras's own (the benchmark's baseline).
    """
    normalization = fast.FusedBatchNormalization if fast_layers else layers.BatchNormalization
    if len(filters) != 2:
        raise ValueError(f"GENERATOR_FILTERS needs two values (7->14->28 pixels), got {filters}.")
    noise = keras.Input((latent_dim,), name="noise")
    inputs = [noise]
    hidden = noise
    if num_classes:
        label = keras.Input((), dtype="int32", name="label")
        inputs.append(label)
        hidden = layers.Multiply(name="noise_times_label")(
            [noise, layers.Embedding(num_classes, latent_dim, name="label_embedding")(label)])
    hidden = layers.Dense(7 * 7 * filters[0], use_bias=False, name="project")(hidden)
    hidden = normalization(name="project_norm")(hidden)
    hidden = layers.LeakyReLU(0.2)(hidden)
    hidden = layers.Reshape((7, 7, filters[0]))(hidden)
    for index, count in enumerate(filters):
        hidden = layers.Conv2DTranspose(count, 4, strides=2, padding="same", use_bias=False,
                                        name=f"upsample_{index + 1}")(hidden)
        hidden = normalization(name=f"upsample_{index + 1}_norm")(hidden)
        hidden = layers.LeakyReLU(0.2)(hidden)
    if fast_layers:
        image = fast.SingleFilterConv2D(kernel_size + 2, activation="tanh", dtype="float32",
                                        name="to_image")(hidden)
    else:
        image = layers.Conv2D(1, kernel_size + 2, padding="same", activation="tanh",
                              dtype="float32", name="to_image")(hidden)
    return keras.Model(inputs, image, name="generator")


def build_discriminator(filters, kernel_size, dropout, num_classes=0):
    """Conv2D (stride 2) per filter -> Flatten -> Dense(1) real/fake logit."""
    image = keras.Input((28, 28, 1), name="image")
    inputs = [image]
    hidden = image
    if num_classes:
        label = keras.Input((), dtype="int32", name="label")
        inputs.append(label)
        label_plane = layers.Reshape((28, 28, 1))(
            layers.Embedding(num_classes, 28 * 28, name="label_embedding")(label))
        hidden = layers.Concatenate()([image, label_plane])
    for index, count in enumerate(filters):
        hidden = layers.Conv2D(count, kernel_size, strides=2, padding="same",
                               name=f"downsample_{index + 1}")(hidden)
        hidden = layers.LeakyReLU(0.2)(hidden)
        hidden = layers.Dropout(dropout)(hidden)
    hidden = layers.Flatten()(hidden)
    # Under mixed precision the last layers stay float32, so losses and images are float32.
    logit = layers.Dense(1, dtype="float32", name="real_or_fake")(hidden)
    return keras.Model(inputs, logit, name="discriminator")


class GAN(keras.Model):
    """Trains a generator against a discriminator with `fit()` (keras-io pattern)."""

    def __init__(self, discriminator, generator, latent_dim, num_classes=0, label_smoothing=0.1,
                 seed=0, **kwargs):
        super().__init__(**kwargs)
        self.discriminator = discriminator
        self.generator = generator
        self.latent_dim = latent_dim
        self.num_classes = num_classes
        self.label_smoothing = label_smoothing
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.discriminator_loss_tracker = keras.metrics.Mean(name="discriminator_loss")
        self.generator_loss_tracker = keras.metrics.Mean(name="generator_loss")
        self.real_accuracy_tracker = keras.metrics.Mean(name="real_accuracy")
        # The networks are built functional models, so the wrapper is built too (needed to
        # save and load its weights with the optimizer state).
        self.built = True

    def compile(self, discriminator_optimizer, generator_optimizer, **kwargs):
        super().compile(**kwargs)
        self.discriminator_optimizer = discriminator_optimizer
        self.generator_optimizer = generator_optimizer
        self.loss_function = keras.losses.BinaryCrossentropy(from_logits=True)

    def build_optimizers(self):
        """Creates the optimizers' slots so a checkpoint's optimizer state can load into them."""
        self.discriminator_optimizer.build(self.discriminator.trainable_variables)
        self.generator_optimizer.build(self.generator.trainable_variables)

    @property
    def metrics(self):
        return [self.discriminator_loss_tracker, self.generator_loss_tracker,
                self.real_accuracy_tracker]

    def _inputs(self, tensor, labels):
        return [tensor, labels] if self.num_classes else [tensor]

    def discriminate(self, real_images, fake_images, labels):
        """The discriminator's logits for real and for fake images: two calls, which measured
        faster here than one call on both (benchmarks/RESULTS.md)."""
        return (self.discriminator(self._inputs(real_images, labels), training=True),
                self.discriminator(self._inputs(fake_images, labels), training=True))

    def train_step(self, data):
        real_images, labels = data
        batch_size = tf.shape(real_images)[0]
        noise = keras.random.normal((batch_size, self.latent_dim), seed=self.seed_generator)
        with tf.GradientTape() as generator_tape, tf.GradientTape() as discriminator_tape:
            fake_images = self.generator(self._inputs(noise, labels), training=True)
            real_logits, fake_logits = self.discriminate(real_images, fake_images, labels)
            # One-sided label smoothing: real targets 1 - s keep the discriminator from
            # becoming over-confident, which starves the generator of gradient.
            real_targets = tf.ones_like(real_logits) * (1.0 - self.label_smoothing)
            discriminator_loss = (self.loss_function(real_targets, real_logits)
                                  + self.loss_function(tf.zeros_like(fake_logits), fake_logits))
            generator_loss = self.loss_function(tf.ones_like(fake_logits), fake_logits)
            # Under MirroredStrategy the optimizers sum the replicas' gradients: scale each
            # replica's mean loss by 1 / replicas so the sum is the global batch's mean.
            replicas = tf.distribute.get_strategy().num_replicas_in_sync
            scaled_discriminator_loss = discriminator_loss / replicas
            scaled_generator_loss = generator_loss / replicas
        self.discriminator_optimizer.apply_gradients(zip(
            discriminator_tape.gradient(scaled_discriminator_loss,
                                        self.discriminator.trainable_variables),
            self.discriminator.trainable_variables))
        self.generator_optimizer.apply_gradients(zip(
            generator_tape.gradient(scaled_generator_loss, self.generator.trainable_variables),
            self.generator.trainable_variables))
        self.discriminator_loss_tracker.update_state(discriminator_loss)
        self.generator_loss_tracker.update_state(generator_loss)
        self.real_accuracy_tracker.update_state(
            tf.reduce_mean(tf.cast(real_logits > 0, tf.float32)))
        return {metric.name: metric.result() for metric in self.metrics}


def build(hyperparameters, num_classes, strategy=None, fast_layers=True):
    """The GAN of a script's hyperparameters (`num_classes` used only when conditional),
    built in `strategy`'s scope and PRECISION's dtype policy (experiment.model_scope);
    `fast_layers`: see build_generator."""
    with experiment.model_scope(hyperparameters, strategy):
        return _build(hyperparameters, num_classes, fast_layers)


def _build(hyperparameters, num_classes, fast_layers):
    h = hyperparameters
    classes = num_classes if h["CONDITIONAL"] else 0
    model = GAN(
        discriminator=build_discriminator(h["DISCRIMINATOR_FILTERS"], h["KERNEL_SIZE"],
                                          h["DROPOUT"], classes),
        generator=build_generator(h["LATENT_DIM"], h["GENERATOR_FILTERS"], h["KERNEL_SIZE"],
                                  classes, fast_layers),
        latent_dim=h["LATENT_DIM"], num_classes=classes,
        label_smoothing=h["LABEL_SMOOTHING"], seed=h["SEED"],
    )
    model.compile(
        discriminator_optimizer=keras.optimizers.Adam(h["DISCRIMINATOR_LEARNING_RATE"],
                                                      beta_1=h["ADAM_BETA_1"]),
        generator_optimizer=keras.optimizers.Adam(h["GENERATOR_LEARNING_RATE"],
                                                  beta_1=h["ADAM_BETA_1"]),
        steps_per_execution=h.get("STEPS_PER_EXECUTION", 1),
    )
    model.build_optimizers()
    return model


class SampleGrid:
    """Samples from the same noise after every epoch, so the grids show the GAN learning.

    A conditional GAN's grid asks for the classes in order, one class per column group.
    """

    def __init__(self, model, run, count, class_names):
        self.model = model
        self.run = run
        rng = np.random.default_rng(run.hyperparameters["SEED"] + NOISE_SEED_OFFSET)
        self.noise = rng.normal(size=(count, model.latent_dim)).astype(np.float32)
        self.labels = np.arange(count) % len(class_names) if model.num_classes else None
        self.columns = min(len(class_names), 16) if model.num_classes else None

    def save(self, epoch):
        self._save(f"samples_epoch_{epoch:03d}.png", f"samples after epoch {epoch}")

    def save_final(self):
        self._save("samples_final.png", f"final samples ({self.run.completed_epochs} epochs)")

    def _save(self, name, what):
        images = models.make_images("gan", self.model.generator, self.noise, self.labels)
        plots.save_image_grid(images, self.run.file(name), self.run.title(what),
                              columns=self.columns)
