"""The training-script contract shared by the four scripts.

- `configure(globals())`: every UPPERCASE constant at the top of a script becomes a command-line
  option `--lower-case-name value` (nanoGPT style); overrides are checked and written back into
  the script's globals before any work starts.
- `RunFolder`: the run's output folder: refuses to overwrite a finished run, writes
  `config.json`, keeps the per-epoch checkpoint and resumes from it.
- `fit(...)`: `model.fit` with the callbacks every run needs (history.csv, checkpoint every
  epoch, NaN guard, TensorBoard, a per-epoch figure), then the training GIF and loss curves.
"""

import argparse
import contextlib
import csv
import json
import os
import platform
import shutil
import sys
import time

import numpy as np

# Hyperparameters that may be zero; every other number must be positive.
MAY_BE_ZERO = {"LIMIT", "SEED", "LABEL_SMOOTHING", "DROPOUT", "LATENT_AXES"}
# Hyperparameters that are fractions: 0 <= value < 1.
FRACTIONS = {"LABEL_SMOOTHING", "DROPOUT"}
# Hyperparameters that name one of a few choices.
CHOICES = {"PRECISION": ("auto", "float32", "mixed_bfloat16")}
# Paths and run switches: recorded in config.json but not part of the model's identity.
NOT_ARCHITECTURE = {"DATA_DIR", "OUT_DIR", "INIT_FROM", "EPOCHS", "LIMIT", "SEED"}
CHECKPOINT_WEIGHTS = "checkpoint.weights.h5"
CHECKPOINT_STATE = "checkpoint.json"
CONFIG_FILE = "config.json"
HISTORY_FILE = "history.csv"
FINISHED_MARKER = "finished.json"
# Errors that are the user's to fix: shown as one clear line, not a traceback.
USER_ERRORS = (ValueError, FileNotFoundError, ConnectionError, FloatingPointError)


class TrainingDiverged(FloatingPointError):
    pass


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def _parse_bool(text):
    lowered = text.lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _parser_for(default):
    """A command-line parser that returns values of the same type as `default`."""
    if isinstance(default, bool):
        return _parse_bool
    if isinstance(default, tuple):
        item = type(default[0]) if default else int

        def parse_tuple(text):
            try:
                return tuple(item(part) for part in text.split(",") if part.strip())
            except ValueError:
                raise argparse.ArgumentTypeError(
                    f"expected comma-separated {item.__name__}s, got {text!r}"
                ) from None

        return parse_tuple
    if isinstance(default, (int, float)):
        kind = type(default)

        def parse_number(text):
            try:
                return kind(text)
            except ValueError:
                raise argparse.ArgumentTypeError(
                    f"expected {kind.__name__}, got {text!r}"
                ) from None

        return parse_number
    return lambda text: None if text.lower() == "none" else text


def hyperparameters_of(namespace):
    """The UPPERCASE constants of a script's globals, in the order they were written."""
    return {
        name: value
        for name, value in namespace.items()
        if name.isupper() and isinstance(value, (bool, int, float, str, tuple, type(None)))
    }


def check_hyperparameters(hyperparameters):
    for name, value in hyperparameters.items():
        if name in CHOICES and value not in CHOICES[name]:
            raise ValueError(f"--{_option(name)} must be one of {', '.join(CHOICES[name])}, "
                             f"got {value!r}.")
        values = value if isinstance(value, tuple) else (value,)
        for item in values:
            if isinstance(item, bool) or not isinstance(item, (int, float)):
                continue
            if name in FRACTIONS and not 0 <= item < 1:
                raise ValueError(f"--{_option(name)} must be in [0, 1), got {item}.")
            if name not in MAY_BE_ZERO and item <= 0:
                raise ValueError(f"--{_option(name)} must be positive, got {item}.")
            if item < 0:
                raise ValueError(f"--{_option(name)} must not be negative, got {item}.")
        if isinstance(value, tuple) and not value:
            raise ValueError(f"--{_option(name)} needs at least one value.")


def _metavar(default):
    if default is None or isinstance(default, str):
        return "TEXT"
    if isinstance(default, tuple):
        return "N,N"
    return type(default).__name__.upper()


def _option(name):
    return name.lower().replace("_", "-")


def configure(namespace, argv=None):
    """Parses the command line into the script's UPPERCASE constants; returns the run options.

    Also makes user errors (bad values, missing files, divergence) print one clear line.
    """
    sys.excepthook = _excepthook
    hyperparameters = hyperparameters_of(namespace)
    parser = argparse.ArgumentParser(
        description=(namespace.get("__doc__") or "").strip().splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    for name, default in hyperparameters.items():
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
        parser.add_argument(
            f"--{_option(name)}", dest=name, type=_parser_for(default), default=default,
            metavar=_metavar(default),
            help=f"(default {shown})",
        )
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in --out-dir from its last completed epoch")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing run folder instead of refusing")
    parser.add_argument("--generate", metavar="TEXT",
                        help="write TEXT in generated handwriting from the saved conditional "
                             "model in --out-dir, then exit")
    parser.add_argument("--evaluate-only", action="store_true",
                        help="score the saved model in --out-dir again (eval.json), then exit")
    parser.add_argument("--strategy", choices=("default", "mirrored"), default="default",
                        help="mirrored: data-parallel training over all visible GPUs "
                             "(tf.distribute.MirroredStrategy); BATCH_SIZE is per replica")
    arguments = parser.parse_args(argv)
    overrides = {name: getattr(arguments, name) for name in hyperparameters}
    try:
        check_hyperparameters(overrides)
    except ValueError as error:
        parser.error(str(error))
    namespace.update(overrides)
    arguments.strategy_name = arguments.strategy
    arguments.strategy = distribution_strategy(arguments.strategy)
    if arguments.generate is not None:
        from common import models

        models.write_handwriting(namespace["OUT_DIR"], arguments.generate)
        sys.exit(0)
    if arguments.evaluate_only:
        from common import evaluation

        evaluation.evaluate_run(namespace["OUT_DIR"], namespace.get("DATA_DIR"))
        sys.exit(0)
    return arguments


def _excepthook(kind, error, traceback):
    if issubclass(kind, USER_ERRORS):
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    sys.__excepthook__(kind, error, traceback)


# --------------------------------------------------------------------------------------------
# Run folder
# --------------------------------------------------------------------------------------------


class RunFolder:
    """One run's output folder: config, checkpoint, history, figures and models."""

    def __init__(self, path, model_kind, hyperparameters, options, dataset, data_dir):
        from common import data

        self.path = path
        self.model_kind = model_kind
        self.hyperparameters = dict(hyperparameters)
        self.dataset = dataset
        self.class_names = data.class_names(dataset, data_dir)
        self.data_source = data.source_description(dataset, data_dir)
        self.completed_epochs = 0
        self.strategy = {"name": options.strategy_name,
                         "replicas": options.strategy.num_replicas_in_sync}
        config_path = self.file(CONFIG_FILE)
        if options.resume:
            self._open_for_resume(config_path)
        else:
            self._create(config_path, options.overwrite)

    def title(self, what):
        """A figure title that names the model and the data (the stand-in says so)."""
        return f"{self.model_kind.upper()} on {self.data_source}: {what}"

    def file(self, name):
        return os.path.join(self.path, name)

    def _create(self, config_path, overwrite):
        if os.path.isdir(self.path) and os.listdir(self.path):
            if not os.path.exists(config_path):
                raise ValueError(
                    f"{self.path} exists and is not a run folder of this project; choose "
                    f"another --out-dir (nothing was deleted)."
                )
            if not overwrite:
                state = "a finished run" if self.finished else "an unfinished run"
                raise ValueError(
                    f"{self.path} already holds {state}. Pass --resume to continue it, "
                    f"--overwrite to replace it, or choose another --out-dir."
                )
            shutil.rmtree(self.path)
        os.makedirs(self.path, exist_ok=True)
        self.write_json(CONFIG_FILE, {
            "model": self.model_kind,
            "dataset": self.dataset,
            "data_source": self.data_source,
            "class_names": self.class_names,
            "hyperparameters": self.hyperparameters,
            "strategy": self.strategy,
            "precision": precision_policy(self.hyperparameters.get("PRECISION", "float32")),
            "command": " ".join([os.path.basename(sys.argv[0])] + sys.argv[1:]),
            "versions": _versions(),
            "machine": machine_description(),
            "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        })

    def _open_for_resume(self, config_path):
        if not os.path.exists(config_path):
            raise FileNotFoundError(f"Cannot resume: {config_path} does not exist.")
        config = self.read_json(CONFIG_FILE)
        if config.get("model") != self.model_kind:
            raise ValueError(
                f"Cannot resume {self.path}: it holds a {config.get('model')} run, "
                f"not a {self.model_kind} run."
            )
        stored = config["hyperparameters"]
        # Hyperparameters added to the scripts after this run began (PRECISION, say): the
        # run trained without them, so there is nothing to compare.
        unrecorded = sorted(set(self.hyperparameters) - set(stored))
        if unrecorded:
            print(f"{config_path} predates {', '.join(unrecorded)}: resuming with the "
                  f"script's values.")
        changed = differing_hyperparameters(stored, self.hyperparameters,
                                            ignore={"DATA_DIR", *unrecorded})
        if changed:
            raise ValueError(
                f"Cannot resume {self.path} with other hyperparameters "
                f"(stored, given): {changed}. Resume with the same options."
            )
        if os.path.exists(self.file(CHECKPOINT_STATE)):
            self.completed_epochs = self.read_json(CHECKPOINT_STATE)["epoch"]
        if self.finished:
            raise ValueError(f"{self.path} is already finished; nothing to resume.")
        _truncate_history(self.file(HISTORY_FILE), self.completed_epochs)

    @property
    def finished(self):
        return os.path.exists(self.file(FINISHED_MARKER))

    def write_json(self, name, content):
        temporary = self.file(name + ".tmp")
        with open(temporary, "w") as file:
            json.dump(_jsonable(content), file, indent=2)
        os.replace(temporary, self.file(name))

    def read_json(self, name):
        with open(self.file(name)) as file:
            return json.load(file)

    def restore_checkpoint(self, model):
        """Loads the last completed epoch's weights and optimizer state into `model`."""
        if self.completed_epochs:
            path = self.file(CHECKPOINT_WEIGHTS)
            try:
                model.load_weights(path)
            except ValueError as error:
                raise ValueError(
                    f"{path} does not fit this model: it was written by another model or an "
                    f"older version of this code ({error})"
                ) from error
            print(f"Resuming {self.path} after epoch {self.completed_epochs}.")
        return self.completed_epochs

    def mark_finished(self, summary):
        self.write_json(FINISHED_MARKER, summary)

    def history(self):
        return read_history(self.file(HISTORY_FILE))


def differing_hyperparameters(stored, given, ignore=()):
    """{name: (stored value, given value)} for the hyperparameters that differ."""
    return {
        name: (stored.get(name), value)
        for name, value in given.items()
        if name not in ignore and _jsonable(value) != stored.get(name)
    }


def _jsonable(value):
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _versions():
    import keras
    import tensorflow as tf

    return {"python": platform.python_version(), "tensorflow": tf.__version__,
            "keras": keras.__version__, "numpy": np.__version__}


def machine_description():
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(), "gpus": [gpu.name for gpu in gpus]}


def read_history(path):
    if not os.path.exists(path):
        return []
    with open(path, newline="") as file:
        return [{key: float(value) for key, value in row.items()} for row in csv.DictReader(file)]


def _truncate_history(path, completed_epochs):
    """Drops rows of epochs after the last checkpoint (a kill between the two writes)."""
    rows = [row for row in read_history(path) if row["epoch"] <= completed_epochs]
    if os.path.exists(path):
        _write_history(path, rows)


def _write_history(path, rows):
    if not rows:
        if os.path.exists(path):
            os.remove(path)
        return
    temporary = path + ".tmp"
    with open(temporary, "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        for row in rows:
            writer.writerow({key: _format(value) for key, value in row.items()})
    os.replace(temporary, path)


def _format(value):
    return int(value) if float(value).is_integer() and abs(value) < 1e15 else f"{value:.6g}"


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------


def run_callback_class():
    import keras

    class RunCallback(keras.callbacks.Callback):
        """history.csv, NaN guard and checkpoint every epoch, plus a per-epoch figure."""

        def __init__(self, run, images_per_epoch, epoch_figure=None):
            super().__init__()
            self.run = run
            self.images_per_epoch = images_per_epoch
            self.epoch_figure = epoch_figure

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch
            self.epoch_started = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            self._check_finite(logs, f"batch {batch + 1} of epoch {self.epoch + 1}")

        def on_epoch_end(self, epoch, logs=None):
            seconds = time.perf_counter() - self.epoch_started
            self._check_finite(logs, f"the end of epoch {epoch + 1}")
            row = {"epoch": epoch + 1}
            row.update({name: float(value) for name, value in (logs or {}).items()})
            row["seconds"] = seconds
            row["images_per_second"] = self.images_per_epoch / seconds
            rows = self.run.history() + [row]
            # history first, checkpoint second: a kill in between is undone by resume's
            # truncation of history to the checkpoint's epoch.
            _write_history(self.run.file(HISTORY_FILE), rows)
            self.model.save_weights(self.run.file(CHECKPOINT_WEIGHTS + ".tmp.weights.h5"))
            os.replace(self.run.file(CHECKPOINT_WEIGHTS + ".tmp.weights.h5"),
                       self.run.file(CHECKPOINT_WEIGHTS))
            self.run.write_json(CHECKPOINT_STATE, {"epoch": epoch + 1})
            self.run.completed_epochs = epoch + 1
            if self.epoch_figure is not None:
                self.epoch_figure(epoch + 1)

        def _check_finite(self, logs, where):
            for name, value in (logs or {}).items():
                if not np.isfinite(float(value)):
                    self.model.stop_training = True
                    raise TrainingDiverged(
                        f"Training stopped: {name} became {float(value)} at {where}. The last "
                        f"good checkpoint (epoch {self.epoch}) is kept in {self.run.path}; "
                        f"try a lower learning rate."
                    )

    return RunCallback


def fit(model, dataset, run, epochs, epoch_figure=None, validation_data=None):
    """Trains `model` for the run's remaining epochs with every callback a run needs.

    `dataset` comes from `data.make_dataset` (whole batches), so images per epoch are known.
    """
    import keras

    images_per_epoch = int(dataset.cardinality()) * dataset.element_spec[0].shape[0]
    initial_epoch = run.restore_checkpoint(model)
    callback = run_callback_class()(run, images_per_epoch, epoch_figure)
    model.fit(
        dataset,
        epochs=epochs,
        initial_epoch=initial_epoch,
        validation_data=validation_data,
        shuffle=False,  # the tf.data pipeline shuffles, with the run's seed
        callbacks=[callback,
                   keras.callbacks.TensorBoard(log_dir=run.file("logs"))],
        verbose=2 if os.environ.get("CI") else 1,
    )
    return run.history()


def distribution_strategy(name):
    """The tf.distribute strategy for `--strategy`: `default` (one device) or `mirrored`.

    `mirrored` replicates the model on every visible GPU. Without GPUs it falls back to the
    CPU, split into HANDWRITING_LOGICAL_CPUS logical devices when that variable is set (how
    the tests train on two replicas without a GPU).
    """
    import tensorflow as tf

    if name == "default":
        return tf.distribute.get_strategy()
    if name != "mirrored":
        raise ValueError(f"Unknown --strategy {name!r}: expected default or mirrored.")
    logical_cpus = int(os.environ.get("HANDWRITING_LOGICAL_CPUS", "0"))
    if not tf.config.list_physical_devices("GPU") and logical_cpus > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * logical_cpus)
        devices = [device.name for device in tf.config.list_logical_devices("CPU")]
        strategy = tf.distribute.MirroredStrategy(devices)
    else:
        strategy = tf.distribute.MirroredStrategy()
    print(f"MirroredStrategy over {strategy.num_replicas_in_sync} replica(s).")
    return strategy


def precision_policy(precision, gpus=None):
    """The Keras dtype policy of a script's PRECISION.

    auto: mixed_bfloat16 where a GPU is present (bfloat16 needs no loss scaling), float32 on
    CPUs. mixed_bfloat16: weights and losses in float32, layers compute in bfloat16; it also
    pays on CPUs with AVX512_BF16 (benchmarks/RESULTS.md), but is not the CPU default, and
    the VAE scripts keep float32 (bfloat16 cost the 2-D VAE likelihood; README).
    """
    check_hyperparameters({"PRECISION": precision})
    if precision != "auto":
        return precision
    if gpus is None:
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
    return "mixed_bfloat16" if gpus else "float32"


@contextlib.contextmanager
def model_scope(hyperparameters, strategy=None):
    """Where gan.build and vae.build make a model: in `strategy`'s scope (default: one
    device) and in the Keras dtype policy of its PRECISION (see precision_policy)."""
    import keras
    import tensorflow as tf

    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(
        precision_policy(hyperparameters.get("PRECISION", "float32")))
    try:
        with (strategy or tf.distribute.get_strategy()).scope():
            yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def limit_images(images, labels, limit, batch_size):
    """The first `limit` images (0 = all), checked against the batch size."""
    if limit:
        images, labels = images[:limit], labels[:limit]
    if len(images) < batch_size:
        raise ValueError(
            f"--batch-size {batch_size} is larger than the {len(images)} training images; "
            f"lower --batch-size or raise --limit."
        )
    return images, labels


def finish(run, model):
    """Saves the networks, the training GIF and loss curves, and marks the run finished."""
    from common import models, plots

    models.save_networks(model, run.model_kind, run.path)
    plots.save_gif(plots.epoch_frame_paths(run.path), run.file("training.gif"))
    history = run.history()
    plots.save_loss_curves(history, run.file("loss_curves.png"), run.title("losses per epoch"))
    run.mark_finished({
        "epochs": len(history),
        "training_seconds": sum(row["seconds"] for row in history),
        "parameters": int(sum(network.count_params() for network in
                              (getattr(model, name) for name in models.NETWORKS[run.model_kind]))),
        "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
    })
    print(f"Finished: {len(history)} epochs, results in {run.path}")
