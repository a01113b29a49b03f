"""Figures: sample grids, training GIF, loss curves, latent scatter and grid, handwriting.

Every function takes images as float arrays in [0, 1], shape (N, 28, 28) or (N, 28, 28, 1),
already upright, and a title that names the data source (so stand-in figures say so).
"""

import math
import os

import matplotlib

matplotlib.use("Agg")  # figures are files; no display is needed or available on servers
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

DPI = 100


def _as_2d(images):
    images = np.asarray(images, dtype=np.float32)
    return images[..., 0] if images.ndim == 4 else images


def tile(images, columns):
    """(N, 28, 28) -> one (rows*28, columns*28) array with a 2-pixel grey gutter."""
    images = _as_2d(images)
    count, height, width = images.shape
    rows = math.ceil(count / columns)
    gutter = 2
    canvas = np.full((rows * (height + gutter) - gutter, columns * (width + gutter) - gutter), 0.5,
                     dtype=np.float32)
    for index, image in enumerate(images):
        row, column = divmod(index, columns)
        top, left = row * (height + gutter), column * (width + gutter)
        canvas[top : top + height, left : left + width] = image
    return canvas


def save_image_grid(images, path, title, columns=None):
    images = _as_2d(images)
    columns = columns or math.ceil(math.sqrt(len(images)))
    canvas = tile(images, columns)
    inches_per_pixel = 0.3 / 28  # 0.3 inch per character keeps a 10x10 grid near 100 KB
    width = max(3.0, canvas.shape[1] * inches_per_pixel)
    title_lines = math.ceil(len(title) / (width * 15))  # about 15 characters per inch at 7 pt
    title_inches = 0.12 + 0.14 * title_lines
    height = canvas.shape[0] * inches_per_pixel + title_inches
    figure = plt.figure(figsize=(width, height))
    axes = figure.add_axes([0, 0, 1, 1 - title_inches / height])
    axes.imshow(canvas, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    axes.axis("off")
    figure.text(0.5, 1 - 0.05 / height, title, fontsize=7, ha="center", va="top", wrap=True)
    figure.savefig(path, dpi=DPI * 1.5)
    plt.close(figure)


def save_gif(frame_paths, path, milliseconds_per_frame=400):
    """An animated GIF of the per-epoch sample grids (PIL comes with matplotlib)."""
    from PIL import Image

    frames = [Image.open(frame).convert("P") for frame in frame_paths]
    if frames:
        frames[0].save(path, save_all=True, append_images=frames[1:],
                       duration=milliseconds_per_frame, loop=0)


def save_loss_curves(history, path, title):
    """One line per loss in history.csv rows (epoch, losses..., seconds, images_per_second)."""
    skip = {"epoch", "seconds", "images_per_second"}
    names = [name for name in (history[0] if history else {}) if name not in skip]
    figure, axes = plt.subplots(figsize=(6, 3.5))
    epochs = [row["epoch"] for row in history]
    for name in names:
        axes.plot(epochs, [row[name] for row in history], marker="o", markersize=3, label=name)
    axes.set_xlabel("epoch")
    axes.set_ylabel("loss")
    axes.set_title(title, fontsize=9)
    axes.grid(alpha=0.3)
    if names:
        axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=DPI)
    plt.close(figure)


def save_latent_scatter(points, labels, class_names, path, title, axis_names=("z[0]", "z[1]")):
    """2-D latent codes coloured by class, each class's character written at its centre.

    With 47 classes a colour legend alone is unreadable; the character at each class's median
    says which cluster is which, and the legend still lists every character.
    """
    present = sorted(set(int(label) for label in labels))
    colours = plt.get_cmap("tab10" if len(present) <= 10 else "gist_ncar")
    figure, axes = plt.subplots(figsize=(8, 6.5))
    for position, label in enumerate(present):
        mask = labels == label
        colour = colours(position % 10 if len(present) <= 10 else position / len(present))
        axes.scatter(points[mask, 0], points[mask, 1], s=3, alpha=0.5, color=colour,
                     label=class_names[label])
        centre = np.median(points[mask], axis=0)
        axes.text(centre[0], centre[1], class_names[label], fontsize=11, weight="bold",
                  ha="center", va="center", color="black",
                  bbox={"boxstyle": "round,pad=0.1", "facecolor": colour, "alpha": 0.7})
    axes.set_xlabel(axis_names[0])
    axes.set_ylabel(axis_names[1])
    axes.set_title(title, fontsize=9)
    axes.legend(markerscale=4, fontsize=7, ncol=1 if len(present) <= 16 else 3,
                loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    figure.tight_layout()
    figure.savefig(path, dpi=DPI)
    plt.close(figure)


def save_latent_grid(images, grid_values, path, title, axis_names=("z[0]", "z[1]")):
    """Decoded images over a regular grid of two latent axes (rows: second axis, top high)."""
    size = len(grid_values)
    canvas = tile(images, size)
    figure, axes = plt.subplots(figsize=(8, 8))
    axes.imshow(canvas, cmap="gray", vmin=0, vmax=1)
    step = canvas.shape[0] / size
    ticks = np.arange(size) * step + step / 2
    shown = range(0, size, max(1, size // 5))
    axes.set_xticks(ticks[list(shown)], [f"{grid_values[i]:.1f}" for i in shown])
    axes.set_yticks(ticks[list(shown)], [f"{grid_values[::-1][i]:.1f}" for i in shown])
    axes.set_xlabel(axis_names[0])
    axes.set_ylabel(axis_names[1])
    axes.set_title(title, fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=DPI)
    plt.close(figure)


def save_handwriting(images, path, title):
    """One line of generated characters; `None` entries are spaces."""
    blank = np.zeros((28, 28), dtype=np.float32)
    row = np.concatenate([blank if image is None else _as_2d(image[None])[0] for image in images],
                         axis=1)
    figure, axes = plt.subplots(figsize=(max(2.0, row.shape[1] / 28 * 0.6), 1.2))
    axes.imshow(row, cmap="gray", vmin=0, vmax=1)
    axes.axis("off")
    axes.set_title(title, fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=DPI * 1.5)
    plt.close(figure)


def epoch_frame_paths(run_path, prefix="samples_epoch_"):
    return sorted(
        os.path.join(run_path, name)
        for name in os.listdir(run_path)
        if name.startswith(prefix) and name.endswith(".png")
    )
