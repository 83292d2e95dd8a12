"""What the widgets do, without Qt: generators that a napari worker thread iterates.

Each ``yield`` is one batch of tiles done, so the worker can show progress and stop between
batches when cancelled; the generator's return value is the result. Tests iterate these
generators directly.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import microvae
from microvae import latent
from microvae.inference import (
    ArraySink,
    MetricRows,
    PlaneResult,
    TileOptions,
    TrainedModel,
    as_image,
    count_steps,
    deliver,
    image_steps,
)
from microvae.metrics import fine_structure_metrics, volume_metrics
from microvae.report import StructureUncertainty, structure_uncertainty_steps

__all__ = [
    "PluginError",
    "ReconResult",
    "chosen_path",
    "load",
    "check_layer",
    "total_steps",
    "reconstruct_steps",
    "view_box",
    "summary_metrics",
    "latent_tile",
    "export_package",
    "split_estimate",
]

# the metrics the widget shows, and how
SHOWN = [
    ("psnr_db", "PSNR", "{:.2f} dB"),
    ("ssim", "SSIM", "{:.3f}"),
    ("frc_resolution_px", "FRC resolution", "{:.2f} px"),
    ("hf_ratio", "high-frequency ratio", "{:.2f}"),
    ("ratio_total_length_px", "network length ratio", "{:.2f}"),
    ("ratio_n_branches", "branches ratio", "{:.2f}"),
    ("ratio_n_junctions", "junctions ratio", "{:.2f}"),
    ("ratio_n_end_points", "end points ratio", "{:.2f}"),
]
# for a 3D model, per volume: the 3D network's ratios and sharpness and resolution along Z
VOLUME_SHOWN = [
    ("net3d_total_length", "3D network length ratio", "{:.2f}"),
    ("net3d_n_junctions", "3D junctions ratio", "{:.2f}"),
    ("net3d_volume", "3D volume ratio", "{:.2f}"),
    ("hf_ratio_z", "HF ratio along Z", "{:.2f}"),
    ("frc_z_planes", "FRC resolution along Z", "{:.2f} planes"),
]
# and, where the data allow, the ground-truth-free estimate (Compare widget)
SPLIT = [
    ("split_psnr_db", "noise-split PSNR", "{:.2f} dB"),
    ("split_rmse", "noise-split RMSE", "{:.3g}"),
]


class PluginError(Exception):
    """A problem the user can fix: shown as a napari notification, never a crash."""


@dataclass
class ReconResult:
    """The reconstruction (the layer data's shape and dtype; with posterior samples their
    mean), |error| (float32) on request, per plane the metrics against the original, for a 3D
    model per volume the 3D ones (:func:`microvae.metrics.volume_metrics`); with posterior
    samples the draws' standard deviation (float32) and, for a single plane (a 3D model: a
    single volume), how sure of each structure (:func:`microvae.report.structure_uncertainty`),
    whose kept draws then give the reconstruction and the spread."""

    reconstruction: np.ndarray
    error: np.ndarray | None = None
    metrics: list[dict] = field(default_factory=list)
    volumes: list[dict] = field(default_factory=list)
    std: np.ndarray | None = None
    structure: StructureUncertainty | None = None


# the network statistics shown with their intervals over the draws (a plane; a volume)
INTERVALS = [
    ("total_length_px", "network length"),
    ("n_junctions", "junctions"),
    ("mean_branch_length_px", "mean branch length"),
]
INTERVALS_3D = [
    ("total_length", "3D network length"),
    ("n_junctions", "3D junctions"),
    ("volume", "3D volume"),
]


def structure_text(u: StructureUncertainty) -> str:
    """The intervals and the branches' presence, a line each."""
    lines = [f"{u.samples} posterior draws, of the input's (MMSE [90% of draws]):"]
    shown = INTERVALS if u.mmse.ndim == 2 else INTERVALS_3D
    lines += [f"{label}: {u.intervals[key]}" for key, label in shown]
    p = u.presence
    total = float(p.lengths.sum())
    if total:
        sure = float(p.lengths[p.presence >= 0.9].sum()) / total
        lines.append(f"branches: {p.presence.size}, {sure:.0%} of their length in >= 90% of draws")
    return "\n".join(lines)


def presence_colours(presence: np.ndarray) -> dict:
    """A Labels colormap for branch presence: label k + 1 red (in no draw) through yellow
    to green (in every draw); the background transparent."""
    colours = {None: (0.0, 0.0, 0.0, 0.0), 0: (0.0, 0.0, 0.0, 0.0)}
    for k, p in enumerate(np.asarray(presence, float), 1):
        colours[k] = (min(1.0, 2 * (1 - p)), min(1.0, 2 * p), 0.0, 1.0)
    return colours


def chosen_path(text: str | None) -> Path:
    """The model path typed or picked in a file field; an empty field is refused."""
    if text is None or not str(text).strip():
        raise PluginError("no model chosen: pick a model file (model.pt of a training run)")
    return Path(str(text).strip())


def load(path: str | Path | None, device: str = "auto") -> TrainedModel:
    """Load a model file, with the errors a user meets said plainly."""
    path = chosen_path(None if path is None else str(path))
    if path.is_dir():
        path = path / "model.pt"
    try:
        return microvae.load_model(path, device=device)
    except microvae.MicrovaeError as exc:
        raise PluginError(str(exc)) from None
    except (RuntimeError, AssertionError) as exc:  # e.g. a device that is not there
        raise PluginError(f"{path.name}: cannot use device '{device}' ({exc})") from None


def check_layer(data: np.ndarray, *, rgb: bool, name: str) -> None:
    """Refuse what a 1-channel 2D model cannot read, saying how to fix it."""
    if rgb:
        raise PluginError(
            f"layer '{name}' is RGB, the model reads one channel: split it first (right-click "
            "the layer > Split RGB) and choose one channel's layer"
        )
    if data.ndim < 2:
        raise PluginError(f"layer '{name}' has {data.ndim} dimension(s); need an image")
    if np.iscomplexobj(data) or data.dtype.kind not in "uif":
        raise PluginError(f"layer '{name}': {data.dtype} data cannot be reconstructed")


def total_steps(model: TrainedModel, shape: tuple[int, ...], options: TileOptions) -> int:
    """Number of yields of :func:`reconstruct_steps` for data of ``shape``: one per batch of
    tiles, or, where how sure of each structure is measured, one per draw."""
    if _structure(model, shape, options):
        return options.samples
    return count_steps(model, shape, options)


def _structure(model: TrainedModel, shape: tuple[int, ...], options: TileOptions) -> bool:
    """Whether how sure of each structure is measured: posterior samples of one 2D plane (a
    3D model: of one volume)."""
    return options.sampled and len(shape) == model.dims


def reconstruct_steps(
    model: TrainedModel,
    data: np.ndarray,
    options: TileOptions,
    *,
    error: bool = False,
    metrics: bool = True,
    pixel_size: float | None = None,
    z_step: float | None = None,
    unit: str = "um",
    name: str = "layer",
) -> Generator[tuple[int, int], None, ReconResult]:
    """Reconstruct a layer's data (..., Y, X) through microvae's plane pipeline (a 3D model:
    (..., Z, Y, X) volume by volume); yields (steps done, steps in all) once per batch of
    tiles. With posterior samples of one plane (a 3D model: one volume) the draws are made
    whole, one step each, and kept: how sure of each structure is measured on them, and
    their mean and spread are the reconstruction and the std. ``pixel_size`` and
    ``z_step``: in ``unit`` (None: pixels, Z as deep as XY)."""
    data = np.asarray(data)  # dask or zarr layers: read here, in the worker
    try:
        image = as_image(data, stacks=True)
    except microvae.MicrovaeError as exc:
        raise PluginError(f"layer '{name}': {exc}") from None
    if pixel_size is not None:
        image.pixel_size, image.unit = {"X": pixel_size, "Y": pixel_size}, unit
    recon = ArraySink("reconstruction")
    sinks = [recon]
    err = ArraySink("error") if error else None
    if err is not None:
        sinks.append(err)
    rows = MetricRows(fine_structure_metrics) if metrics else None
    if rows is not None:
        sinks.append(rows)
    std = ArraySink("std") if options.sampled else None
    if std is not None:
        sinks.append(std)
    total = total_steps(model, data.shape, options)
    voxel = None if pixel_size is None else (z_step or pixel_size, pixel_size, pixel_size)
    structure = None
    if _structure(model, data.shape, options):
        # the draws one by one, kept for the skeletons; their mean and spread are the
        # reconstruction and the std layer, so the posterior is not drawn a second time
        structure = yield from _structure_steps(model, data, options, total, voxel)
        deliver(image, sinks, _drawn(structure, data.dtype), source=name)
    else:
        for k, _ in enumerate(image_steps(model, image, sinks, options=options, source=name), 1):
            yield k, total
    volumes = []
    if rows is not None and model.dims == 3:
        pairs = zip(data.reshape(-1, *data.shape[-3:]), recon.array.reshape(-1, *data.shape[-3:]))
        volumes = [volume_metrics(a, b, voxel=voxel, unit=unit) for a, b in pairs]
    return ReconResult(
        recon.array,
        None if err is None else err.array,
        [] if rows is None else rows.values,
        volumes,
        None if std is None else std.array,
        structure,
    )


def _drawn(u: StructureUncertainty, dtype: np.dtype):
    """Plane k's PlaneResult from the kept draws (one plane, or one volume's planes): their
    mean in ``dtype`` (rounded and clipped for integers, as a reconstruction is) and their
    spread."""
    mmse = u.mmse
    if np.dtype(dtype).kind in "ui":
        info = np.iinfo(dtype)
        mmse = np.clip(np.rint(mmse), info.min, info.max)
    mmse = mmse.astype(dtype)
    if mmse.ndim == 2:
        return lambda k: PlaneResult(mmse, None, u.std)
    return lambda k: PlaneResult(mmse[k], None, u.std[k])


def _structure_steps(model: TrainedModel, image: np.ndarray, options: TileOptions, total, voxel):
    """How sure of each structure: yields (steps done, total) per draw (the last
    ``options.samples`` of ``total``); returns the StructureUncertainty."""
    tiles = {"tile_size": options.tile_size, "overlap": options.overlap}
    if model.dims == 3:
        tiles.update(tile_depth=options.tile_depth, overlap_z=options.overlap_z)
    steps = structure_uncertainty_steps(
        model, image, samples=options.samples, seed=options.seed or 0, voxel=voxel, **tiles
    )
    while True:
        try:
            k, _ = next(steps)
        except StopIteration as done:
            return done.value
        yield total - options.samples + k, total


def split_estimate(model: TrainedModel, image: np.ndarray, options: TileOptions) -> dict:
    """The ground-truth-free estimate of the reconstruction's error to the noise-free signal
    (binomial thinning, :func:`microvae.metrics.split_noise_values`) for one plane (a 3D
    model: one volume (Z, Y, X)): ``split_psnr_db``, ``split_rmse``; NaN where the noise
    cannot be measured (e.g. no camera or photon-count statistics)."""
    from dataclasses import asdict

    from microvae.metrics import split_noise_values

    axes = "ZYX" if model.dims == 3 else "YX"

    def recon(p: np.ndarray) -> np.ndarray:
        return model.reconstruct(p, axes, **asdict(options))

    values, _ = split_noise_values(np.asarray(image), recon)  # NaN: shown as n/a
    return {"split_psnr_db": values["split_psnr_db"], "split_rmse": values["split_rmse"]}


def summary_metrics(rows: list[dict], shown: list = SHOWN) -> dict[str, float]:
    """Mean of each ``shown`` metric over planes (or volumes) (finite values)."""
    out = {}
    for key, _, _ in shown:
        vals = np.array([r.get(key, np.nan) for r in rows], float)
        finite = vals[np.isfinite(vals)]
        out[key] = float(finite.mean()) if len(finite) else float("nan")
    return out


def format_metrics(values: dict[str, float], shown: list = SHOWN) -> str:
    """One line per ``shown`` metric."""
    lines = []
    for key, label, fmt in shown:
        v = values.get(key, float("nan"))
        lines.append(f"{label}: {'n/a' if not np.isfinite(v) else fmt.format(v)}")
    return "\n".join(lines)


def z_step_of(layer) -> float | None:
    """A stack layer's Z step (its scale along the third axis from the end; None: a plane
    or an unset scale of 1)."""
    if layer.data.ndim < 3 or layer.scale[-3] == 1:
        return None
    return float(layer.scale[-3])


def view_box(corner_pixels: np.ndarray, shape: tuple[int, int], minimum: int = 32):
    """(rows, cols) slices of the visible region of a plane from a layer's corner pixels
    (last two dims), at least ``minimum`` pixels a side where the plane allows."""
    lo = np.asarray(corner_pixels[0][-2:], int)
    hi = np.asarray(corner_pixels[1][-2:], int) + 1
    out = []
    for a, b, n in zip(lo, hi, shape):
        a, b = max(int(a), 0), min(int(b), n)
        if b - a < minimum:  # zoomed in too far for FRC and skeletons: widen around the centre
            c = (a + b) // 2
            a, b = max(0, c - minimum // 2), min(n, c + minimum // 2)
        out.append(slice(a, b))
    return tuple(out)


def latent_tile(model: TrainedModel, plane: np.ndarray, box=None) -> np.ndarray:
    """A training-sized tile from a plane: the centre of ``box`` (rows, cols slices) or of the
    plane; planes smaller than a tile are refused."""
    t = model.default_tile()
    h, w = plane.shape
    if h < t or w < t:
        raise PluginError(f"the image ({h} x {w}) is smaller than the model's tile ({t} x {t})")
    rows, cols = box if box is not None else (slice(0, h), slice(0, w))
    cy, cx = (rows.start + rows.stop) // 2, (cols.start + cols.stop) // 2
    y0, x0 = min(max(cy - t // 2, 0), h - t), min(max(cx - t // 2, 0), w - t)
    return plane[y0 : y0 + t, x0 : x0 + t]


def export_package(model_file: Path, target: Path, image: np.ndarray | None) -> Path:
    """``model_file`` as a bioimage.io package at ``target`` (its test tile from ``image``)."""
    from microvae.export import export_bioimageio

    model = load(model_file, "cpu")
    try:
        return export_bioimageio(model, target, image=image)
    except microvae.MicrovaeError as exc:
        raise PluginError(str(exc)) from None


def interpolation(model: TrainedModel, a: np.ndarray, b: np.ndarray, steps: int) -> np.ndarray:
    """Decoded interpolation (steps, T, T) between two tiles, with the generative check."""
    try:
        return latent.interpolate(model, a, b, steps=steps)
    except microvae.MicrovaeError as exc:
        raise PluginError(str(exc)) from None
