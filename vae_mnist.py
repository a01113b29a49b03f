"""Convolutional VAE on MNIST digits with a 2-D latent space: the study's second quadrant.

    python vae_mnist.py                          # full run, downloads MNIST with tfds
    python vae_mnist.py --data-dir ../shared/data --plot-chars 5   # scatter of the 5s only

Every constant below can be overridden as --lower-case-name value; see --help.
Writes into outputs/vae_mnist/ (see outputs/README.md).
"""

import common.data as data
import common.evaluation as evaluation
import common.experiment as experiment
import common.models as models
import common.vae as vae

# Hyperparameters: the keras-io VAE, whose 2-D latent space can be drawn as it is.
EPOCHS = 20
BATCH_SIZE = 128
LATENT_DIM = 2
ENCODER_FILTERS = (32, 64)
DECODER_FILTERS = (64, 32)
KERNEL_SIZE = 3
DENSE_UNITS = 16
LEARNING_RATE = 1e-3
CONDITIONAL = False
STEPS_PER_EXECUTION = 1
PRECISION = "float32"  # not auto: bfloat16 costs this 2-D VAE likelihood (README, Training speed)
NUM_SAMPLES = 100
PLOT_CHARS = ""  # e.g. "5": draw only these characters in the latent scatter; "" = all
GRID_SIZE = 20
LATENT_AXES = (0, 1)  # the two latent axes the manifold grid varies (LATENT_DIM > 2)
SEED = 1337
LIMIT = 0  # train on the first LIMIT images only; 0 = all
DATA_DIR = None  # folder of official IDX files; None = download with tensorflow-datasets
OUT_DIR = "outputs/vae_mnist"
INIT_FROM = None  # run folder of a VAE to start from

options = experiment.configure(globals())  # also answers --generate and --evaluate-only
hyperparameters = experiment.hyperparameters_of(globals())

# Data: MNIST train to learn from; MNIST test (the digits validation set) for the
# validation ELBO every epoch and for the latent figures.
images, labels = data.load("mnist", "train", DATA_DIR)
batch_size = BATCH_SIZE * options.strategy.num_replicas_in_sync  # --strategy mirrored: global
images, labels = experiment.limit_images(images, labels, LIMIT, batch_size)
validation_images, validation_labels = data.validation_set("digits", DATA_DIR)
class_names = data.class_names("mnist")
train_dataset = data.make_dataset(images, labels, batch_size, seed=SEED)
validation_dataset = data.make_dataset(validation_images, validation_labels, 512, shuffle=False,
                                       drop_remainder=False)

# Model
model = vae.build(hyperparameters, len(class_names), class_names, options.strategy)
if INIT_FROM:
    models.init_from(model, "vae", hyperparameters, INIT_FROM)
# Only now the run folder: a bad option above leaves no half-made run behind.
run = experiment.RunFolder(OUT_DIR, "vae", hyperparameters, options, "mnist", DATA_DIR)

# Training, with reconstructions of the same validation digits after every epoch.
reconstructions = vae.ReconstructionGrid(model, run, validation_images, validation_labels)
experiment.fit(model, train_dataset, run, EPOCHS, epoch_figure=reconstructions.save,
               validation_data=validation_dataset)

# Figures: samples from the prior, the latent scatter and the manifold grid.
vae.save_prior_samples(model, run, NUM_SAMPLES, class_names)
vae.save_latent_figures(model, run, validation_images, validation_labels, class_names,
                        PLOT_CHARS, GRID_SIZE, LATENT_AXES)
experiment.finish(run, model)

# Evaluation on both validation sets (ELBO, generation metrics): eval.json
evaluation.evaluate_run(run.path, DATA_DIR)
