"""The study's convolutional VAE (keras-io VAE tutorial), optionally class-conditional.

Loss = reconstruction (binary cross-entropy summed over the 784 pixels) + KL divergence of the
approximate posterior from the unit Gaussian prior: the negative ELBO, in nats per image. Both
terms are tracked separately, in training (`train_step`) and on validation data (`test_step`).
"""

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from common import data, experiment, models, plots
from common import layers as fast

LATENT_GRID_RANGE = 2.5  # prior standard deviations covered by the manifold grid


class Sampling(layers.Layer):
    """z = mean + exp(log_var / 2) * epsilon: the reparameterisation trick."""

    def __init__(self, seed=0, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.built = True  # no weights; Keras's distributed fit wants every layer built

    def call(self, inputs):
        mean, log_variance = inputs
        epsilon = keras.random.normal(tf.shape(mean), seed=self.seed_generator)
        return mean + tf.exp(0.5 * log_variance) * epsilon

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}


def build_encoder(latent_dim, filters, kernel_size, dense_units, num_classes=0):
    """Conv2D (stride 2) per filter -> Flatten -> Dense -> latent mean and log-variance."""
    image = keras.Input((28, 28, 1), name="image")
    inputs = [image]
    hidden = image
    for index, count in enumerate(filters):
        hidden = layers.Conv2D(count, kernel_size, strides=2, padding="same", activation="relu",
                               name=f"downsample_{index + 1}")(hidden)
    hidden = layers.Flatten()(hidden)
    if num_classes:
        label = keras.Input((), dtype="int32", name="label")
        inputs.append(label)
        hidden = layers.Concatenate()([hidden, layers.CategoryEncoding(
            num_classes, output_mode="one_hot", name="label_one_hot")(label)])
    hidden = layers.Dense(dense_units, activation="relu", name="dense")(hidden)
    # Under mixed precision the latent layers stay float32: the KL term and the sampling.
    mean = layers.Dense(latent_dim, dtype="float32", name="latent_mean")(hidden)
    log_variance = layers.Dense(latent_dim, dtype="float32", name="latent_log_variance")(hidden)
    return keras.Model(inputs, [mean, log_variance], name="encoder")


def build_decoder(latent_dim, filters, kernel_size, num_classes=0, fast_layers=True):
    """Dense -> Reshape(7x7) -> Conv2DTranspose (stride 2) per filter -> one-filter conv.

    The last layer is keras-io's Conv2DTranspose(1, kernel_size) at stride 1, which is a
    convolution with a flipped kernel: the same family of functions as
    common.layers.SingleFilterConv2D, which computes it faster here (`fast_layers`; False
    builds keras-io's layer, the benchmark's baseline).
    """
    if len(filters) != 2:
        raise ValueError(f"DECODER_FILTERS needs two values (7->14->28 pixels), got {filters}.")
    latent = keras.Input((latent_dim,), name="latent")
    inputs = [latent]
    hidden = latent
    if num_classes:
        label = keras.Input((), dtype="int32", name="label")
        inputs.append(label)
        hidden = layers.Concatenate()([latent, layers.CategoryEncoding(
            num_classes, output_mode="one_hot", name="label_one_hot")(label)])
    hidden = layers.Dense(7 * 7 * filters[0], activation="relu", name="project")(hidden)
    hidden = layers.Reshape((7, 7, filters[0]))(hidden)
    for index, count in enumerate(filters):
        hidden = layers.Conv2DTranspose(count, kernel_size, strides=2, padding="same",
                                        activation="relu", name=f"upsample_{index + 1}")(hidden)
    if fast_layers:
        image = fast.SingleFilterConv2D(kernel_size, activation="sigmoid", dtype="float32",
                                        name="to_image")(hidden)
    else:
        image = layers.Conv2DTranspose(1, kernel_size, padding="same", activation="sigmoid",
                                       dtype="float32", name="to_image")(hidden)
    return keras.Model(inputs, image, name="decoder")


class VAE(keras.Model):
    """Encoder + decoder trained on the ELBO with `fit()` (keras-io pattern)."""

    def __init__(self, encoder, decoder, num_classes=0, seed=0, **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.decoder = decoder
        self.num_classes = num_classes
        self.sampling = Sampling(seed, dtype="float32")
        self.total_loss_tracker = keras.metrics.Mean(name="loss")
        self.reconstruction_loss_tracker = keras.metrics.Mean(name="reconstruction_loss")
        self.kl_loss_tracker = keras.metrics.Mean(name="kl_loss")
        # The networks are built functional models, so the wrapper is built too (needed to
        # save and load its weights with the optimizer state).
        self.built = True

    @property
    def metrics(self):
        return [self.total_loss_tracker, self.reconstruction_loss_tracker, self.kl_loss_tracker]

    def build_optimizers(self):
        """Creates the optimizer's slots so a checkpoint's optimizer state can load into it."""
        self.optimizer.build(self.trainable_variables)

    def _inputs(self, tensor, labels):
        return [tensor, labels] if self.num_classes else [tensor]

    def losses_of(self, images, labels, training):
        mean, log_variance = self.encoder(self._inputs(images, labels), training=training)
        latent = self.sampling([mean, log_variance])
        reconstruction = self.decoder(self._inputs(latent, labels), training=training)
        reconstruction_loss = tf.reduce_mean(tf.reduce_sum(
            keras.losses.binary_crossentropy(images, reconstruction), axis=(1, 2)))
        kl_loss = tf.reduce_mean(tf.reduce_sum(
            -0.5 * (1 + log_variance - tf.square(mean) - tf.exp(log_variance)), axis=1))
        return reconstruction_loss, kl_loss

    def _track(self, reconstruction_loss, kl_loss):
        self.total_loss_tracker.update_state(reconstruction_loss + kl_loss)
        self.reconstruction_loss_tracker.update_state(reconstruction_loss)
        self.kl_loss_tracker.update_state(kl_loss)
        return {metric.name: metric.result() for metric in self.metrics}

    def train_step(self, data):
        images, labels = data
        with tf.GradientTape() as tape:
            reconstruction_loss, kl_loss = self.losses_of(images, labels, training=True)
            # Under MirroredStrategy the optimizer sums the replicas' gradients: scale each
            # replica's loss by 1 / replicas so the sum is the global batch's mean.
            replicas = tf.distribute.get_strategy().num_replicas_in_sync
            scaled_loss = (reconstruction_loss + kl_loss) / replicas
        gradients = tape.gradient(scaled_loss, self.trainable_variables)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_variables))
        return self._track(reconstruction_loss, kl_loss)

    def test_step(self, data):
        images, labels = data
        return self._track(*self.losses_of(images, labels, training=False))


def build(hyperparameters, num_classes, class_names=None, strategy=None, fast_layers=True):
    """The VAE of a script's hyperparameters (`num_classes` used only when conditional;
    `fast_layers`: see build_decoder), built in `strategy`'s scope and PRECISION's dtype policy
    (experiment.model_scope).

    Checks the figure options against the model first (with `class_names`), so a bad
    --plot-chars or --latent-axes fails before training rather than after it.
    """
    h = hyperparameters
    axes = h.get("LATENT_AXES", (0, 1))
    if len(axes) != 2 or len(set(axes)) != 2 or max(axes) >= h["LATENT_DIM"]:
        raise ValueError(f"--latent-axes needs two different axes below LATENT_DIM = "
                         f"{h['LATENT_DIM']}, got {','.join(map(str, axes))}.")
    if class_names is not None and h.get("PLOT_CHARS"):
        data.labels_for_characters(h["PLOT_CHARS"], class_names)
    with experiment.model_scope(h, strategy):
        return _build(h, num_classes if h["CONDITIONAL"] else 0, fast_layers)


def _build(h, classes, fast_layers):
    model = VAE(
        encoder=build_encoder(h["LATENT_DIM"], h["ENCODER_FILTERS"], h["KERNEL_SIZE"],
                              h["DENSE_UNITS"], classes),
        decoder=build_decoder(h["LATENT_DIM"], h["DECODER_FILTERS"], h["KERNEL_SIZE"], classes,
                              fast_layers),
        num_classes=classes, seed=h["SEED"],
    )
    model.compile(optimizer=keras.optimizers.Adam(h["LEARNING_RATE"]),
                  steps_per_execution=h.get("STEPS_PER_EXECUTION", 1))
    model.build_optimizers()
    return model


def encode(encoder, images, labels=None):
    """Latent means of images in [0, 1] (N, 28, 28, 1)."""
    inputs = [images] if labels is None else [images, np.asarray(labels, dtype=np.int32)]
    mean, _ = encoder.predict(inputs, verbose=0, batch_size=512)
    return mean


def latent_grid(latent_dim, size, axes=(0, 1)):
    """Latent vectors over a size x size grid of two axes (others 0), top row = high axis 1."""
    values = np.linspace(-LATENT_GRID_RANGE, LATENT_GRID_RANGE, size)
    grid = np.zeros((size * size, latent_dim), dtype=np.float32)
    for row, second in enumerate(values[::-1]):
        for column, first in enumerate(values):
            grid[row * size + column, axes[0]] = first
            grid[row * size + column, axes[1]] = second
    return grid, values


def principal_components(points, count=2):
    """Projects `points` on their first `count` principal axes (for latent sizes above 2)."""
    centred = points - points.mean(axis=0)
    _, _, directions = np.linalg.svd(centred, full_matrices=False)
    return centred @ directions[:count].T


class ReconstructionGrid:
    """Fixed validation images (odd rows) above their reconstructions (even rows), per epoch."""

    def __init__(self, model, run, images, labels, count=32, columns=16):
        self.model = model
        self.run = run
        self.images = data.scale_images(images[:count])
        self.labels = labels[:count] if model.num_classes else None
        self.columns = columns

    def save(self, epoch):
        latent = encode(self.model.encoder, self.images, self.labels)
        reconstructions = models.make_images("vae", self.model.decoder, latent, self.labels)
        rows = []
        for start in range(0, len(self.images), self.columns):
            rows += [self.images[start : start + self.columns],
                     reconstructions[start : start + self.columns]]
        plots.save_image_grid(np.concatenate(rows), self.run.file(f"samples_epoch_{epoch:03d}.png"),
                              self.run.title(f"validation images (odd rows) and their "
                                             f"reconstructions, epoch {epoch}"),
                              columns=self.columns)


def save_prior_samples(model, run, count, class_names):
    """Decoded draws from the N(0, I) prior (classes in order, when conditional)."""
    rng = np.random.default_rng(run.hyperparameters["SEED"])
    latent = rng.normal(size=(count, model.decoder.inputs[0].shape[-1])).astype(np.float32)
    labels = np.arange(count) % len(class_names) if model.num_classes else None
    plots.save_image_grid(models.make_images("vae", model.decoder, latent, labels),
                          run.file("samples_final.png"),
                          run.title(f"samples from the prior ({run.completed_epochs} epochs)"),
                          columns=min(len(class_names), 16) if model.num_classes else None)


def save_latent_figures(model, run, images, labels, class_names, plot_chars="", grid_size=20,
                        axes=(0, 1)):
    """The study's two latent figures: the scatter of encoded images and the manifold grid.

    `plot_chars` adds a scatter of those characters only (as the study did to debug one
    class), on the same axes. Above two latent dimensions the scatter shows the first two
    principal components and the grid varies latent axes `axes` with the others at 0.
    """
    points = encode(model.encoder, data.scale_images(images),
                    labels if model.num_classes else None)
    latent_dim = points.shape[1]
    axis_names = ("z[0]", "z[1]")
    if latent_dim > 2:
        points = principal_components(points)
        axis_names = ("principal component 1", "principal component 2")
    plots.save_latent_scatter(points, labels, class_names, run.file("latent_scatter.png"),
                              run.title("validation set in the latent space"), axis_names)
    if plot_chars:
        keep = np.isin(labels, data.labels_for_characters(plot_chars, class_names))
        suffix = "".join(character if character.isalnum() else "_" for character in plot_chars)
        plots.save_latent_scatter(points[keep], labels[keep], class_names,
                                  run.file(f"latent_scatter_{suffix}.png"),
                                  run.title(f"validation set in the latent space, {plot_chars} "
                                            f"only"), axis_names)
    grid, values = latent_grid(latent_dim, grid_size, axes)
    grid_labels = None
    if model.num_classes:  # a conditional decoder needs a class: use the first plotted one
        grid_labels = np.full(len(grid), data.labels_for_characters(plot_chars or class_names[0],
                                                                    class_names)[0])
    plots.save_latent_grid(models.make_images("vae", model.decoder, grid, grid_labels), values,
                           run.file("latent_grid.png"),
                           run.title(f"decoded {grid_size}x{grid_size} grid of the latent space"),
                           (f"z[{axes[0]}]", f"z[{axes[1]}]"))
