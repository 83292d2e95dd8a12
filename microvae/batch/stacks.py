"""Batch processing: folders of image stacks in, reconstructions, embeddings and metrics out.

For every input file NAME (outputs written atomically, so a file that exists is complete):

- ``NAME_recon.tif``: the reconstruction, with the input's axes, pixel size and dtype;
- ``NAME_embedding.npz``: ``embedding`` (planes, 2 * sum C_l) float32, per plane and per
  latent level and channel the spatial mean and standard deviation of the posterior mean
  (:func:`~microvae.inference.embedding.pool_latents`), ``plane_index`` (planes,
  len(plane_axes)) and ``plane_axes`` (e.g. "Z");
- ``NAME_latents_level{l}.npy`` (``latents``): the posterior-mean maps of latent level l (0 =
  top), (planes, C_l, H_l, W_l) float32, memory-mapped while written;
- ``NAME_error.tif`` (``error``): |input - reconstruction|, float32, the input's axes;
- ``NAME_metrics.csv``: one row per plane; ``metrics.csv`` gathers all files' rows, plus one
  row per stack over all its planes (plane = "all").

Planes are read, reconstructed and written one at a time, so memory does not grow with the
stack: it holds the model and about a dozen plane-sized float32 buffers (the padded plane,
the blending accumulator, the conversions back to raw values, activations). A file that
fails is reported and the others go on.
"""

from __future__ import annotations

import csv
import logging
import math
import os
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from skimage.metrics import structural_similarity
from tqdm import tqdm

from ..data.sources import find_tiffs
from ..errors import MicrovaeError
from ..inference import TileOptions, TrainedModel
from ..inference.embedding import pool_latents
from ..io import atomic_path, open_image, write_image

__all__ = [
    "OUTPUTS",
    "FileResult",
    "BatchSummary",
    "process_stacks",
    "output_paths",
    "file_stem",
    "write_csv",
]

_log = logging.getLogger("microvae.batch")

OUTPUTS = ("reconstruction", "embedding", "latents", "error")
# f(reference, reconstruction, *, pixel_size, unit) -> {name: value}; pixel_size is the
# X pixel size in unit, or None when the file does not say
MetricsFn = Callable[..., dict[str, float]]


@dataclass
class FileResult:
    path: Path
    status: str  # done | skipped | failed
    message: str = ""
    rows: list[dict] = field(default_factory=list)


@dataclass
class BatchSummary:
    results: list[FileResult]
    metrics_csv: Path | None

    @property
    def failed(self) -> list[FileResult]:
        return [r for r in self.results if r.status == "failed"]

    def line(self) -> str:
        n = {s: sum(r.status == s for r in self.results) for s in ("done", "skipped", "failed")}
        return (
            f"{n['done']} processed, {n['skipped']} already complete (skipped), "
            f"{n['failed']} failed"
        )


def file_stem(path: Path) -> str:
    """The file name without .tif/.tiff/.ome.tif(f): NAME in NAME_recon.tif."""
    name = path.name
    for suffix in (".ome.tiff", ".ome.tif", ".tiff", ".tif"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def output_paths(path: Path, out_dir: Path, outputs: Iterable[str], n_levels: int) -> dict:
    """The files that processing ``path`` writes, by output name."""
    stem, outputs = file_stem(path), set(outputs)
    paths = {"metrics": out_dir / f"{stem}_metrics.csv"}
    if "reconstruction" in outputs:
        paths["reconstruction"] = out_dir / f"{stem}_recon.tif"
    if "embedding" in outputs:
        paths["embedding"] = out_dir / f"{stem}_embedding.npz"
    if "error" in outputs:
        paths["error"] = out_dir / f"{stem}_error.tif"
    if "latents" in outputs:
        for lv in range(n_levels):
            paths[f"latents_{lv}"] = out_dir / f"{stem}_latents_level{lv}.npy"
    return paths


STRIP_ROWS = 256  # metrics work on strips of rows: memory stays a few strips, not many planes
SSIM_WINDOW = 7


def _ssim_sum(ref: np.ndarray, tst: np.ndarray, rng: float) -> tuple[float, int]:
    """Sum and count of skimage's local SSIM map over the pixels its mean uses, by strips.

    skimage's mean SSIM crops (window - 1) / 2 pixels at every border; each strip is computed
    with that many rows of halo, so every counted value equals the whole-image one."""
    pad = (SSIM_WINDOW - 1) // 2
    h = ref.shape[0]
    total, count = 0.0, 0
    for a in range(pad, h - pad, STRIP_ROWS):
        b = min(a + STRIP_ROWS, h - pad)
        lo, hi = max(a - pad, 0), min(b + pad, h)
        _, smap = structural_similarity(
            ref[lo:hi].astype(np.float64),
            tst[lo:hi].astype(np.float64),
            data_range=rng,
            win_size=SSIM_WINDOW,
            full=True,
        )
        part = smap[a - lo : b - lo, pad:-pad]
        total += float(part.sum())
        count += part.size
    return total, count


def image_metrics(
    reference: np.ndarray, test: np.ndarray, *, data_range: float | None = None
) -> dict[str, float]:
    """PSNR (dB), SSIM (scikit-image's, 7x7 window) and MSE of ``test`` against
    ``reference``; ``data_range`` defaults to the reference's max - min and is stated in the
    result. Computed by strips of rows, so memory does not grow with the plane beyond its own
    size."""
    rng = data_range or (float(reference.max()) - float(reference.min())) or 1.0
    sq = 0.0
    for a in range(0, reference.shape[0], STRIP_ROWS):
        d = reference[a : a + STRIP_ROWS].astype(np.float64) - test[a : a + STRIP_ROWS]
        sq += float(np.sum(d * d))
    mse = sq / reference.size
    if min(reference.shape) < SSIM_WINDOW:
        ssim = float("nan")
    else:
        total, count = _ssim_sum(reference, test, rng)
        ssim = total / count
    return {
        "data_range": rng,
        "mse": mse,
        "psnr_db": 10 * math.log10(rng**2 / mse) if mse > 0 else float("inf"),
        "ssim": ssim,
    }


def _check_out_dir(out_dir: Path) -> None:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out_dir, prefix=".write-test-"):
            pass
    except OSError as exc:
        raise MicrovaeError(
            f"{out_dir}: cannot write there ({exc.strerror or exc}); choose a writable --out folder"
        ) from None


def write_csv(path: Path, rows: list[dict]) -> None:
    """Rows (dicts; columns in order of first appearance) to a CSV file, atomically."""
    fields = list(dict.fromkeys(k for row in rows for k in row))
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


def _read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _process_file(
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
) -> FileResult:
    paths = output_paths(path, out_dir, outputs, model.vae.n_latent_levels)
    with open_image(path, channel=channel, axes=axes) as rec:
        rec.require_single_channel()
        if "Q" in rec.axes:
            _log.warning(
                "%s: the file does not name its stack axis (axes %s); its planes are "
                "processed one by one, which is right for Z or T; if they are "
                "channels, pass --axes (e.g. CYX) and --channel",
                path.name,
                rec.axes,
            )
        rows: list[dict] = []
        vectors: list[np.ndarray] = []
        indices: list[tuple[int, ...]] = []
        n = rec.n_planes
        scratch = tempfile.TemporaryDirectory(dir=out_dir, prefix=".scratch-")
        error_map = latent_maps = None
        if "error" in outputs:
            error_map = np.lib.format.open_memmap(
                Path(scratch.name) / "error.npy",
                mode="w+",
                dtype=np.float32,
                shape=(n, *rec.plane_shape),
            )

        def planes():
            nonlocal latent_maps
            bar = tqdm(
                rec.iter_planes(),
                total=n,
                desc=path.name,
                unit="plane",
                leave=False,
                disable=not progress or n == 1,
            )
            for k, (idx, plane) in enumerate(bar):
                if k == 0:  # the first plane stands for the file: no extra read
                    model.check_input(plane, path.name)
                need_latents = "embedding" in outputs or "latents" in outputs
                recon, levels = model.process_plane(
                    plane, options=options, source=path.name, latents=need_latents
                )
                if need_latents:
                    vectors.append(pool_latents(levels, batched=False))
                    if "latents" in outputs:
                        if latent_maps is None:
                            latent_maps = [
                                np.lib.format.open_memmap(
                                    Path(scratch.name) / f"latents{lv}.npy",
                                    mode="w+",
                                    dtype=np.float32,
                                    shape=(n, *z.shape),
                                )
                                for lv, z in enumerate(levels)
                            ]
                        for lv, z in enumerate(levels):
                            latent_maps[lv][k] = z
                indices.append(idx)
                row = {
                    "file": path.name,
                    "plane": k,
                    **{a: i for a, i in zip(rec.plane_axes, idx)},
                    **image_metrics(plane, recon),
                }
                if metrics is not None:
                    row.update(
                        metrics(plane, recon, pixel_size=rec.pixel_size.get("X"), unit=rec.unit)
                    )
                rows.append(row)
                if error_map is not None:
                    error_map[k] = np.abs(plane.astype(np.float32) - recon.astype(np.float32))
                yield recon

        meta = {"axes": rec.axes, "pixel_size": rec.pixel_size, "unit": rec.unit or "um"}
        try:
            if "reconstruction" in outputs:
                write_image(
                    paths["reconstruction"], planes(), shape=rec.shape, dtype=rec.dtype, **meta
                )
            else:
                for _ in planes():
                    pass
            if error_map is not None:
                error_map.flush()
                write_image(
                    paths["error"],
                    (p for p in error_map),
                    shape=rec.shape,
                    dtype=np.float32,
                    **meta,
                )
            if latent_maps is not None:
                for lv, arr in enumerate(latent_maps):
                    arr.flush()
                    with atomic_path(paths[f"latents_{lv}"]) as tmp:
                        os.replace(arr.filename, tmp)
            if "embedding" in outputs:
                with atomic_path(paths["embedding"]) as tmp:
                    with open(tmp, "wb") as fh:
                        np.savez(
                            fh,
                            embedding=np.stack(vectors).astype(np.float32),
                            plane_index=np.asarray(indices, np.int64).reshape(n, -1),
                            plane_axes=np.array(rec.plane_axes),
                        )
        finally:
            scratch.cleanup()
        if n > 1:
            mse = float(np.mean([r["mse"] for r in rows]))
            rng = max(r["data_range"] for r in rows)
            rows.append(
                {
                    "file": path.name,
                    "plane": "all",
                    "data_range": rng,
                    "mse": mse,
                    "psnr_db": 10 * math.log10(rng**2 / mse) if mse > 0 else float("inf"),
                    "ssim": float(np.mean([r["ssim"] for r in rows])),
                }
            )
        write_csv(paths["metrics"], rows)  # last: its presence marks the file complete
    return FileResult(path, "done", rows=rows)


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
    **tile_options,
) -> BatchSummary:
    """Apply ``model`` to every TIFF in ``inputs`` (files, folders, globs); see the module
    docstring for what is written to ``out_dir``.

    Args:
        outputs: any of ``reconstruction``, ``embedding``, ``latents``, ``error``.
        resume: skip files whose outputs all exist (they are written atomically).
        metrics: extra per-plane metrics, ``f(reference, reconstruction, *, pixel_size,
            unit) -> dict`` (e.g. :func:`microvae.metrics.fine_structure_metrics`).
        **tile_options: fields of :class:`~microvae.inference.TileOptions`.

    Returns:
        A BatchSummary; files that failed are in ``summary.failed`` with their message.
    """
    outputs = set(outputs)
    unknown = outputs - set(OUTPUTS)
    if unknown:
        raise MicrovaeError(
            f"unknown output(s) {', '.join(sorted(unknown))}; choose from {', '.join(OUTPUTS)}"
        )
    out_dir = Path(out_dir)
    _check_out_dir(out_dir)
    paths = find_tiffs([inputs] if isinstance(inputs, (str, os.PathLike)) else inputs)
    outs = {p.resolve() for p in out_dir.glob("*.tif")}
    paths = [p for p in paths if p.resolve() not in outs]  # never our own outputs
    options = TileOptions(**tile_options)
    results: list[FileResult] = []
    for path in tqdm(paths, desc="files", unit="file", disable=not progress):
        expected = output_paths(path, out_dir, outputs, model.vae.n_latent_levels)
        if resume and all(p.is_file() for p in expected.values()):
            results.append(FileResult(path, "skipped", rows=_read_csv(expected["metrics"])))
            continue
        try:
            results.append(
                _process_file(
                    model,
                    path,
                    out_dir,
                    outputs=outputs,
                    options=options,
                    channel=channel,
                    axes=axes,
                    metrics=metrics,
                    progress=progress,
                )
            )
        except MicrovaeError as exc:
            _log.error("microvae: error: %s", exc)
            results.append(FileResult(path, "failed", str(exc)))
    rows = [row for r in results for row in r.rows]
    metrics_csv = None
    if rows:
        metrics_csv = out_dir / "metrics.csv"
        write_csv(metrics_csv, rows)
    return BatchSummary(results, metrics_csv)
