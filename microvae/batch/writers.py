"""The files ``microvae predict`` writes, as sinks of the plane pipeline.

Each writer receives an image's planes as they finish (:class:`~microvae.inference.PlaneSink`)
and writes one output under a hidden temporary name, renamed to its final name only when the
image is complete; an error or a stop removes it. A file under its final name is complete.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from ..inference import EmbeddingSink, ImageInfo, PlaneOutput, PlaneSink
from ..inference.pipeline import plane_output
from ..io import TiffPlaneWriter, atomic_path

__all__ = ["EmbeddingFile", "LatentFiles", "TiffFile"]


class TiffFile(PlaneSink):
    """``what`` (``reconstruction``: the input's dtype; ``error``: float32) as a TIFF with the
    input's axes and pixel size, written plane by plane."""

    def __init__(self, path: Path, what: str = "reconstruction"):
        self.path, self.what = Path(path), what
        self._writer: TiffPlaneWriter | None = None

    def start(self, info: ImageInfo) -> None:
        super().start(info)
        self._writer = TiffPlaneWriter(
            self.path,
            shape=info.shape,
            dtype=info.dtype if self.what == "reconstruction" else np.float32,
            axes=info.axes,
            pixel_size=info.pixel_size,
            unit=info.unit or "um",
        )

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
                fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
                os.close(fd)
                self._tmps.append(Path(tmp))
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


class EmbeddingFile(EmbeddingSink):
    """The pooled embedding of every plane as ``.npz``: ``embedding`` (planes, 2 * sum C_l)
    float32, ``plane_index`` (planes, len(plane_axes)) int64 and ``plane_axes``."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def close(self) -> None:
        with atomic_path(self.path) as tmp, open(tmp, "wb") as fh:
            np.savez(
                fh,
                embedding=self.vectors,
                plane_index=self.positions,
                plane_axes=np.array(self.info.plane_axes),
            )
