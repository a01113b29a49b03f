"""Shared library for the GAN vs VAE handwriting study.

The four training scripts at the top level read like the experiment; everything they would
otherwise repeat lives here:

- `common.data`: datasets (tfds or local IDX files), EMNIST orientation, validation sets.
- `common.experiment`: the training-script contract (command line, run folder, checkpoints,
  resume, NaN guard, per-epoch figures).
- `common.gan`, `common.vae`: the two models.
- `common.plots`: sample grids, latent figures, loss curves, generated handwriting.
- `common.evaluation`: the evaluator classifier and the generation metrics.
- `common.report`: the 2x2 comparison report.
"""

import os as _os

# TensorFlow's C++ logging prints start-up notices and harmless graph-optimiser errors
# ("remapper failed") that bury the progress bar; Python exceptions are unaffected.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
