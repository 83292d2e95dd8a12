"""Batch processing: folders of image stacks in, reconstructions, embeddings and metrics out.

For every input file NAME (outputs written atomically, so a file that exists is complete):

- ``NAME_recon.tif``: the reconstruction, with the input's axes, pixel size and dtype;
- ``NAME_embedding.npz``: ``embedding`` (planes, 2 * sum C_l) float32, per plane and per
  latent level and channel the spatial mean and standard deviation of the posterior mean
  (:func:`~microvae.inference.pooling.pool_latents`), ``plane_index`` (planes,
  len(plane_axes)) and ``plane_axes`` (e.g. "Z");
- ``NAME_latents_level{l}.npy`` (``latents``): the posterior-mean maps of latent level l (0 =
  top), (planes, C_l, H_l, W_l) float32, memory-mapped while written;
- ``NAME_error.tif`` (``error``): |input - reconstruction|, float32, the input's axes;
- ``NAME_std.tif`` (``std``, with ``samples`` >= 2): the standard deviation of the posterior
  draws whose mean is then the reconstruction (:mod:`microvae.inference.sampling`), float32 in
  the input's units and axes;
- ``NAME_q{P}.tif`` (``quantiles``, with ``quantiles`` asked of the draws): quantile P% of the
  draws per pixel (e.g. ``NAME_q5.tif``, ``NAME_q95.tif``), float32 in the input's units and
  axes; widened with the spread by a calibrated model's scale;
- ``NAME_metrics.csv``: one row per plane with the metrics asked for; ``metrics.csv``
  gathers all files' rows, plus one row per stack over all its planes (plane = "all");
- ``microvae-predict.json``: the record of which outputs came from which input, model and
  settings (:mod:`.provenance`): how a later run knows its own outputs, and what
  ``resume`` may keep.

Every file goes through the one plane pipeline (:func:`~microvae.inference.run_image`) into
the writers of :mod:`.writers`.

Planes are read, reconstructed and written one at a time (into the output files, nothing
memory-mapped but the latent maps), so memory does not grow with the stack: it holds the
model and about a dozen plane-sized float32 buffers (the padded plane, the blending
accumulator, the conversions back to raw values, activations). A file that
fails is reported and the others go on.
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from ..data import find_images
from ..errors import MicrovaeError
from ..extras import require
from ..inference import MetricsFn, PlaneSink, TileOptions, TrainedModel, run_image
from ..io import (
    file_stem,
    is_zarr,
    open_image,
    read_csv,
    stale_temporaries,
    write_csv,
    zarr_progress,
)
from .cluster import run_on_cluster
from .formats import FORMATS, get_format
from .provenance import RECORD_NAME, RunRecord, model_digest
from .results import BatchSummary, FileResult
from .writers import EmbeddingFile, ImageFile, RowsFile

__all__ = [
    "FORMATS",
    "OUTPUTS",
    "FileResult",
    "BatchSummary",
    "process_stacks",
    "output_paths",
    "process_file",
]

_log = logging.getLogger("microvae.batch")

OUTPUTS = ("reconstruction", "embedding", "latents", "error", "std", "quantiles")


def output_paths(
    path: Path,
    out_dir: Path,
    outputs: Iterable[str],
    n_levels: int,
    fmt: str = "tiff",
    quantiles: Iterable[float] = (),
) -> dict:
    """The files (and OME-Zarr folders) that processing ``path`` writes, by output name
    (``quantile_{i}`` for the i-th of ``quantiles``, each in 0..1)."""
    stem, outputs = file_stem(path), set(outputs)
    f = get_format(fmt)
    image, maps = f.image_suffix, f.latent_suffix
    paths = {"metrics": out_dir / f"{stem}_metrics.csv"}
    if "reconstruction" in outputs:
        paths["reconstruction"] = out_dir / f"{stem}_recon{image}"
    if "embedding" in outputs:
        paths["embedding"] = out_dir / f"{stem}_embedding.npz"
    if "error" in outputs:
        paths["error"] = out_dir / f"{stem}_error{image}"
    if "std" in outputs:
        paths["std"] = out_dir / f"{stem}_std{image}"
    if "quantiles" in outputs:
        for i, q in enumerate(quantiles):
            paths[f"quantile_{i}"] = out_dir / f"{stem}_{quantile_name(q)}{image}"
    if "latents" in outputs:
        for lv in range(n_levels):
            paths[f"latents_{lv}"] = out_dir / f"{stem}_latents_level{lv}{maps}"
    return paths


def quantile_name(q: float) -> str:
    """The name part of quantile ``q`` (0..1): ``q`` and its percentage, e.g. 0.05 -> q5,
    0.975 -> q97.5."""
    return f"q{round(100 * q, 6):g}"


def _complete(path: Path) -> bool:
    """A file is complete once it exists (written atomically); an OME-Zarr image once it
    says so."""
    return zarr_progress(path)[0] if path.suffix == ".zarr" else path.is_file()


def _check_out_dir(out_dir: Path) -> None:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out_dir, prefix=".write-test-"):
            pass
    except OSError as exc:
        raise MicrovaeError(
            f"{out_dir}: cannot write there ({exc.strerror or exc}); choose a writable --out folder"
        ) from None


def process_file(
    model: TrainedModel,
    path: Path,
    out_dir: Path,
    *,
    outputs: set[str],
    options: TileOptions,
    channel,
    axes,
    metrics: MetricsFn | None,
    progress: bool,
    fmt: str,
    resume: bool,
    planes: Collection[int] | None = None,
    finish: bool = True,
    tag: str = "0",
    missing_chunks: str = "error",
) -> FileResult:
    """Process one image file into ``out_dir`` (the unit of work, serial or on a Dask
    worker): every output's sink fed by the plane pipeline, the metric rows last.

    A block of a stack shared between processes (OME-Zarr outputs only): ``planes`` (C-order
    numbers), its journals under ``tag``, and ``finish=False`` (the outputs stay unfinished,
    status ``block``); one last call with ``planes=()``, ``resume=True`` and ``finish=True``
    closes them and writes the metric rows."""
    paths = output_paths(path, out_dir, outputs, model.vae.n_latent_levels, fmt, options.quantiles)
    # a resumable format continues a stopped run plane by plane; the others start again
    f = get_format(fmt)
    resume = resume and f.resumable
    sinks = _sinks(model, f, paths, outputs, resume, tag)
    rows = RowsFile(paths["metrics"], metrics, resume=resume, journal=f.resumable, tag=tag)
    sinks.append(rows)
    with open_image(path, channel=channel, axes=axes, missing_chunks=missing_chunks) as rec:
        _check_planes(rec, path)
        run_image(
            model,
            rec,
            sinks,
            options=options,
            source=path.name,
            progress=progress,
            planes=planes,
            finish=finish,
        )
    if not finish:
        return FileResult(path, "block")
    journal, rows = rows, rows.rows
    if len(rows) > 1 and "mse" in rows[0]:
        rows.append(_stack_row(path.name, rows))
    write_csv(paths["metrics"], rows)  # last: its presence marks the file complete
    journal.remove_journal()
    return FileResult(path, "done", rows=rows)


def _sinks(model, f, paths: dict, outputs: set[str], resume: bool, tag: str) -> list[PlaneSink]:
    """The sinks of the image outputs in format ``f`` (the metric rows' sink aside)."""
    sinks: list[PlaneSink] = []
    images = [w for w in ("reconstruction", "error", "std") if w in outputs]
    images += [k for k in paths if k.startswith("quantile_")]
    for what in images:
        sinks.append(ImageFile(paths[what], what, open_writer=f.open_image, resume=resume))
    if "latents" in outputs:
        levels = [paths[f"latents_{lv}"] for lv in range(model.vae.n_latent_levels)]
        sinks.append(f.latent_sink(levels, resume))
    if "embedding" in outputs:
        journal = f.resumable
        sinks.append(EmbeddingFile(paths["embedding"], resume=resume, journal=journal, tag=tag))
    return sinks


def _check_planes(rec, path: Path) -> None:
    """One channel; a warning where the file does not say what its stack axis is."""
    rec.require_single_channel()
    if "Q" in rec.axes:
        _log.warning(
            "%s: the file does not name its stack axis (axes %s); its planes are "
            "processed one by one, which is right for Z or T; if they are "
            "channels, pass --axes (e.g. CYX) and --channel",
            path.name,
            rec.axes,
        )


def _stack_row(name: str, rows: list[dict]) -> dict:
    """The row over all planes of a stack: the mean MSE and SSIM, the widest range, and the
    PSNR of these; planes whose metric is NaN (a constant plane) are left out of it."""
    ranges = [float(r["data_range"]) for r in rows]
    rng = max((v for v in ranges if v > 0), default=float("nan"))
    mse = float(np.mean([float(r["mse"]) for r in rows]))
    ssims = [float(r["ssim"]) for r in rows if not math.isnan(float(r["ssim"]))]
    row = {
        "file": name,
        "plane": "all",
        "data_range": rng,
        "mse": mse,
        # metrics.psnr_from_mse's formula (batch lies below the metrics layer)
        "psnr_db": (10 * math.log10(rng**2 / mse) if mse > 0 else float("inf"))
        if rng > 0
        else float("nan"),
        "ssim": float(np.mean(ssims)) if ssims else float("nan"),
    }
    if len(ssims) < len(rows):
        row["note"] = f"SSIM over the {len(ssims)} of {len(rows)} planes where it is defined"
    return row


def process_stacks(
    model: TrainedModel,
    inputs: str | os.PathLike | Iterable[str | os.PathLike],
    out_dir: str | os.PathLike,
    *,
    outputs: Iterable[str] = ("reconstruction", "embedding"),
    channel: int | None = None,
    axes: str | None = None,
    resume: bool = False,
    metrics: MetricsFn | None = None,
    progress: bool = True,
    format: str = "tiff",
    dask: str | None = None,
    dask_device: str | None = None,
    dask_block: int = 64,
    overwrite: bool = False,
    missing_chunks: str = "error",
    **tile_options: Any,
) -> BatchSummary:
    """Apply ``model`` to every image in ``inputs`` (TIFF files, OME-Zarr images, folders,
    globs); see the module docstring for what is written to ``out_dir``.

    Args:
        outputs: any of ``reconstruction``, ``embedding``, ``latents``, ``error`` (and
            ``std``, added with the reconstruction when ``samples`` >= 2, and ``quantiles``
            when ``quantiles`` are asked too).
        resume: skip files whose outputs are all complete; with ``format="ome-zarr"``
            continue an unfinished file from the planes it holds. Only outputs that the
            folder's record (:mod:`.provenance`) says came from this model, these settings
            and this input (path, size, time) are kept: any other is an error that says what
            differs, before anything is written.
        overwrite: with ``resume``, files whose outputs came from another run are processed
            anew (without ``resume`` every file is); a damaged record is replaced.
        missing_chunks: OME-Zarr inputs: a plane whose chunk is missing from the store fails
            its file (``"error"``), or reads as the fill value (``"fill"``; see
            :func:`microvae.io.open_image`).
        format: of the image outputs (reconstruction, error, latent maps): ``tiff`` (latent
            maps as ``.npy``) or ``ome-zarr`` (NGFF 0.5, chunked by plane).
        dask: run the files on a Dask cluster: ``local:N`` (N local worker processes) or a
            scheduler's address (``tcp://HOST:PORT``); each worker loads the model file
            once. The outputs are those of a serial run (None, the default).
        dask_device: the workers' device (``auto``: CUDA, MPS or CPU, each worker's own);
            default: the type of ``model``'s device.
        dask_block: with ``format="ome-zarr"``, a stack of more planes than this is shared
            between workers in blocks of this many planes (0: whole files only). TIFF
            outputs are written by one process: whole files.
        metrics: the per-plane metrics, ``f(reference, reconstruction, *, pixel_size,
            unit) -> dict`` (:func:`microvae.metrics.basic_metrics`: PSNR, SSIM and MSE;
            :func:`microvae.metrics.fine_structure_metrics`: every metric); None: the rows
            name the planes only. ``microvae.process_stacks`` takes these by name.
        **tile_options: fields of :class:`~microvae.inference.TileOptions`.

    Returns:
        A BatchSummary; files that failed are in ``summary.failed`` with their message.
    """
    try:
        options = TileOptions(**tile_options)
    except ValueError as exc:  # a bad value (samples, quantiles): one line, no traceback
        raise MicrovaeError(str(exc)) from None
    outputs, fmt = _check_options(model, outputs, format, dask, options)
    out_dir = Path(out_dir)
    _check_out_dir(out_dir)
    record = RunRecord.load(out_dir, fresh=overwrite and not resume)
    paths, own = _inputs(inputs, record)
    settings = _settings(outputs, format, channel, axes, metrics, options)
    plan = _plan(model, paths, out_dir, record, settings, resume=resume, overwrite=overwrite)
    written = [p for path in plan.todo for p in _written(path, out_dir, options.quantiles)]
    removed = _remove_stale(out_dir, written)
    record.save()  # before any output: every output in the folder is in the record
    kwargs = {
        "outputs": outputs,
        "options": options,
        "channel": channel,
        "axes": axes,
        "metrics": metrics,
        "fmt": format,
        "resume": resume,
        "missing_chunks": missing_chunks,
    }
    with tqdm(total=len(paths), desc="files", unit="file", disable=not progress) as bar:
        bar.update(len(plan.done))
        if dask is None:
            _run_here(model, plan, out_dir, kwargs, progress, bar)
        elif plan.todo:
            block = dask_block if fmt.shares_blocks else 0
            _run_on_dask(model, plan, out_dir, kwargs, dask, dask_device, block, bar)
    results = [plan.done[p] for p in paths]
    rows = [row for r in results for row in r.rows]
    metrics_csv = out_dir / "metrics.csv" if rows else None
    if rows:
        write_csv(metrics_csv, rows)
    return BatchSummary(results, metrics_csv, own_outputs=own, stale_removed=removed)


def _run_here(model, plan, out_dir: Path, kwargs: dict, progress: bool, bar) -> None:
    """The plan's files one after another in this process."""
    for path in plan.todo:
        one = {**kwargs, "resume": kwargs["resume"] and path not in plan.fresh}
        plan.done[path] = _one_file(model, path, out_dir, progress=progress, **one)
        bar.update(1)


def _run_on_dask(model, plan, out_dir, kwargs, dask: str, device, block: int, bar) -> None:
    """The plan's files on the Dask cluster ``dask`` (whole files, or blocks of ``block``
    planes of OME-Zarr outputs); each worker loads the model file once."""
    results = run_on_cluster(
        dask,
        model.path,
        device or model.device.type,
        plan.todo,
        out_dir,
        {**kwargs, "progress": False},
        block=block,
        on_done=lambda _: bar.update(1),
        fresh=plan.fresh,
        work=process_file,
    )
    plan.done.update(zip(plan.todo, results))


def _check_options(
    model: TrainedModel, outputs, format: str, dask: str | None, options: TileOptions
):
    """The outputs as a set and the format, checked before any work (with the extras they
    need). With posterior samples the standard deviation goes with the reconstruction."""
    outputs = set(outputs)
    fmt = get_format(format)
    unknown = outputs - set(OUTPUTS)
    if unknown:
        raise MicrovaeError(
            f"unknown output(s) {', '.join(sorted(unknown))}; choose from {', '.join(OUTPUTS)}"
        )
    if options.sampled and "reconstruction" in outputs:
        outputs.add("std")
        if options.quantiles:
            outputs.add("quantiles")
    if "std" in outputs and not options.sampled:
        raise MicrovaeError("the std output needs posterior samples: pass samples >= 2")
    if "quantiles" in outputs and not options.quantiles:
        raise MicrovaeError("the quantiles output needs quantiles=(...) and samples >= 2")
    fmt.require()
    if dask is not None:
        require("distributed", "dask", "--dask")
        if model.path is None:
            raise MicrovaeError(
                "--dask sends the model file to the workers: load the model with "
                "microvae.load_model(path)"
            )
    return outputs, fmt


@dataclass
class _Plan:
    """What a run does with each input: ``done`` (already complete: skipped), ``todo`` (in
    order), and of those the ``fresh`` ones, whose earlier outputs are replaced."""

    done: dict[Path, FileResult] = field(default_factory=dict)
    todo: list[Path] = field(default_factory=list)
    fresh: set[Path] = field(default_factory=set)


def _plan(
    model: TrainedModel,
    paths: list[Path],
    out_dir: Path,
    record: RunRecord,
    settings: dict,
    *,
    resume: bool,
    overwrite: bool,
) -> _Plan:
    """Which inputs to skip, do or redo, by what the record says made the outputs there
    (entries of the inputs to do are updated in ``record``); outputs of another model,
    settings or input under ``resume`` without ``overwrite`` are an error saying what
    differs."""
    plan, mismatched = _Plan(), []
    digest = model_digest(model)
    outputs, fmt = settings["outputs"], settings["format"]
    for path in paths:
        quantiles = settings.get("quantiles", ())
        expected = output_paths(path, out_dir, outputs, model.vae.n_latent_levels, fmt, quantiles)
        entry = record.entry(path, digest, settings, list(expected.values()))
        if resume and _any_output(expected.values()):
            differs = record.differences(path, entry)
            if differs and not overwrite:
                mismatched.append(f"{path.name} ({', '.join(differs)})")
                continue
            if differs:
                plan.fresh.add(path)
            elif all(_complete(p) for p in expected.values()):
                plan.done[path] = FileResult(path, "skipped", rows=read_csv(expected["metrics"]))
                continue
        record.entries[file_stem(path)] = entry
        plan.todo.append(path)
    if mismatched:
        raise MicrovaeError(
            f"{out_dir}: --resume would keep outputs that another run made: "
            f"{'; '.join(mismatched)}; pass --overwrite to replace them, or choose another --out"
        )
    return plan


def _one_file(model: TrainedModel, path: Path, out_dir: Path, **kwargs) -> FileResult:
    """:func:`process_file` in this process: a file that fails is a result, not an error."""
    try:
        return process_file(model, path, out_dir, **kwargs)
    except MicrovaeError as exc:
        _log.error("microvae: error: %s", exc)
        return FileResult(path, "failed", str(exc))


def _inputs(inputs, record: RunRecord) -> tuple[list[Path], int]:
    """The input images, less microvae's own outputs found in folders and globs: those the
    records of earlier runs list (the output folder's, and those of the folders the inputs
    lie in, where an earlier run wrote its outputs beside its inputs); and how many were
    left out. A file named as an input is always one."""
    items = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    paths = find_images(items)
    named = {Path(i).resolve() for i in items if Path(i).is_file() or is_zarr(i)}
    ours = record.own_outputs()
    records = [record.path] if record.entries else []
    for folder in sorted({p.parent.resolve() for p in paths} - {record.folder.resolve()}):
        try:
            other = RunRecord.load(folder)
        except MicrovaeError as exc:  # not this run's record: its outputs are just inputs
            _log.warning("%s; its files are taken as inputs", exc)
            continue
        if other.entries:
            ours |= other.own_outputs()
            records.append(other.path)
    ours -= named
    kept = [p for p in paths if p.resolve() not in ours]
    if len(kept) < len(paths):
        _log.info(
            "left out %d of microvae's own outputs among the inputs (listed in %s)",
            len(paths) - len(kept),
            ", ".join(str(r) for r in records),
        )
    if not kept:
        raise MicrovaeError(
            "every input is an output of an earlier microvae run "
            f"({', '.join(str(r) for r in records)} list them); give the original images"
        )
    return kept, len(paths) - len(kept)


def _settings(outputs, fmt, channel, axes, metrics, options: TileOptions) -> dict:
    """What shapes a file's outputs, as plain data for the run record (batch_size does not,
    but for posterior samples)."""
    return {
        "outputs": sorted(outputs),
        "format": fmt,
        "channel": channel,
        "axes": axes,
        "metrics": None if metrics is None else getattr(metrics, "__name__", repr(metrics)),
        "tile_size": options.tile_size,
        "overlap": options.overlap,
        "output": options.output,
        "posterior_levels": options.posterior_levels,
        "sample_latents": options.sample_latents,
        "seed": options.seed,
        # 3D models only; absent when unset, so that a record from before them still matches
        **{k: v for k in ("tile_depth", "overlap_z") if (v := getattr(options, k)) is not None},
        # posterior samples: the draws depend on how tiles share a batch, so batch_size too
        **(
            {"samples": options.samples, "batch_size": options.batch_size}
            if options.sampled
            else {}
        ),
        **({"quantiles": list(options.quantiles)} if options.quantiles else {}),
    }


def _any_output(paths: Iterable[Path]) -> bool:
    """Whether any of these outputs (or an unfinished one's journal) is in its folder."""
    for p in paths:
        if p.exists() or any(p.parent.glob(f".{p.name}.partial.*.jsonl")):
            return True
    return False


def _written(path: Path, out_dir: Path, quantiles: Iterable[float]) -> list[Path]:
    """Every file a run on ``path`` with these ``quantiles`` may write into ``out_dir``,
    whatever its outputs and format (for the temporaries a killed run left)."""
    every = [output_paths(path, out_dir, OUTPUTS, 8, name, quantiles).values() for name in FORMATS]
    return [p for group in every for p in group]


def _remove_stale(out_dir: Path, outputs: list[Path]) -> int:
    """Remove the temporaries a killed writer left of these outputs (and of metrics.csv);
    how many."""
    names = {p.name for p in outputs} | {"metrics.csv", RECORD_NAME}
    stale = stale_temporaries(out_dir, names)  # the folder listed once
    for tmp in stale:
        tmp.unlink(missing_ok=True)
    n = len(stale)
    if n:
        _log.info("%s: removed %d temporary file(s) that a stopped run left", out_dir, n)
    return n
