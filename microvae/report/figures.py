"""The report's figures (matplotlib, Agg backend, PNG), each a function of plain arrays.

Images are shown at full resolution (nearest neighbour, an integer zoom, no resampling) with one
contrast for all panels of a comparison (the 0.1 and 99.9 percentiles of the reference), so
that a blurred tubule looks blurred and not merely dimmer.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display needed; must come before pyplot
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy import ndimage  # noqa: E402

from ..io import atomic_path  # noqa: E402

__all__ = [
    "detail_crop",
    "save_crops",
    "save_frc",
    "save_kl",
    "save_embedding_map",
    "save_image_grid",
    "save_density_paths",
]

DPI = 100


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=DPI, format="png", bbox_inches="tight")
    plt.close(fig)
    return path


def _limits(reference: np.ndarray) -> tuple[float, float]:
    lo, hi = np.percentile(reference, (0.1, 99.9))
    return float(lo), float(hi if hi > lo else lo + 1)


def detail_crop(image: np.ndarray, size: int) -> tuple[slice, slice]:
    """The ``size`` x ``size`` window of a 2D image with the most fine detail: the highest
    mean magnitude of its Laplacian of Gaussian (sigma 1 px), on a grid of stride size/4."""
    h, w = image.shape
    size = min(size, h, w)
    detail = np.abs(ndimage.gaussian_laplace(image.astype(np.float32), 1.0))
    local = ndimage.uniform_filter(detail, size, mode="constant")
    half = size // 2
    stride = max(size // 4, 1)
    ys = np.arange(half, h - size + half + 1, stride)
    xs = np.arange(half, w - size + half + 1, stride)
    sub = local[np.ix_(ys, xs)]
    iy, ix = np.unravel_index(int(np.argmax(sub)), sub.shape)
    y0, x0 = int(ys[iy]) - half, int(xs[ix]) - half
    return slice(y0, y0 + size), slice(x0, x0 + size)


def save_crops(
    path: Path,
    rows: list[tuple[str, dict[str, np.ndarray]]],
    *,
    size: int = 96,
    zoom: int = 3,
) -> Path:
    """One row per image: named panels (e.g. original, reconstruction, ground truth) cropped
    at the original's region of most detail, and |reconstruction - original| last."""
    n_cols = max(len(p) for _, p in rows) + 1
    fig, axes = plt.subplots(
        len(rows),
        n_cols,
        figsize=(n_cols * size * zoom / DPI, len(rows) * (size * zoom / DPI + 0.35)),
        squeeze=False,
    )
    for r, (title, panels) in enumerate(rows):
        names = list(panels)
        ref = panels[names[0]]
        ys, xs = detail_crop(ref, size)
        lo, hi = _limits(ref[ys, xs])
        for c, name in enumerate(names):
            ax = axes[r, c]
            ax.imshow(panels[name][ys, xs], cmap="gray", vmin=lo, vmax=hi, interpolation="nearest")
            ax.set_title(f"{title}: {name}" if c == 0 else name, fontsize=8)
        diff = np.abs(panels["reconstruction"][ys, xs].astype(np.float32) - ref[ys, xs])
        ax = axes[r, len(names)]
        # a quarter of the display range: differences are small next to the signal
        ax.imshow(diff, cmap="magma", vmin=0, vmax=(hi - lo) / 4, interpolation="nearest")
        ax.set_title(
            f"|reconstruction - {names[0]}|, 0 to {(hi - lo) / 4:.4g}\n(rows {ys.start}-"
            f"{ys.stop}, cols {xs.start}-{xs.stop})",
            fontsize=7,
        )
        for ax in axes[r, len(names) + 1 :]:
            ax.set_visible(False)
        for ax in axes[r]:
            ax.set_xticks([])
            ax.set_yticks([])
    return _save(fig, path)


def save_frc(
    path: Path,
    curves: list[tuple[str, np.ndarray, np.ndarray]],
    *,
    threshold: float,
    pixel_size: float | None = None,
    unit: str = "um",
) -> Path:
    """FRC curves (label, frequencies in cycles/px, curve) and the threshold line."""
    fig, ax = plt.subplots(figsize=(6, 3.6))
    scale = 1 / pixel_size if pixel_size else 1.0
    for label, freqs, curve in curves:
        ax.plot(freqs[1:] * scale, curve[1:], lw=1.2, label=label)
    ax.axhline(threshold, color="k", ls="--", lw=0.8, label=f"threshold {threshold:.3f}")
    ax.set_xlabel(f"spatial frequency (cycles/{unit})" if pixel_size else "cycles/pixel")
    ax.set_ylabel("Fourier ring correlation")
    ax.set_ylim(-0.1, 1.05)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(alpha=0.3)
    return _save(fig, path)


def save_kl(
    path: Path, kl_per_level: list[float], kl_per_channel: list[list[float]], *, threshold: float
) -> Path:
    """KL per level (nats per tile) and per channel (nats per latent element, log scale) with
    the active-unit threshold."""
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.2), gridspec_kw={"width_ratios": [1, 2.5]})
    levels = np.arange(len(kl_per_level))
    a.bar(levels, kl_per_level, color="tab:blue")
    a.set_xticks(levels, [f"level {i}" for i in levels], fontsize=8)
    a.set_ylabel("KL (nats per tile)")
    a.set_title("KL per level (0 = top)", fontsize=9)
    x, ticks, colours = 0, [], plt.get_cmap("tab10")
    for i, chans in enumerate(kl_per_channel):
        xs = np.arange(x, x + len(chans))
        vals = np.maximum(np.asarray(chans, float), 1e-6)
        b.bar(xs, vals, color=colours(i % 10), label=f"level {i}")
        ticks += [(xi, str(c)) for c, xi in enumerate(xs)]
        x += len(chans) + 1
    b.axhline(threshold, color="k", ls="--", lw=0.8, label=f"active threshold {threshold}")
    b.set_yscale("log")
    b.set_xticks([t for t, _ in ticks], [s for _, s in ticks], fontsize=6)
    b.set_xlabel("latent channel")
    b.set_ylabel("KL (nats per element)")
    b.set_title("KL per channel", fontsize=9)
    b.legend(fontsize=7)
    return _save(fig, path)


def save_embedding_map(
    path: Path, coords: np.ndarray, labels: list[str], *, explained: np.ndarray
) -> Path:
    """The first two principal components of the embeddings, one colour per label."""
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    names = list(dict.fromkeys(labels))
    labels_arr = np.asarray(labels)
    cmap = plt.get_cmap("tab10" if len(names) <= 10 else "tab20")
    for i, name in enumerate(names):
        sel = labels_arr == name
        ax.scatter(coords[sel, 0], coords[sel, 1], s=10, color=cmap(i % cmap.N), label=name)
    ax.set_xlabel(f"PC 1 ({100 * explained[0]:.0f}% of variance)")
    ax.set_ylabel(f"PC 2 ({100 * explained[1]:.0f}% of variance)")
    if len(names) <= 12:
        ax.legend(fontsize=7, markerscale=1.5)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def save_image_grid(
    path: Path,
    images: np.ndarray,
    *,
    row_titles: list[str] | None = None,
    col_titles: list[str] | None = None,
    title: str = "",
    zoom: int = 2,
    limits: tuple[float, float] | None = None,
    highlight: list[tuple[int, int]] = (),
) -> Path:
    """Images (R, C, H, W) or (N, H, W) (one row) with one contrast for all; the panels at
    ``highlight`` (row, column) get a red frame."""
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[None]
    n_rows, n_cols, h, w = images.shape
    lo, hi = limits or _limits(images)
    fig, axes = plt.subplots(
        n_rows,
        n_cols,
        figsize=(n_cols * w * zoom / DPI + 0.8, n_rows * (h * zoom / DPI + 0.2) + 0.4),
        squeeze=False,
    )
    for r in range(n_rows):
        for c in range(n_cols):
            ax = axes[r, c]
            ax.imshow(images[r, c], cmap="gray", vmin=lo, vmax=hi, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if col_titles and r == 0:
                ax.set_title(col_titles[c], fontsize=7)
            if (r, c) in highlight:
                for spine in ax.spines.values():
                    spine.set_color("red")
                    spine.set_linewidth(2.5)
        if row_titles:
            axes[r, 0].set_ylabel(row_titles[r], fontsize=7, rotation=0, ha="right", va="center")
    if title:
        fig.suptitle(title, fontsize=9)
    return _save(fig, path)


def save_density_paths(path: Path, paths: list[tuple[str, np.ndarray, int]]) -> Path:
    """Relative log density along each path between groups, the hole marked."""
    fig, ax = plt.subplots(figsize=(6, 3.2))
    for label, logd, hole in paths:
        t = np.linspace(0, 1, len(logd))
        (line,) = ax.plot(t, logd, lw=1.2, label=label)
        ax.plot(t[hole], logd[hole], "o", color=line.get_color())
    ax.axhline(0, color="k", lw=0.6, ls=":")
    ax.set_xlabel("position on the path between group medoids")
    ax.set_ylabel("log density rel. to a typical tile")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def save_calibration(
    path: Path, predicted: np.ndarray, observed: np.ndarray, stderr: np.ndarray, *, label: str
) -> Path:
    """A calibration curve: per bin, the mean predicted variance against the mean squared
    error (with 2 standard errors), on log axes, beside the line of a calibrated spread."""
    fig, ax = plt.subplots(figsize=(4.2, 3.8))
    ok = observed > 0  # the split's estimate of a bin's error can be <= 0 where it is tiny
    ax.errorbar(predicted[ok], observed[ok], yerr=2 * stderr[ok], fmt="o", ms=4, lw=1, label=label)
    lo = float(min(predicted.min(), observed[ok].min() if ok.any() else predicted.min()))
    hi = float(max(predicted.max(), observed.max()))
    ax.plot([lo, hi], [lo, hi], "k--", lw=0.8, label="calibrated")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("predicted variance (draws)")
    ax.set_ylabel("squared error")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3, which="both")
    return _save(fig, path)


def save_presence(path: Path, image: np.ndarray, presence_map: np.ndarray) -> Path:
    """The MMSE reconstruction in grey with its skeleton's branches coloured by presence
    (the fraction of posterior draws holding each; NaN off the skeleton)."""
    fig, ax = plt.subplots(figsize=(5.2, 4.4))
    lo, hi = _limits(image)
    ax.imshow(image, cmap="gray", vmin=lo, vmax=hi)
    shown = ax.imshow(
        np.ma.masked_invalid(presence_map), cmap="RdYlGn", vmin=0, vmax=1, interpolation="none"
    )
    fig.colorbar(shown, ax=ax, fraction=0.046, label="branch presence in the draws")
    ax.set_axis_off()
    return _save(fig, path)
