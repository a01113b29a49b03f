"""DCGAN on MNIST digits: the study's first quadrant.

    python gan_mnist.py                          # full run, downloads MNIST with tfds
    python gan_mnist.py --data-dir ../shared/data --epochs 2 --limit 2000   # quick look

Every constant below can be overridden as --lower-case-name value; see --help.
Writes into outputs/gan_mnist/ (see outputs/README.md).
"""

import common.data as data
import common.evaluation as evaluation
import common.experiment as experiment
import common.gan as gan
import common.models as models

# Hyperparameters: the study's architecture; the recipe is explained in common/gan.py.
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
NUM_SAMPLES = 100
SEED = 1337
LIMIT = 0  # train on the first LIMIT images only; 0 = all
DATA_DIR = None  # folder of official IDX files; None = download with tensorflow-datasets
OUT_DIR = "outputs/gan_mnist"
INIT_FROM = None  # run folder of a GAN to start from

options = experiment.configure(globals())  # also answers --generate and --evaluate-only
hyperparameters = experiment.hyperparameters_of(globals())

# Data: the 60,000 MNIST training digits, scaled to the generator's tanh range.
images, labels = data.load("mnist", "train", DATA_DIR)
batch_size = BATCH_SIZE * options.strategy.num_replicas_in_sync  # --strategy mirrored: global
images, labels = experiment.limit_images(images, labels, LIMIT, batch_size)
class_names = data.class_names("mnist")
train_dataset = data.make_dataset(images, labels, batch_size, seed=SEED, value_range=(-1, 1))

# Model
model = gan.build(hyperparameters, len(class_names), options.strategy)
if INIT_FROM:
    models.init_from(model, "gan", hyperparameters, INIT_FROM)
# Only now the run folder: a bad option above leaves no half-made run behind.
run = experiment.RunFolder(OUT_DIR, "gan", hyperparameters, options, "mnist", DATA_DIR)

# Training, with a grid from the same noise after every epoch.
samples = gan.SampleGrid(model, run, NUM_SAMPLES, class_names)
experiment.fit(model, train_dataset, run, EPOCHS, epoch_figure=samples.save)

# Figures and evaluation
samples.save_final()
experiment.finish(run, model)
evaluation.evaluate_run(run.path, DATA_DIR)
