"""Convolutional VAE on EMNIST Balanced with a 2-D latent space: the fourth quadrant.

The study retrains the MNIST VAE on the extended data and looks at where the 47 characters
land in the latent space:

    python vae_mnist.py
    python vae_emnist.py --init-from outputs/vae_mnist --out-dir outputs/vae_emnist_retrained
    python vae_emnist.py --plot-chars AEIOU              # only the vowels in the scatter
    python vae_emnist.py --conditional true              # then --generate "HELLO 42"

Every constant below can be overridden as --lower-case-name value; see --help.
"""

import common.data as data
import common.evaluation as evaluation
import common.experiment as experiment
import common.models as models
import common.vae as vae

# Hyperparameters: the same networks as vae_mnist.py, so its weights can start this run.
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
NUM_SAMPLES = 94  # two rows of the 47 characters when conditional
PLOT_CHARS = ""  # e.g. "AEIOU": draw only these characters in the latent scatter; "" = all
GRID_SIZE = 20
LATENT_AXES = (0, 1)  # the two latent axes the manifold grid varies (LATENT_DIM > 2)
SEED = 1337
LIMIT = 0  # train on the first LIMIT images only; 0 = all
DATA_DIR = None  # folder of official IDX files; None = download with tensorflow-datasets
OUT_DIR = "outputs/vae_emnist"
INIT_FROM = None  # e.g. outputs/vae_mnist: retrain the digits VAE on EMNIST (the study)

options = experiment.configure(globals())  # also answers --generate and --evaluate-only
hyperparameters = experiment.hyperparameters_of(globals())

# Data: EMNIST train to learn from; the EMNIST test split, all 47 characters, for the
# per-epoch validation ELBO and the latent figures.
images, labels = data.load("emnist", "train", DATA_DIR)
batch_size = BATCH_SIZE * options.strategy.num_replicas_in_sync  # --strategy mirrored: global
images, labels = experiment.limit_images(images, labels, LIMIT, batch_size)
validation_images, validation_labels = data.load("emnist", "test", DATA_DIR)
class_names = data.class_names("emnist", DATA_DIR)
train_dataset = data.make_dataset(images, labels, batch_size, seed=SEED)
validation_dataset = data.make_dataset(validation_images, validation_labels, 512, shuffle=False,
                                       drop_remainder=False)

model = vae.build(hyperparameters, len(class_names), class_names, options.strategy)
if INIT_FROM:
    models.init_from(model, "vae", hyperparameters, INIT_FROM)
# Only now the run folder: a bad option above leaves no half-made run behind.
run = experiment.RunFolder(OUT_DIR, "vae", hyperparameters, options, "emnist", DATA_DIR)

reconstructions = vae.ReconstructionGrid(model, run, validation_images, validation_labels)
experiment.fit(model, train_dataset, run, EPOCHS, epoch_figure=reconstructions.save,
               validation_data=validation_dataset)

# The study's figures: does the 2-D latent space crowd the 47 characters together?
vae.save_prior_samples(model, run, NUM_SAMPLES, class_names)
vae.save_latent_figures(model, run, validation_images, validation_labels, class_names,
                        PLOT_CHARS, GRID_SIZE, LATENT_AXES)
experiment.finish(run, model)
if INIT_FROM:
    models.save_retraining_figure(INIT_FROM, run)
evaluation.evaluate_run(run.path, DATA_DIR)
