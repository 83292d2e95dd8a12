"""The files ``microvae predict`` writes, as sinks of the plane pipeline.

Each writer receives an image's planes as they finish (:class:`~microvae.inference.PlaneSink`).
TIFF and ``.npy`` outputs are written under a hidden temporary name and renamed to their final
name only when the image is complete; an error or a stop removes them, and the file is done
again from its first plane. OME-Zarr outputs are written in place and resumably: each records
the planes it holds (:class:`~microvae.io.ZarrPlaneWriter`), and the metric rows and
embeddings of finished planes go to a journal beside them (``.NAME_*.partial.jsonl``,
appended and synced per plane), so that a resumed run skips the planes every output holds.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..errors import MicrovaeError
from ..inference import (
    EmbeddingSink,
    ImageInfo,
    MetricRows,
    MetricsFn,
    PlaneOutput,
    PlaneSink,
    plane_output,
)
from ..io import TiffPlaneWriter, ZarrPlaneWriter, atomic_path, temp_path, zarr_progress

__all__ = [
    "EmbeddingFile",
    "Journal",
    "LatentFiles",
    "LatentZarr",
    "ImageFile",
    "RowsFile",
]


class ImageFile(PlaneSink):
    """``what`` (``reconstruction``: the input's dtype; ``error``: float32) as an image with
    the input's axes and pixel size, written plane by plane by ``open_writer(path, resume=,
    shape=, dtype=, axes=, pixel_size=, unit=)`` (an output format's, see :mod:`.formats`;
    default a TIFF, written anew)."""

    def __init__(
        self,
        path: Path,
        what: str = "reconstruction",
        *,
        open_writer: Callable[..., TiffPlaneWriter | ZarrPlaneWriter] | None = None,
        resume: bool = False,
    ):
        self.path, self.what, self.resume = Path(path), what, resume
        self.open_writer = open_writer or (lambda path, resume, **kw: TiffPlaneWriter(path, **kw))
        self._writer: TiffPlaneWriter | ZarrPlaneWriter | None = None

    def start(self, info: ImageInfo) -> None:
        super().start(info)
        self._writer = self.open_writer(
            self.path,
            resume=self.resume,
            shape=info.shape,
            dtype=info.dtype if self.what == "reconstruction" else np.float32,
            axes=info.axes,
            pixel_size=info.pixel_size,
            unit=info.unit or "um",
        )

    def done_planes(self) -> set[int]:
        return set(getattr(self._writer, "planes_done", ()))

    def add(self, out: PlaneOutput) -> None:
        self._writer.write(out.index, plane_output(out, self.what))

    def close(self) -> None:
        self._writer.close()

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.abort()


class LatentFiles(PlaneSink):
    """The posterior-mean maps of every latent level as ``.npy`` files, (planes, C_l, H_l,
    W_l) float32 each, ``paths[l]`` for level l (0 = top); written into memory-mapped
    temporary files as planes finish."""

    needs_reconstruction = False
    needs_latents = True

    def __init__(self, paths: list[Path]):
        self.paths = [Path(p) for p in paths]
        self._maps: list[np.memmap] = []
        self._tmps: list[Path] = []

    def add(self, out: PlaneOutput) -> None:
        if not self._maps:  # the shapes are known from the first plane
            if len(out.latents) != len(self.paths):
                raise ValueError(f"{len(out.latents)} latent levels for {len(self.paths)} files")
            for path, z in zip(self.paths, out.latents):
                tmp = temp_path(path)
                self._tmps.append(tmp)
                self._maps.append(
                    np.lib.format.open_memmap(
                        tmp, mode="w+", dtype=np.float32, shape=(self.info.n_planes, *z.shape)
                    )
                )
        for arr, z in zip(self._maps, out.latents):
            arr[out.index] = z

    def close(self) -> None:
        for arr, tmp, path in zip(self._maps, self._tmps, self.paths):
            arr.flush()
            with atomic_path(path) as final:
                os.replace(tmp, final)
        self._maps = []

    def abort(self) -> None:
        self._maps = []
        for tmp in self._tmps:
            tmp.unlink(missing_ok=True)


class Journal:
    """Per-plane records of an unfinished output, one JSON line each, appended and synced as
    planes finish, beside the output (``.NAME.partial.TAG.jsonl``: one file per writer, so
    processes writing blocks of one image never append to the same file); every writer's
    records are read back on resume."""

    def __init__(self, output: Path, *, resume: bool, keep: bool = True, tag: str = "0"):
        """``keep``: write the journal (False: records in memory only, for outputs that start
        again anyway); ``resume``: read earlier records (else they are removed)."""
        self._pattern = f".{output.name}.partial.*.jsonl"
        self.folder = output.parent
        self.path = output.with_name(f".{output.name}.partial.{tag}.jsonl")
        self.keep = keep
        self.records: dict[int, dict] = {}
        for old in sorted(self.folder.glob(self._pattern)):
            if not resume:
                old.unlink(missing_ok=True)
                continue
            with open(old) as fh:
                for line in fh:
                    try:
                        rec = json.loads(line)
                    except json.JSONDecodeError:  # a line cut short by a kill: not done
                        continue
                    self.records[int(rec["plane"])] = rec

    def add(self, plane: int, record: dict) -> None:
        record = {"plane": plane, **record}
        self.records[plane] = record
        if not self.keep:
            return
        with open(self.path, "a") as fh:
            fh.write(json.dumps(record, default=_json_value) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def remove(self) -> None:
        """Every writer's journal of this output."""
        for old in self.folder.glob(self._pattern):
            old.unlink(missing_ok=True)


def _json_value(v):
    if isinstance(v, np.generic):
        return v.item()
    raise TypeError(f"{type(v).__name__} is not JSON serialisable")


class EmbeddingFile(EmbeddingSink):
    """The pooled embedding of every plane as ``.npz``: ``embedding`` (planes, 2 * sum C_l)
    float32, ``plane_index`` (planes, len(plane_axes)) int64 and ``plane_axes``; with
    ``journal`` each plane's is journalled, and with ``resume`` an earlier run's are kept."""

    def __init__(self, path: Path, *, resume: bool = False, journal: bool = False, tag: str = "0"):
        self.path, self.resume, self.journal, self.tag = Path(path), resume, journal, tag

    def start(self, info: ImageInfo) -> None:
        super().start(info)
        self._journal = Journal(self.path, resume=self.resume, keep=self.journal, tag=self.tag)
        self._have = {k: r for k, r in self._journal.records.items() if k < info.n_planes}

    def done_planes(self) -> set[int]:
        return set(self._have)

    def add(self, out: PlaneOutput) -> None:
        super().add(out)
        record = {"vector": self._vectors[-1].tolist(), "position": list(out.position)}
        self._journal.add(out.index, record)
        self._have[out.index] = record

    def close(self) -> None:
        have = self._have
        order = sorted(have)
        with atomic_path(self.path) as tmp, open(tmp, "wb") as fh:
            np.savez(
                fh,
                embedding=np.stack([np.asarray(have[k]["vector"]) for k in order]).astype(
                    np.float32
                ),
                plane_index=np.asarray([have[k]["position"] for k in order], np.int64).reshape(
                    len(order), -1
                ),
                plane_axes=np.array(self.info.plane_axes),
            )
        self._journal.remove()


class RowsFile(MetricRows):
    """The metric rows of every plane (``.rows``, in plane order once closed); with
    ``journal`` journalled beside ``path`` (the file the caller writes them to) for a resumed
    run."""

    def __init__(
        self,
        path: Path,
        metrics: MetricsFn | None,
        *,
        resume: bool = False,
        journal: bool = False,
        tag: str = "0",
    ):
        super().__init__(metrics)
        self.path, self.resume, self.journal, self.tag = Path(path), resume, journal, tag

    def start(self, info: ImageInfo) -> None:
        super().start(info)
        self._journal = Journal(self.path, resume=self.resume, keep=self.journal, tag=self.tag)
        self._done = {k: r["row"] for k, r in self._journal.records.items() if k < info.n_planes}

    def done_planes(self) -> set[int]:
        return set(self._done)

    def add(self, out: PlaneOutput) -> None:
        super().add(out)
        self._journal.add(out.index, {"row": self.rows[-1]})
        self._done.pop(out.index, None)

    def close(self) -> None:
        rows = {**self._done, **{int(r["plane"]): r for r in self.rows}}
        self.rows = [rows[k] for k in sorted(rows)]

    def remove_journal(self) -> None:
        """Once the rows are written."""
        self._journal.remove()


class LatentZarr(PlaneSink):
    """The posterior-mean maps of every latent level as OME-Zarr images, ``paths[l]`` for
    level l (0 = top): the input's stack axes with a channel axis (NGFF order: T, C, Z),
    chunks of one plane's channels, pixel size scaled to the level's resolution."""

    needs_reconstruction = False
    needs_latents = True

    def __init__(self, paths: list[Path], *, resume: bool = False):
        self.paths, self.resume = [Path(p) for p in paths], resume
        self._writers: list[ZarrPlaneWriter] = []

    def done_planes(self) -> set[int]:
        if not self.resume:
            return set()
        held = [zarr_progress(p)[1] for p in self.paths]
        return set.intersection(*held) if held else set()

    def add(self, out: PlaneOutput) -> None:
        if not self._writers:  # the shapes are known from the first plane
            self._writers = [self._open(p, z) for p, z in zip(self.paths, out.latents)]
        for writer, z in zip(self._writers, out.latents):
            writer.write(out.index, z)

    def _open(self, path: Path, z: np.ndarray) -> ZarrPlaneWriter:
        info = self.info
        if z.ndim != 3:
            raise MicrovaeError(
                f"{path.name}: this model's latent is a vector per tile, not a map; its "
                "latents cannot be an OME-Zarr image: use --format tiff (they go to .npy)"
            )
        stack = [a for a in info.axes if a not in "YX"]
        axes = "".join(a for a in "TCZ" if a in stack or a == "C") + "YX"
        sizes = {a: info.shape[info.axes.index(a)] for a in stack}
        sizes.update(C=z.shape[0], Y=z.shape[1], X=z.shape[2])
        factor = info.plane_shape[1] / z.shape[2]
        pixel = {a: v * (factor if a in "YX" else 1.0) for a, v in info.pixel_size.items()}
        return ZarrPlaneWriter(
            path,
            shape=tuple(sizes[a] for a in axes),
            dtype=np.float32,
            axes=axes,
            pixel_size=pixel,
            unit=info.unit or "um",
            overwrite=not self.resume,
            block_axes="CYX",
        )

    def close(self) -> None:
        # stores another process made (blocks of one image) are reopened to be closed
        writers = self._writers or [ZarrPlaneWriter.reopen(p) for p in self.paths]
        for writer in writers:
            writer.close()

    def abort(self) -> None:
        for writer in self._writers:
            writer.abort()
