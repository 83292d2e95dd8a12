"""``evaluate``: a model on images -> metrics.csv, diagnostics.json, figures and report.md.

For every input file (TIFF; stacks plane by plane) the reconstruction is scored against the
input and, when a ground truth is given (``gt="{stem}_gt.tif"``: a pattern beside each input),
the reconstruction and the input are both scored against the ground truth: the input's own
score is the baseline a denoising reconstruction should beat. The metrics are those of
:func:`microvae.metrics.fine_structure_metrics`. On tiles of the inputs: the collapse
diagnostics, embeddings (PCA map coloured by file) and, for a generative model, the prototype,
samples with their morphology realism (skeleton length, junction density and branch lengths
against the data tiles'), an interpolation, traversals and the holes between files (or
clusters).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from ..data import find_images
from ..errors import MicrovaeError
from ..inference import (
    ImageInfo,
    PlaneOutput,
    PlaneSink,
    TileOptions,
    TrainedModel,
    result_of,
    run_image,
)
from ..io import atomic_path, file_stem, is_zarr, open_image, read_image, write_csv
from ..latent import (
    MIN_TILES,
    collect_tiles,
    decode_top,
    diagnose,
    embed,
    interpolate,
    likelihood_bounds,
    linear_probe,
    map_latents,
    pca,
    prototype,
    samples,
    split_by_group,
    traverse,
)
from ..metrics import (
    FRC_THRESHOLD,
    calibration_curve,
    fine_structure_metrics,
    frc,
    realism_reference,
    split_errors,
    split_noise_values,
    volume_metrics,
)
from . import figures
from .markdown import write_report
from .uncertainty import structure_uncertainty

__all__ = ["Evaluation", "evaluate", "ground_truth_path", "read_labels", "sample_realism"]

_log = logging.getLogger("microvae.report")

MAX_CROP_ROWS = 4  # files shown in the crops and FRC figures
REALISM_SAMPLES = 64  # prior samples per temperature for the morphology realism
REALISM_TEMPERATURES = (1.0, 0.7)
# the data tiles are chosen for their signal (collect_tiles); samples are compared with them
# where they have signal too
REALISM_MIN_FOREGROUND = 0.05


@dataclass
class Evaluation:
    """Where everything went, and the numbers the report is made of."""

    out_dir: Path
    rows: list[dict]
    diagnostics: dict
    figures: dict[str, Path] = field(default_factory=dict)
    latent: dict = field(default_factory=dict)
    report: Path | None = None
    files: list[str] = field(default_factory=list)
    uncertainty: dict = field(default_factory=dict)


def ground_truth_path(path: Path, pattern: str) -> Path:
    """The ground truth of ``path`` by ``pattern``: ``{stem}`` (the name without .tif or
    .ome.zarr) and ``{name}`` are replaced; a relative result lies beside the input (a TIFF
    or an OME-Zarr image)."""
    gt = Path(pattern.format(stem=file_stem(path), name=path.name))
    return gt if gt.is_absolute() else path.parent / gt


def _inputs(inputs, gt: str | None) -> list[tuple[Path, Path | None]]:
    paths = find_images([inputs] if isinstance(inputs, (str, os.PathLike)) else inputs)
    pairs = [(p, ground_truth_path(p, gt) if gt else None) for p in paths]
    gts = {g.resolve() for _, g in pairs if g is not None}
    pairs = [(p, g) for p, g in pairs if p.resolve() not in gts]  # a folder holds both
    missing = [g for _, g in pairs if g is not None and not (g.is_file() or is_zarr(g))]
    if missing:
        raise MicrovaeError(
            f"{missing[0]}: ground truth not found (--gt {gt!r}); check the pattern, e.g. "
            "--gt '{stem}_gt.tif' for synth_000.tif -> synth_000_gt.tif"
        )
    if not pairs:
        raise MicrovaeError("no input images left once the ground-truth files are set aside")
    return pairs


def read_labels(path: str | os.PathLike, column: str = "label") -> dict[str, str]:
    """File name -> label from a CSV with a ``file`` column and ``column`` (e.g. the
    ``manifest.csv`` of ``microvae synth`` with column ``phenotype``)."""
    path = Path(path)
    try:
        with open(path, newline="") as fh:
            rows = list(csv.DictReader(fh))
    except OSError as exc:
        raise MicrovaeError(f"{path}: cannot read the labels ({exc.strerror})") from None
    if not rows or "file" not in rows[0] or column not in rows[0]:
        found = ", ".join(rows[0]) if rows else "nothing"
        raise MicrovaeError(
            f"{path}: needs columns 'file' and '{column}', found {found}; pass --label-column NAME"
        )
    return {Path(r["file"]).name: r[column] for r in rows}


class _Scores(PlaneSink):
    """The metric rows of one file's planes: the reconstruction against the input and, with
    a ground truth, the reconstruction and the input against it; the noise-split estimate on
    request; the first plane kept for the figures."""

    def __init__(
        self,
        model: TrainedModel,
        gt_path: Path | None,
        *,
        options: TileOptions,
        channel,
        axes,
        keep: bool,
        split_noise: bool,
        seed: int,
    ):
        self.model, self.gt_path, self.options = model, gt_path, options
        self.channel, self.axes, self.keep = channel, axes, keep
        self.split_noise, self.seed = split_noise, seed
        self.rows: list[dict] = []
        self.kept: dict | None = None
        self._split_failed = False

    def start(self, info: ImageInfo) -> None:
        super().start(info)
        # a 3D model's planes come volume by volume, in Z order: (input, reconstruction,
        # truth) of the volume under way, scored when its last plane is in
        self._volume: list | None = None
        if self.model.dims == 3:  # the pipeline has checked that the image has a Z
            self._volume = []
            self._depth = info.shape[info.axes.index(info.plane_axes[-1])]
        self._gt_planes = None
        if self.gt_path is not None:
            gt_rec = read_image(self.gt_path, channel=self.channel, axes=self.axes)
            self._gt_planes = (p for _, p in gt_rec.iter_planes())

    def add(self, out: PlaneOutput) -> None:
        info, plane, recon = self.info, out.plane, out.reconstruction
        px, unit = info.pixel_size.get("X"), info.unit or "um"
        where = {"file": info.name, "plane": out.index, **dict(zip(info.plane_axes, out.position))}
        pairs = [("input", "reconstruction", plane, recon)]
        truth = None
        if self._gt_planes is not None:
            truth = next(self._gt_planes, None)
            if truth is None or truth.shape != plane.shape:
                raise MicrovaeError(
                    f"{self.gt_path.name}: does not match {info.name} plane by plane (shape "
                    f"{None if truth is None else truth.shape} vs {plane.shape}); give the "
                    "ground truth of the same stack"
                )
            pairs += [
                ("ground truth", "reconstruction", truth, recon),
                ("ground truth", "input", truth, plane),
            ]
        first = len(self.rows)
        for ref_name, test_name, ref, test in pairs:
            m = fine_structure_metrics(ref, test, pixel_size=px, unit=unit)
            self.rows.append({**where, "reference": ref_name, "compared": test_name, **m})
        if self._volume is not None:
            self._add_to_volume(out, truth)
        elif self.split_noise:
            est = _split_noise(
                self.model,
                plane,
                self.options,
                info.name,
                self.seed + out.index,
                not self._split_failed,
            )
            self.rows[first].update(est)
            self._split_failed = self._split_failed or math.isnan(est["split_mse"])
        if self.keep and out.index == 0:
            self.kept = {  # the first plane, for the crops and FRC figures
                "input": plane,
                "reconstruction": recon,
                "ground truth": truth,
                "pixel_size": px,
                "unit": unit,
            }

    def _add_to_volume(self, out: PlaneOutput, truth: np.ndarray | None) -> None:
        """Keep a 3D model's plane; at its volume's last plane, that volume's rows."""
        self._volume.append((out.plane, out.reconstruction, truth))
        if out.position[-1] < self._depth - 1:
            return
        info = self.info
        where = {"file": info.name, "plane": "volume"}
        where.update(zip(info.plane_axes[:-1], out.position[:-1]))
        rows, why = _volume_rows(
            self.model,
            self._volume,
            where,
            info,
            self.options,
            self.split_noise,
            self.seed + out.index,
        )
        if why is not None and not self._split_failed:
            _log.warning("%s: no noise-split estimate: %s", info.name, why)
        self._split_failed = self._split_failed or why is not None
        if self.keep and self.kept is not None and "volume" not in self.kept:
            px = info.pixel_size  # the first volume, for how sure of each structure
            self.kept["volume"] = np.stack([p[0] for p in self._volume])
            self.kept["voxel"] = tuple(px[a] for a in "ZYX") if set("ZYX") <= set(px) else None
        self.rows += rows
        self._volume = []


def _volume_rows(model, planes, where, info, options, split_noise, seed):
    """A volume's rows (:func:`microvae.metrics.volume_metrics`: the reconstruction against
    the input and, with a ground truth, both against it), the noise-split estimate over the
    volume on request; and why that estimate is missing, or None."""
    inp, rec = np.stack([p[0] for p in planes]), np.stack([p[1] for p in planes])
    truth = None if planes[0][2] is None else np.stack([p[2] for p in planes])
    px = info.pixel_size
    voxel = tuple(px[a] for a in "ZYX") if all(a in px for a in "ZYX") else None
    pairs = [("input", "reconstruction", inp, rec)]
    if truth is not None:
        pairs += [
            ("ground truth", "reconstruction", truth, rec),
            ("ground truth", "input", truth, inp),
        ]
    rows = [
        {
            **where,
            "reference": a,
            "compared": b,
            **volume_metrics(r, t, voxel=voxel, unit=info.unit),
        }
        for a, b, r, t in pairs
    ]
    why = None
    if split_noise:
        kw = dataclasses.asdict(options)
        values, why = split_noise_values(
            inp, lambda v: model.reconstruct(v, "ZYX", **kw), seed=seed
        )
        rows[0].update(values)
    return rows, why


def _score_file(
    model: TrainedModel,
    path: Path,
    gt_path: Path | None,
    options: TileOptions,
    channel,
    axes,
    keep: bool,
    progress: bool,
    split_noise: bool = False,
    seed: int = 0,
) -> tuple[list[dict], dict | None]:
    scores = _Scores(
        model,
        gt_path,
        options=options,
        channel=channel,
        axes=axes,
        keep=keep,
        split_noise=split_noise,
        seed=seed,
    )
    with open_image(path, channel=channel, axes=axes) as rec:
        run_image(model, rec, [scores], options=options, source=path.name, progress=progress)
    return scores.rows, scores.kept


def _plane_reconstruction(
    model: TrainedModel, plane: np.ndarray, options: TileOptions, source: str
) -> np.ndarray:
    """One plane through the pipeline's plane step: the halves of a split are planes of an
    image already checked, not new images to check again."""
    return result_of(model.plane_steps(plane, options=options, source=source)).reconstruction


def _split_noise(
    model: TrainedModel, plane: np.ndarray, options: TileOptions, name: str, seed: int, say: bool
) -> dict[str, float]:
    """The noise-split estimate for one plane (NaN, and a warning once per file, where the
    plane's noise cannot be measured)."""
    values, why = split_noise_values(
        plane, lambda p: _plane_reconstruction(model, p, options, name), seed=seed
    )
    if why is not None and say:
        _log.warning("%s: no noise-split estimate: %s", name, why)
    return values


def _summary_rows(rows: list[dict]) -> list[dict]:
    """Mean of every numeric metric per (reference, compared) over all planes of all files."""
    out = []
    keys = list(dict.fromkeys((r["reference"], r["compared"]) for r in rows))
    for ref, comp in keys:
        sel = [r for r in rows if r["reference"] == ref and r["compared"] == comp]
        mean = {"file": "all", "plane": "mean", "reference": ref, "compared": comp}
        # every key of any row (a 3D model's volume rows hold their own), with its first value
        first: dict = {}
        for r in sel:
            for k, v in r.items():
                first.setdefault(k, v)
        for k, v in first.items():
            if k in mean or not isinstance(v, (int, float)) or k in ("plane",):
                continue
            vals = np.array([r.get(k, np.nan) for r in sel], float)
            finite = vals[np.isfinite(vals)]
            mean[k] = float(finite.mean()) if len(finite) else float(vals[0])
        out.append(mean)
    return out


def sample_realism(
    model: TrainedModel, data_tiles: np.ndarray, *, seed: int = 0, n: int = REALISM_SAMPLES
) -> dict:
    """Morphology realism (:func:`microvae.metrics.realism`) of ``n`` samples at each of
    :data:`REALISM_TEMPERATURES` against ``data_tiles`` (N, T, T) raw, over the tiles with
    signal (``REALISM_MIN_FOREGROUND``), keyed by how they were drawn: with the top level from
    the fitted aggregate posterior where the model has one (as :func:`~microvae.latent.samples`
    draws by default), and from the learned prior at T = 1 for comparison,
    {"aggregate prior, T = 1": Realism dict, ..., "learned prior, T = 1": ...}; {} where too
    few data tiles have signal."""
    try:  # the data side once, for every set of samples
        ref = realism_reference(data_tiles, min_foreground=REALISM_MIN_FOREGROUND, seed=seed)
    except ValueError as exc:
        _log.warning("sample realism not measured: %s", exc)
        return {}
    drawn = [("learned", t) for t in REALISM_TEMPERATURES]
    if model.top_prior is not None:
        drawn = [("aggregate", t) for t in REALISM_TEMPERATURES] + [("learned", 1.0)]
    return {
        f"{prior} prior, T = {t:g}": ref.compare(
            samples(model, n, temperature=t, seed=seed, prior=prior)
        ).to_dict()
        for prior, t in drawn
    }


def _latent_figures(model, tiles, pooled, out: Path, seed: int, diag: dict) -> tuple[dict, dict]:
    """The generation figures (prototype, samples, interpolation, traversals), the samples'
    realism, and the holes between groups of tiles (from :func:`microvae.latent.map_latents`,
    the explorer's map)."""
    fig_dir = out / "figures"
    figs = _generation_figures(model, fig_dir, seed)
    info = {"realism": sample_realism(model, tiles.tiles, seed=seed)}
    figs["interpolation"], info["interpolation"] = _interpolation_figure(
        model, tiles, pooled, fig_dir
    )
    figs["traversal"] = _traversal_figure(model, tiles, diag, fig_dir)
    hole_figs, hole_info = _hole_figures(model, tiles, diag, fig_dir, seed)
    figs.update(hole_figs)
    info.update(hole_info)
    return figs, info


def _generation_figures(model, fig_dir: Path, seed: int) -> dict:
    """The prototype (every latent at its prior mean) and samples at three temperatures."""
    temps = (1.0, 0.7, 0.4)
    grid = np.stack([samples(model, 6, temperature=t, seed=seed) for t in temps])
    return {
        "prototype": figures.save_image_grid(
            fig_dir / "prototype.png",
            prototype(model)[None],
            title="prototype: every latent at its prior mean (z = 0)",
            zoom=3,
        ),
        "samples": figures.save_image_grid(
            fig_dir / "samples.png",
            grid,
            row_titles=[f"T = {t}" for t in temps],
            title="samples at temperatures T (top level from the fitted aggregate posterior)"
            if model.top_prior is not None
            else "samples from the prior at temperatures T",
        ),
    }


def _interpolation_figure(model, tiles, pooled, fig_dir: Path) -> tuple[str, dict]:
    """The interpolation between the two tiles farthest apart in the pooled embedding."""
    d = ((pooled[:, None] - pooled[None]) ** 2).sum(-1)
    i, j = np.unravel_index(int(np.argmax(d)), d.shape)
    path = interpolate(model, tiles.tiles[i], tiles.tiles[j], steps=8)
    row = np.concatenate([tiles.tiles[i][None], path, tiles.tiles[j][None]]).astype(np.float32)
    fig = figures.save_image_grid(
        fig_dir / "interpolation.png",
        row,
        col_titles=[f"tile {i}"] + [f"t={t:.2f}" for t in np.linspace(0, 1, 8)] + [f"tile {j}"],
        title=f"interpolation: {tiles.sources[i]} -> {tiles.sources[j]} (every level)",
    )
    return fig, {
        "from": [tiles.sources[i], tiles.positions[i].tolist()],
        "to": [tiles.sources[j], tiles.positions[j].tolist()],
    }


def _traversal_figure(model, tiles, diag: dict, fig_dir: Path) -> str:
    """Traversals of the six top-level channels with most KL, from the first tile."""
    kl_top = np.asarray(diag["kl_per_channel_nats_per_element"][0], float)
    channels = [int(c) for c in np.argsort(-kl_top)[:6]]
    trav = traverse(model, channels=channels, base=tiles.tiles[0])
    return figures.save_image_grid(
        fig_dir / "traversal.png",
        trav,
        row_titles=[f"channel {c}\n(KL {kl_top[c]:.2g})" for c in channels],
        col_titles=[f"{v:+g} sd" for v in (-2, -1, 0, 1, 2)],
        title=f"traversals of the top-level channels with most KL, from a tile of "
        f"{tiles.sources[0]}",
    )


def _hole_figures(model, tiles, diag: dict, fig_dir: Path, seed: int) -> tuple[dict, dict]:
    """The holes: the latent map the napari explorer draws, grouped by label (or file); the
    decoded paths between group medoids and their densities."""
    m = map_latents(model, tiles, colour_by="label", n_clusters=3, seed=seed, diagnostics=diag)
    if len(m.flat) < MIN_TILES:
        _log.warning("only %d tiles: too few for the density and its holes", len(m.flat))
        return {}, {"holes": []}
    holes, density = m.holes[:6], m.density  # the first pairs: a figure stays readable
    info = {
        "hole_groups": m.grouping,
        "density": {
            "k": density.k,
            "intrinsic_dimension": density.dimension,
            "embedding_dimension": int(m.flat.shape[1]),
        },
        "holes": [h.to_dict() for h in holes],
    }
    if not holes:  # k-means put every tile in one cluster
        _log.warning("the embeddings form a single group: no path between groups, no hole")
        return {}, info
    rows, titles, marks = [], [], []
    for r, h in enumerate(holes):
        picks = np.unique(np.r_[np.linspace(0, len(h.path) - 1, 7).round().astype(int), h.index])
        rows.append(decode_top(model, h.path[picks]))
        titles.append(f"{h.groups[0]} -> {h.groups[1]}\n(hole at t = {h.t:.2f})")
        marks.append((r, int(np.searchsorted(picks, h.index))))
    width = max(len(r) for r in rows)
    grid = np.stack([np.pad(r, ((0, width - len(r)), (0, 0), (0, 0)), mode="edge") for r in rows])
    figs = {
        "holes": figures.save_image_grid(
            fig_dir / "holes.png",
            grid,
            row_titles=titles,
            highlight=marks,
            title="decoded paths between group medoids; the hole (lowest density) framed red",
        ),
        "density": figures.save_density_paths(
            fig_dir / "density_paths.png",
            [(f"{h.groups[0]} -> {h.groups[1]}", h.path_log_density, h.index) for h in holes],
        ),
    }
    return figs, info


def evaluate(
    model: TrainedModel,
    inputs: str | os.PathLike | Iterable[str | os.PathLike],
    out_dir: str | os.PathLike,
    *,
    gt: str | None = None,
    labels: dict[str, str] | None = None,
    channel: int | None = None,
    axes: str | None = None,
    max_tiles: int = 256,
    seed: int = 0,
    progress: bool = True,
    split_noise: bool = False,
    iwae: int = 0,
    samples: int = 0,
    **tile_options: Any,
) -> Evaluation:
    """Evaluate ``model`` on ``inputs`` (files, folders, globs) into ``out_dir``.

    Args:
        gt: ground-truth pattern beside each input, e.g. ``"{stem}_gt.tif"``.
        labels: file name -> label (e.g. a phenotype; :func:`read_labels`): colours the
            embedding map, groups the holes; default the file names.
        max_tiles: tiles (training size) for diagnostics, embeddings and the latent figures.
        split_noise: also the input-vs-reconstruction rows' error to the noise-free signal by
            binomial thinning (``split_*``, :func:`microvae.metrics.split_noise_error`).
        iwae: K > 0: also the importance-weighted bound IWAE_K beside the ELBO on the tiles
            (:func:`microvae.latent.diagnostics.likelihood_bounds`), in ``diagnostics.json``
            (``bounds``) and the report.
        samples: N >= 2: how sure of each structure on the crops' planes, by N draws
            (:func:`~microvae.report.structure_uncertainty`; with ``split_noise``, also the
            draws' calibration curve), in ``uncertainty.json``, figures and the report.
        **tile_options: fields of :class:`~microvae.inference.TileOptions`.

    Writes ``metrics.csv`` (a row per plane and comparison, then the means; a 3D model's
    a row per volume too, :func:`microvae.metrics.volume_metrics`, and there the noise split),
    ``diagnostics.json``, ``latent.json``, ``figures/*.png`` and ``report.md`` (a 3D model's:
    metrics and fidelity figures; the latent tools take 2D models for now)."""
    _check_samples(model, samples)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pairs = _inputs(inputs, gt)
    rows, kept = _score_files(
        model, pairs, TileOptions(**tile_options), channel, axes, progress, split_noise, seed
    )
    write_csv(out / "metrics.csv", rows)
    files = [p for p, _ in pairs]
    if model.dims == 3:
        result = _volume_evaluation(model, out, rows, kept, files)
    else:
        tiles = _labelled_tiles(model, files, labels, max_tiles, channel, axes)
        result = _plane_evaluation(model, out, rows, kept, files, tiles, bool(labels), iwae, seed)
    _uncertainty_part(result, model, kept, samples, split_noise, seed, tile_options)
    result.report = write_report(result, model)
    return result


def _plane_evaluation(model, out: Path, rows, kept, files, tiles, labelled, iwae, seed):
    """A 2D model's evaluation: the metrics, the fidelity figures and the latent tools on
    ``tiles`` (diagnostics, embeddings, a linear probe where ``labelled``, generation),
    ``latent.json``."""
    diag = _diagnostics_part(model, tiles, out, iwae, seed)
    result = Evaluation(out, rows, diag, files=[p.name for p in files])
    _fidelity_figures(result, kept)
    pooled = _embedding_part(result, model, tiles, labelled)
    _generation_part(result, model, tiles, pooled, seed)
    with atomic_path(out / "latent.json") as tmp:
        tmp.write_text(json.dumps(result.latent, indent=2) + "\n")
    return result


def _check_samples(model: TrainedModel, samples: int) -> None:
    """Refuse at once what the draws would refuse after all the scoring (0: no draws)."""
    if samples == 0:
        return
    if samples < 2:
        raise MicrovaeError(f"samples must be >= 2 for a spread, got {samples}")
    if not model.vae.can_generate:
        raise MicrovaeError(
            f"{model.path.name if model.path else 'the model'}: skip_mode "
            f"'{model.config.model.skip_mode}' cannot sample its posterior; leave out samples"
        )


def _uncertainty_part(result: Evaluation, model, kept, samples, split_noise, seed, opts) -> None:
    """How sure of each structure on the kept planes (the first of the first files; a 3D
    model: their first volumes), and with ``split_noise`` the draws' calibration without
    ground truth; uncertainty.json. Nothing without ``samples``."""
    if not samples:
        return
    fig_dir = result.out_dir / "figures"
    planes, pooled = [], ([], [])
    for k, (name, first) in enumerate(kept):
        plane, voxel = first.get("volume") if model.dims == 3 else first["input"], None
        if plane is None:  # a stack of one plane gives a 3D model no volume to draw
            _log.warning("%s: no volume kept; no structure intervals", name)
            continue
        voxel = first.get("voxel")
        u = structure_uncertainty(model, plane, samples=samples, seed=seed, voxel=voxel, **opts)
        p = u.presence
        total = float(p.lengths.sum())
        sure = float(p.lengths[p.presence >= 0.9].sum()) / total if total else None
        image, shown = u.mmse, p.map()
        if image.ndim == 3:  # a volume: maximum projections along Z (NaN where no branch)
            image, shown = image.max(0), np.fmax.reduce(shown, axis=0)
        figure = figures.save_presence(fig_dir / f"presence_{k}.png", image, shown)
        planes.append(
            {
                "file": name,
                "intervals": {f: [iv.value, iv.low, iv.high] for f, iv in u.intervals.items()},
                "branches": int(p.presence.size),
                "length_share_presence_0.9": sure,
                "figure": str(figure.relative_to(result.out_dir)),
            }
        )
        if split_noise:
            try:
                pv, err = split_errors(plane, _posterior_fn(model, samples, seed, opts), seed=seed)
            except ValueError as exc:
                _log.warning("%s: no calibration curve: %s", name, exc)
                continue
            pooled[0].append(pv.ravel())
            pooled[1].append(err.ravel())
    result.uncertainty = {"samples": samples, "spread_scale": model.spread_scale, "planes": planes}
    if pooled[0]:
        curve = calibration_curve(np.concatenate(pooled[0]), np.concatenate(pooled[1]))
        path = figures.save_calibration(
            fig_dir / "calibration.png",
            curve.predicted,
            curve.observed,
            curve.stderr,
            label="noise split (half dose)",
        )
        result.uncertainty["calibration"] = curve.to_dict()
        result.uncertainty["calibration_figure"] = str(path.relative_to(result.out_dir))
    with atomic_path(result.out_dir / "uncertainty.json") as tmp:
        tmp.write_text(json.dumps(result.uncertainty, indent=2) + "\n")


def _posterior_fn(model, samples: int, seed: int, opts: dict):
    def posterior(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        axes = "ZYX" if x.ndim == 3 else "YX"
        p = model.posterior(x, axes, samples=samples, seed=seed, **opts)
        return p.mmse, p.std

    return posterior


def _volume_evaluation(model, out: Path, rows, kept, files) -> Evaluation:
    """A 3D model's evaluation: the metrics and fidelity figures; the latent tools take 2D
    tiles, and the report says so."""
    _log.warning(
        "%s: a 3D model; the latent diagnostics, embeddings and generation figures take 2D "
        "models for now: metrics, fidelity figures and, with samples, how sure of each "
        "structure only",
        model.path,
    )
    result = Evaluation(out, rows, {}, files=[p.name for p in files])
    _fidelity_figures(result, kept)
    return result


def _labelled_tiles(model, files, labels, max_tiles, channel, axes):
    """Up to ``max_tiles`` training-size tiles of ``files``, labelled from ``labels`` (file
    name -> label) where given."""
    tiles = collect_tiles(model, files, max_tiles=max_tiles, channel=channel, axes=axes)
    if labels:
        unlabelled = sorted({s for s in tiles.sources if s not in labels})
        if unlabelled:
            raise MicrovaeError(f"{unlabelled[0]}: no label given for this file")
        tiles.labels = [labels[s] for s in tiles.sources]
    return tiles


def _diagnostics_part(model, tiles, out: Path, iwae: int, seed: int) -> dict:
    """The latent diagnostics (and the IWAE bound for ``iwae`` > 0) into ``diagnostics.json``."""
    diag = diagnose(model, tiles, max_tiles=len(tiles), seed=seed)
    if iwae:
        diag["bounds"] = likelihood_bounds(model, tiles.tiles, iwae, seed=seed)
    with atomic_path(out / "diagnostics.json") as tmp:
        tmp.write_text(json.dumps(diag, indent=2) + "\n")
    return diag


def _generation_part(result: Evaluation, model, tiles, pooled, seed: int) -> None:
    """The generation figures and holes into ``result``, for models that generate."""
    if not model.vae.can_generate:
        _log.warning(
            "%s: skip_mode %s does not generate; no prototype, samples, interpolation, "
            "traversal or hole figures",
            model.path,
            model.config.model.skip_mode,
        )
        return
    figs, info = _latent_figures(model, tiles, pooled, result.out_dir, seed, result.diagnostics)
    result.figures.update(figs)
    result.latent.update(info)


def _score_files(model, pairs, options, channel, axes, progress, split_noise, seed):
    """Every file's metric rows, then the means (``file`` "all"); and the first planes kept
    for the crops and FRC figures, (name, planes) per file."""
    rows, kept = [], []
    for n, (path, gt_path) in enumerate(
        tqdm(pairs, desc="evaluate", unit="file", disable=not progress)
    ):
        file_rows, first = _score_file(
            model,
            path,
            gt_path,
            options,
            channel,
            axes,
            n < MAX_CROP_ROWS,
            progress,
            split_noise=split_noise,
            seed=seed,
        )
        rows += file_rows
        if first is not None:
            kept.append((path.name, first))
    return rows + _summary_rows(rows), kept


def _fidelity_figures(result: Evaluation, kept: list) -> None:
    """The crops (input, reconstruction, ground truth) and the FRC curves of the first
    files, into ``result.figures``."""
    fig_dir = result.out_dir / "figures"
    crop_rows = []
    for name, k in kept:
        panels = {"input": k["input"], "reconstruction": k["reconstruction"]}
        if k["ground truth"] is not None:
            panels["ground truth"] = k["ground truth"]
        crop_rows.append((name, panels))
    result.figures["crops"] = figures.save_crops(fig_dir / "crops.png", crop_rows)
    curves, px, unit = [], kept[0][1]["pixel_size"], kept[0][1]["unit"]
    for name, k in kept[:2]:  # more curves would not be readable
        r = frc(k["input"], k["reconstruction"])
        curves.append((f"{name}: reconstruction vs input", r.frequencies, r.curve))
        if k["ground truth"] is not None:
            for label, img in (("reconstruction", k["reconstruction"]), ("input", k["input"])):
                r = frc(k["ground truth"], img)
                curves.append((f"{name}: {label} vs ground truth", r.frequencies, r.curve))
    same_px = all(k["pixel_size"] == px for _, k in kept)
    result.figures["frc"] = figures.save_frc(
        fig_dir / "frc.png",
        curves,
        threshold=FRC_THRESHOLD,
        pixel_size=px if same_px else None,
        unit=unit,
    )
    d = result.diagnostics
    if "kl_per_level_nats" in d:
        result.figures["kl"] = figures.save_kl(
            fig_dir / "kl.png",
            d["kl_per_level_nats"],
            d["kl_per_channel_nats_per_element"],
            threshold=d["threshold_nats"],
        )


def _embedding_part(result: Evaluation, model, tiles, labelled: bool) -> np.ndarray:
    """The pooled embeddings of the tiles: their PCA map, and with labels a linear probe
    scored on other files; the pooled embeddings."""
    pooled = embed(model, tiles)
    coords, explained = pca(pooled)
    result.figures["embedding"] = figures.save_embedding_map(
        result.out_dir / "figures" / "embedding_pca.png", coords, tiles.labels, explained=explained
    )
    split = split_by_group(tiles.sources, tiles.labels) if labelled else None
    probe = None
    if split is not None:  # labels with at least two files each: score on the other files
        train, test = split
        probe = linear_probe(
            pooled[train],
            np.asarray(tiles.labels)[train],
            pooled[test],
            np.asarray(tiles.labels)[test],
        )
    result.latent["embedding"] = {
        "probe_accuracy": probe,
        "probe_tiles": None if split is None else [int(split[0].sum()), int(split[1].sum())],
        "n_tiles": len(tiles),
        "dimension": int(pooled.shape[1]),
        "pca_explained": explained.tolist(),
    }
    return pooled
