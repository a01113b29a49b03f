"""DCGAN on EMNIST Balanced (digits, uppercase and 11 lowercase letters): the third quadrant.

The study's question is what retraining on the extended data does to the MNIST model:

    python gan_mnist.py                                   # first, the digits model
    python gan_emnist.py --init-from outputs/gan_mnist --out-dir outputs/gan_emnist_retrained
    python gan_emnist.py                                  # from scratch, as the study ran it

With CONDITIONAL = True (--conditional true) the GAN learns each character on demand:

    python gan_emnist.py --conditional true
    python gan_emnist.py --generate "HELLO 42"            # handwriting from the saved model

Every constant below can be overridden as --lower-case-name value; see --help.
"""

import common.data as data
import common.evaluation as evaluation
import common.experiment as experiment
import common.gan as gan
import common.models as models

# Hyperparameters: the same networks as gan_mnist.py, so its weights can start this run.
EPOCHS = 15
BATCH_SIZE = 64
LATENT_DIM = 64
GENERATOR_FILTERS = (64, 32)
DISCRIMINATOR_FILTERS = (32, 64)
KERNEL_SIZE = 3
DROPOUT = 0.0  # the study's discriminator has none; 0.3 gave a worse FID after 3 epochs
GENERATOR_LEARNING_RATE = 2e-4
DISCRIMINATOR_LEARNING_RATE = 2e-4
ADAM_BETA_1 = 0.5
LABEL_SMOOTHING = 0.1
CONDITIONAL = False
STEPS_PER_EXECUTION = 1
PRECISION = "auto"  # float32, mixed_bfloat16, or auto: mixed_bfloat16 where a GPU is present
NUM_SAMPLES = 94  # two rows of the 47 characters when conditional
SEED = 1337
LIMIT = 0  # train on the first LIMIT images only; 0 = all
DATA_DIR = None  # folder of official IDX files; None = download with tensorflow-datasets
OUT_DIR = "outputs/gan_emnist"
INIT_FROM = None  # e.g. outputs/gan_mnist: retrain the digits GAN on EMNIST (the study)

options = experiment.configure(globals())  # also answers --generate and --evaluate-only
hyperparameters = experiment.hyperparameters_of(globals())

# Data: EMNIST Balanced train, upright (common.data fixes EMNIST's transposed storage).
images, labels = data.load("emnist", "train", DATA_DIR)
batch_size = BATCH_SIZE * options.strategy.num_replicas_in_sync  # --strategy mirrored: global
images, labels = experiment.limit_images(images, labels, LIMIT, batch_size)
class_names = data.class_names("emnist", DATA_DIR)
train_dataset = data.make_dataset(images, labels, batch_size, seed=SEED, value_range=(-1, 1))

# Model: from scratch, or the MNIST GAN's weights (a conditional model keeps its ten digit
# classes; the 37 letter classes start fresh).
model = gan.build(hyperparameters, len(class_names), options.strategy)
if INIT_FROM:
    models.init_from(model, "gan", hyperparameters, INIT_FROM)
# Only now the run folder: a bad option above leaves no half-made run behind.
run = experiment.RunFolder(OUT_DIR, "gan", hyperparameters, options, "emnist", DATA_DIR)

samples = gan.SampleGrid(model, run, NUM_SAMPLES, class_names)
experiment.fit(model, train_dataset, run, EPOCHS, epoch_figure=samples.save)

samples.save_final()
experiment.finish(run, model)
if INIT_FROM:
    models.save_retraining_figure(INIT_FROM, run)
evaluation.evaluate_run(run.path, DATA_DIR)
