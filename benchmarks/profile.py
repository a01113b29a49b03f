"""Where a whole training step's time goes: TensorFlow's profiler, op time by kind.

    python benchmarks/profile.py --data-dir ../shared/data     # writes benchmarks/PROFILE.md

For the default GAN and VAE (MNIST), in float32 and in mixed_bfloat16: a warm-up window, then
a profiled window of training steps (benchmark.py's in-memory batches), and TensorFlow's
"framework_op_stats" of it: each op's self time, summed by kind. Ops run concurrently (two
cores, inter-op parallelism), so op time per step exceeds the wall time per step; the shares
say what the cores spend their time on. Run by hand, not in CI.
"""

import argparse
import collections
import glob
import json
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

import benchmark  # noqa: E402
import common.data as data  # noqa: E402

# Op kinds, first match wins (TensorFlow op types as the profiler names them, oneDNN ones too).
KINDS = [
    ("convolution", ("Conv2D", "Depthwise")),
    ("dense (matmul)", ("MatMul",)),
    ("batch normalisation", ("BatchNorm",)),
    ("activations and bias", ("Relu", "LeakyRelu", "BiasAdd", "Tanh", "Sigmoid")),
    ("bfloat16 casts", ("Cast",)),
]
OTHER = "other (loss, optimizer, input)"


def kind_of(op_type):
    for kind, markers in KINDS:
        if any(marker in op_type for marker in markers):
            return kind
    return OTHER


def op_time_by_kind(model, dataset, batch_size, steps):
    """(wall ms per step, {kind: op ms per step}) of `steps` profiled training steps."""
    import tensorflow as tf
    from tensorflow.python.profiler.internal import _pywrap_profiler_plugin as profiler_plugin

    benchmark.time_window(model, dataset, batch_size, steps * batch_size)  # warm-up, tracing
    with tempfile.TemporaryDirectory(prefix="profile_") as folder:
        tf.profiler.experimental.start(folder)
        started = time.perf_counter()
        model.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0)
        wall = time.perf_counter() - started
        tf.profiler.experimental.stop()
        trace, = glob.glob(os.path.join(folder, "**", "*.xplane.pb"), recursive=True)
        raw, _ = profiler_plugin.xspace_to_tools_data([trace], "framework_op_stats", {})
    table = json.loads(raw)[0]
    columns = [column["id"] for column in table["cols"]]
    totals = collections.Counter()
    for row in table["rows"]:
        op = dict(zip(columns, [cell.get("v") for cell in row["c"]]))
        if op["type"] != "IDLE":
            totals[kind_of(op["type"])] += op["total_self_time"] / 1000 / steps
    return 1000 * wall / steps, totals


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--output", default=os.path.join(ROOT, "benchmarks", "PROFILE.md"))
    arguments = parser.parse_args()
    images, labels = data.load("mnist", "train", arguments.data_dir)
    lines = ["# Where a training step's time goes", "",
             f"Command: `python benchmarks/profile.py --data-dir ../shared/data` on "
             f"{os.cpu_count()} CPU cores; {time.strftime('%Y-%m-%d')}. {arguments.steps} "
             "profiled steps after a warm-up; op time is each op's self time summed by kind, "
             "per step. Ops overlap on the cores, so op time exceeds wall time; the share is "
             "of all op time. The profiler itself slows the steps a little, and the wall time "
             "is one window on a machine with slow spells: compare speeds in RESULTS.md, "
             "shares here.", "",
             "| model | precision | wall ms/step | op ms/step | "
             + " | ".join(name for name, _ in KINDS) + " | other |",
             "|---|---|---|---|" + "---|" * (len(KINDS) + 1)]
    names = [name for name, _ in KINDS] + [OTHER]
    for model_kind in ("gan", "vae"):
        constants = benchmark.script_constants(f"{model_kind}_mnist")
        for precision in ("float32", "mixed_bfloat16"):
            model, batch_size = benchmark.build_variant(model_kind, constants, 10,
                                                        {"PRECISION": precision})
            value_range = (-1, 1) if model_kind == "gan" else (0, 1)
            dataset = benchmark.in_memory_dataset(images[:12800], labels[:12800], batch_size,
                                                  value_range)
            wall, totals = op_time_by_kind(model, dataset, batch_size, arguments.steps)
            busy = sum(totals.values())
            shares = [f"{totals[name]:.1f} ({100 * totals[name] / busy:.0f}%)" for name in names]
            lines.append(f"| {model_kind} (batch {batch_size}) | {precision} | {wall:.1f} | "
                         f"{busy:.1f} | " + " | ".join(shares) + " |")
            print(lines[-1], flush=True)
    benchmark.write(arguments.output, lines)


if __name__ == "__main__":
    main()
