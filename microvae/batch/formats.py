"""Output formats of ``microvae predict``: one object per format that knows its file names, how
to write an image plane by plane, its latent maps, whether a stopped file can be continued and
whether several processes may write one file (CAREamics' ``write_strategy`` in spirit).

A new format is an :class:`OutputFormat` added to :data:`FORMATS`; nothing else switches on a
format's name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import MicrovaeError
from ..extras import require
from ..inference import PlaneSink
from ..io import TiffPlaneWriter, ZarrPlaneWriter
from .writers import LatentFiles, LatentZarr

__all__ = ["FORMATS", "OutputFormat", "get_format"]


@dataclass(frozen=True)
class OutputFormat:
    """How one format writes the image outputs (reconstruction, error) and the latent maps.

    Attributes:
        name: as ``--format`` takes it.
        image_suffix, latent_suffix: of the reconstruction and error files, and of the latent
            maps (``NAME_recon{image_suffix}``, ``NAME_latents_level{l}{latent_suffix}``).
        resumable: a stopped file continues from the planes it holds (its metric rows and
            embeddings journalled beside it); else it is written anew.
        shares_blocks: several processes may write blocks of planes of one file.
        needs: the modules it imports and the pip extra that brings them.
    """

    name: str
    image_suffix: str
    latent_suffix: str
    resumable: bool
    shares_blocks: bool
    open_image: Callable[..., TiffPlaneWriter | ZarrPlaneWriter]
    latent_sink: Callable[[list[Path], bool], PlaneSink]
    needs: tuple[tuple[str, str], ...] = ()

    def require(self) -> None:
        """Its optional dependencies, or an error naming the extra to install."""
        for module, extra in self.needs:
            require(module, extra, f"--format {self.name}")


def _tiff(path: Path, *, resume: bool, **kw) -> TiffPlaneWriter:
    return TiffPlaneWriter(path, **kw)  # written anew under a temporary name: no resume


def _zarr(path: Path, *, resume: bool, **kw) -> ZarrPlaneWriter:
    return ZarrPlaneWriter(path, overwrite=not resume, **kw)


FORMATS: dict[str, OutputFormat] = {
    f.name: f
    for f in (
        OutputFormat(
            "tiff",
            ".tif",
            ".npy",
            resumable=False,
            shares_blocks=False,
            open_image=_tiff,
            latent_sink=lambda paths, resume: LatentFiles(paths),
        ),
        OutputFormat(
            "ome-zarr",
            ".ome.zarr",
            ".ome.zarr",
            resumable=True,
            shares_blocks=True,
            open_image=_zarr,
            latent_sink=lambda paths, resume: LatentZarr(paths, resume=resume),
            needs=(("ome_zarr.format", "zarr"), ("zarr", "zarr")),
        ),
    )
}


def get_format(name: str) -> OutputFormat:
    """The format called ``name``, or an error listing the formats there are."""
    try:
        return FORMATS[name]
    except KeyError:
        raise MicrovaeError(f"unknown format {name!r}; choose from {', '.join(FORMATS)}") from None
