"""The 2x2 report: reads every run folder under outputs/ and writes outputs/REPORT.md.

    python compare.py                      # after the runs (see README, "Reproduce the study")
    python compare.py --outputs outputs    # another folder of runs

Writes REPORT.md (the study's Table 1 with our measurements, the study's conclusions checked
against them) and its figures: report_samples.png, report_latent.png, report_losses.png.
Reads only files the runs wrote (config.json, history.csv, finished.json, eval.json, PNGs).
"""

import argparse
import csv
import json
import os
import statistics

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

# The study's grid, and the retrained variants: (label, model, dataset, retrained?)
QUADRANTS = [
    ("GAN, MNIST", "gan", "mnist", False),
    ("VAE, MNIST", "vae", "mnist", False),
    ("GAN, EMNIST from scratch", "gan", "emnist", False),
    ("VAE, EMNIST from scratch", "vae", "emnist", False),
    ("GAN, EMNIST retrained from MNIST", "gan", "emnist", True),
    ("VAE, EMNIST retrained from MNIST", "vae", "emnist", True),
]
SETS = ("digits", "digits_upper")


def load_runs(outputs):
    """Finished run folders under `outputs`, keyed by quadrant label (newest wins)."""
    runs, notes = {}, []
    for name in sorted(os.listdir(outputs)):
        folder = os.path.join(outputs, name)
        config_path = os.path.join(folder, "config.json")
        if not os.path.isfile(config_path):
            continue
        with open(config_path) as file:
            config = json.load(file)
        if not os.path.exists(os.path.join(folder, "finished.json")):
            notes.append(f"`{name}`: not finished, left out")
            continue
        if not os.path.exists(os.path.join(folder, "eval.json")):
            notes.append(f"`{name}`: not evaluated (run the script with --evaluate-only), left out")
            continue
        retrained = bool(config["hyperparameters"].get("INIT_FROM"))
        key = next(label for label, kind, dataset, was_retrained in QUADRANTS
                   if kind == config["model"] and dataset == config["dataset"]
                   and was_retrained == retrained)
        run = {"name": name, "folder": folder, "config": config}
        for part in ("finished", "eval"):
            with open(os.path.join(folder, f"{part}.json")) as file:
                run[part] = json.load(file)
        with open(os.path.join(folder, "history.csv"), newline="") as file:
            run["history"] = [{k: float(v) for k, v in row.items()} for row in csv.DictReader(file)]
        if key in runs:
            notes.append(f"`{runs[key]['name']}` and `{name}` are both {key}: using `{name}`")
        runs[key] = run
    return runs, notes


def seconds_per_epoch(run):
    return statistics.median(row["seconds"] for row in run["history"])


def images_per_second(run):
    return statistics.median(row["images_per_second"] for row in run["history"])


def score(run, set_name, metric):
    return run["eval"]["validation_sets"][set_name].get(metric)


def table(runs):
    header = ["model", "data", "epochs", "s/epoch", "train img/s", "parameters"]
    for set_name in SETS:
        header += [f"{set_name} FID", f"{set_name} KID (±se)", f"{set_name} precision",
                   f"{set_name} recall", f"{set_name} letters", f"{set_name} coverage"]
    header += ["-ELBO digits", "-ELBO digits_upper"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for label, kind, dataset, _ in QUADRANTS:
        if label not in runs:
            continue
        run = runs[label]
        cells = [label, run["config"]["data_source"], f"{len(run['history'])}",
                 f"{seconds_per_epoch(run):.1f}", f"{images_per_second(run):.0f}",
                 f"{run['finished']['parameters']:,}"]
        for set_name in SETS:
            cells += [f"{score(run, set_name, 'fid'):.1f}",
                      f"{score(run, set_name, 'kid'):.3f} ± {score(run, set_name, 'kid_standard_error'):.3f}",
                      f"{score(run, set_name, 'precision'):.3f}",
                      f"{score(run, set_name, 'recall'):.3f}",
                      f"{score(run, set_name, 'letters_share'):.3f}",
                      f"{score(run, set_name, 'coverage'):.2f}"]
        for set_name in SETS:
            elbo = score(run, set_name, "negative_elbo")
            cells.append(f"{elbo:.1f}" if elbo is not None else "-")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def summary_table(runs):
    """The headline numbers, narrow enough for the README."""
    lines = ["| model | epochs | s/epoch | FID digits | FID digits+upper | precision / recall "
             "(digits) | letters share (digits+upper) | coverage (digits / digits+upper) "
             "| -ELBO digits |",
             "|---|---|---|---|---|---|---|---|---|"]
    for label, *_ in QUADRANTS:
        if label not in runs:
            continue
        run = runs[label]
        elbo = score(run, "digits", "negative_elbo")
        lines.append(
            f"| {label} | {len(run['history'])} | {seconds_per_epoch(run):.0f} | "
            f"{score(run, 'digits', 'fid'):.1f} | {score(run, 'digits_upper', 'fid'):.1f} | "
            f"{score(run, 'digits', 'precision'):.2f} / {score(run, 'digits', 'recall'):.2f} | "
            f"{score(run, 'digits_upper', 'letters_share'):.2f} | "
            f"{score(run, 'digits', 'coverage'):.2f} / {score(run, 'digits_upper', 'coverage'):.2f}"
            f" | {f'{elbo:.1f}' if elbo is not None else '-'} |")
    return "\n".join(lines)


def verdict(supported):
    return "**supported**" if supported else "**not supported**"


def conclusions(runs):
    """The study's five conclusions, each checked against our numbers where the runs exist."""
    get = runs.get
    out = []

    def missing(*labels):
        return [label for label in labels if label not in runs]

    # (1) speed
    pairs = [("GAN, MNIST", "VAE, MNIST"), ("GAN, EMNIST from scratch", "VAE, EMNIST from scratch")]
    if not missing(*sum(pairs, ())):
        facts = [f"{vae_label}: {seconds_per_epoch(get(vae_label)):.1f} s/epoch vs "
                 f"{gan_label}: {seconds_per_epoch(get(gan_label)):.1f} s/epoch"
                 for gan_label, vae_label in pairs]
        supported = all(seconds_per_epoch(get(v)) < seconds_per_epoch(get(g)) for g, v in pairs)
        out.append(f"1. *The VAE trains faster per epoch than the GAN on both datasets*: "
                   f"{verdict(supported)}. {'; '.join(facts)} (median epoch, this machine; the "
                   f"VAE's epoch includes its validation pass).")
    else:
        out.append(f"1. Speed: not checked, missing {missing(*sum(pairs, ()))}.")
    # (2) MNIST clarity
    if not missing("GAN, MNIST", "VAE, MNIST"):
        gan_fid, vae_fid = (score(get(label), "digits", "fid") for label in ("GAN, MNIST",
                                                                               "VAE, MNIST"))
        gan_precision, vae_precision = (score(get(label), "digits", "precision")
                                        for label in ("GAN, MNIST", "VAE, MNIST"))
        out.append(f"2. *The VAE's MNIST output is clearer than the GAN's*: "
                   f"{verdict(vae_fid < gan_fid)}. On the digits set, FID VAE {vae_fid:.1f} vs "
                   f"GAN {gan_fid:.1f} (lower is closer to real digits); precision VAE "
                   f"{vae_precision:.3f} vs GAN {gan_precision:.3f}.")
    else:
        out.append(f"2. MNIST clarity: not checked, missing {missing('GAN, MNIST', 'VAE, MNIST')}.")
    # (3) EMNIST, many classes
    labels = ("GAN, EMNIST from scratch", "VAE, EMNIST from scratch")
    if not missing(*labels):
        gan_run, vae_run = (get(label) for label in labels)
        gan_fid, vae_fid = (score(run, "digits_upper", "fid") for run in (gan_run, vae_run))
        gan_coverage, vae_coverage = (score(run, "digits_upper", "coverage")
                                      for run in (gan_run, vae_run))
        out.append(f"3. *The GAN does better than the VAE on EMNIST's many classes*: "
                   f"{verdict(gan_fid < vae_fid)}. On digits+uppercase, FID GAN {gan_fid:.1f} vs "
                   f"VAE {vae_fid:.1f}; class coverage GAN {gan_coverage:.2f} vs VAE "
                   f"{vae_coverage:.2f}.")
    else:
        out.append(f"3. EMNIST quality: not checked, missing {missing(*labels)}.")
    # (4) crowding in the VAE latent space
    labels = ("VAE, MNIST", "VAE, EMNIST from scratch")
    if not missing(*labels):
        mnist_run, emnist_run = (get(label) for label in labels)
        mnist_knn = score(mnist_run, "digits", "latent_knn_accuracy")
        emnist_knn = score(emnist_run, "digits_upper", "latent_knn_accuracy")
        central = score(emnist_run, "digits_upper", "latent_centres_within_1")
        mnist_central = score(mnist_run, "digits", "latent_centres_within_1")
        out.append(f"4. *The EMNIST VAE crowds most characters into a central cluster and its "
                   f"samples are less discernible*: {verdict(central > 0.5 and emnist_knn < mnist_knn)}. "
                   f"{central:.0%} of the 36 digit+uppercase class centres lie within 1 of the "
                   f"latent origin (MNIST VAE: {mnist_central:.0%} of 10 digits); 5-NN class "
                   f"accuracy in the latent space {emnist_knn:.2f} (MNIST VAE on digits: "
                   f"{mnist_knn:.2f}); sample precision on digits+uppercase "
                   f"{score(emnist_run, 'digits_upper', 'precision'):.3f}.")
    else:
        out.append(f"4. Latent crowding: not checked, missing {missing(*labels)}.")
    # (5) retraining keeps digits
    lines = []
    for kind in ("GAN", "VAE"):
        labels = (f"{kind}, MNIST", f"{kind}, EMNIST retrained from MNIST")
        if missing(*labels):
            lines.append(f"{kind}: not checked, missing {missing(*labels)}")
            continue
        before, after = (get(label) for label in labels)
        before_fid, after_fid = (score(run, "digits", "in_set_fid") for run in (before, after))
        after_count = score(after, "digits", "in_set_samples")
        letters = score(after, "digits_upper", "letters_share")
        if before_fid is None or after_fid is None:
            lines.append(f"{kind}: **not measurable**: fewer than 200 samples called digits "
                         f"(MNIST model: {score(before, 'digits', 'in_set_samples')}, "
                         f"retrained: {after_count})")
            continue
        keeps = after_fid <= 1.2 * before_fid and letters > 0.2
        lines.append(f"{kind}: {verdict(keeps)}: FID of the samples called digits "
                     f"{before_fid:.1f} (MNIST model) -> {after_fid:.1f} (retrained, "
                     f"{after_count} of 10,000 samples called digits); the retrained model's "
                     f"samples are {letters:.0%} letters; whole-set digits FID "
                     f"{score(before, 'digits', 'fid'):.1f} -> {score(after, 'digits', 'fid'):.1f}")
    out.append("5. *Retraining on EMNIST keeps digit quality while adding letters* (counted as "
               "kept when the FID of the retrained model's digit samples against MNIST test is "
               "at most 1.2x the MNIST model's, and over 20% of its samples are letters; an "
               "unconditional EMNIST model spends most samples on letters, so its whole-set "
               "digits FID measures the class mix more than digit shape): "
               + "; ".join(lines) + ".")
    return "\n".join(out)


def side_by_side(runs, labels, file_name, path, title, columns=3):
    """The runs' `file_name` figures in a grid, `columns` to a row, in the order of `labels`."""
    present = [label for label in labels if label in runs]
    if not present:
        return None
    rows = (len(present) + columns - 1) // columns
    figure, axes = plt.subplots(rows, columns, figsize=(3.4 * columns, 3.7 * rows),
                                squeeze=False)
    for axis in axes.flat:
        axis.axis("off")
    for axis, label in zip(axes.flat, present):
        axis.imshow(plt.imread(os.path.join(runs[label]["folder"], file_name)))
        axis.set_title(f"{label}\n({runs[label]['config']['data_source']})", fontsize=6)
    figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return os.path.basename(path)


def loss_figure(runs, path):
    present = [label for label, *_ in QUADRANTS if label in runs]
    if not present:
        return None
    columns = min(3, len(present))
    rows = (len(present) + columns - 1) // columns
    figure, axes = plt.subplots(rows, columns, figsize=(4 * columns, 2.8 * rows), squeeze=False)
    for axis, label in zip(axes.flat, present):
        history = runs[label]["history"]
        epochs = [row["epoch"] for row in history]
        for name in history[0]:
            if name.endswith("loss"):
                axis.plot(epochs, [row[name] for row in history], label=name)
        axis.set_title(label, fontsize=8)
        axis.set_yscale("log" if runs[label]["config"]["model"] == "vae" else "linear")
        axis.legend(fontsize=5)
        axis.set_xlabel("epoch", fontsize=7)
    for axis in list(axes.flat)[len(present):]:
        axis.axis("off")
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)
    return os.path.basename(path)


def write_report(outputs, note=""):
    runs, notes = load_runs(outputs)
    missing = [label for label, *_ in QUADRANTS if label not in runs]
    by_model = sorted(QUADRANTS, key=lambda quadrant: quadrant[1] == "vae")  # GAN row, VAE row
    samples = side_by_side(runs, [label for label, *_ in by_model], "samples_final.png",
                           os.path.join(outputs, "report_samples.png"),
                           "Final samples: GAN (top), VAE (bottom)")
    latents = side_by_side(runs, [label for label, kind, *_ in QUADRANTS if kind == "vae"],
                           "latent_scatter.png", os.path.join(outputs, "report_latent.png"),
                           "VAE latent space (validation set)")
    losses = loss_figure(runs, os.path.join(outputs, "report_losses.png"))
    machine = next(iter(runs.values()))["config"]["machine"] if runs else {}
    evaluator = next(iter(runs.values()))["eval"]["evaluator"] if runs else {}
    parts = [
        "# GAN vs VAE on handwriting: the 2x2 report",
        "",
        "Generated by `python compare.py` from the run folders in this directory; every number "
        "below comes from those runs' `history.csv`, `finished.json` and `eval.json`.",
        "",
        f"- Data: {', '.join(sorted({run['config']['data_source'] for run in runs.values()}))}.",
        f"- Machine: {machine.get('processor', '?')}, {machine.get('cpu_count', '?')} CPU "
        f"cores, GPUs: {machine.get('gpus') or 'none'}.",
        f"- Evaluator: CNN trained on {evaluator.get('train_images', '?')} MNIST+EMNIST train "
        f"images ({evaluator.get('data_source', '?')}); test accuracy MNIST "
        f"{evaluator.get('test_accuracy', {}).get('mnist', 0):.4f}, EMNIST "
        f"{evaluator.get('test_accuracy', {}).get('emnist', 0):.4f}. FID and KID are in its "
        f"128-d feature space, so they compare runs here but not with published FIDs.",
        "- Validation sets: `digits` = MNIST test (10,000); `digits_upper` = EMNIST test, "
        "labels 0-35. Samples per set = the set's size (10,000 max).",
        *([f"- Note: {note}"] if note else []),
        "",
        "## Summary",
        "",
        summary_table(runs) if runs else "No finished, evaluated runs yet.",
        "",
        "## Table 1, measured (all metrics)",
        "",
        table(runs) if runs else "No finished, evaluated runs yet.",
        "",
        "Columns: s/epoch and img/s are medians over epochs; letters = share of samples the "
        "evaluator calls a letter; coverage = share of the set's classes receiving at least half "
        "a uniform share of samples; -ELBO = negative ELBO in nats per image (VAE).",
        "",
        "Runs: " + ", ".join(f"{label} = `{run['name']}` (`{run['config']['command']}`)"
                             for label, run in runs.items()) + ".",
        "",
        "## The study's conclusions, checked",
        "",
        conclusions(runs),
        "",
    ]
    if samples:
        parts += ["## Final samples", "", f"![final samples]({samples})", ""]
    if latents:
        parts += ["## VAE latent spaces", "", f"![latent scatters]({latents})", ""]
    if losses:
        parts += ["## Loss curves", "", f"![loss curves]({losses})", ""]
    parts += ["## Missing runs", ""]
    parts += [f"- {label}: no finished, evaluated run" for label in missing] or ["- none"]
    parts += [f"- {note}" for note in notes]
    report_path = os.path.join(outputs, "REPORT.md")
    with open(report_path, "w") as file:
        file.write("\n".join(parts) + "\n")
    print(f"Wrote {report_path} ({len(runs)} runs, {len(missing)} missing)")
    return report_path


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outputs", default="outputs", help="folder of run folders")
    parser.add_argument("--note", default="", help="a line for the report's header, e.g. how "
                                                   "the runs shared the machine")
    arguments = parser.parse_args()
    if not os.path.isdir(arguments.outputs):
        raise SystemExit(f"error: {arguments.outputs} is not a folder")
    write_report(arguments.outputs, arguments.note)
