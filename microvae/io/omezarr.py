"""OME-Zarr in and out (NGFF 0.4 on Zarr v2, NGFF 0.5 on Zarr v3).

Reading: the multiscale metadata is parsed by ome-zarr-py (the OME's own reader, which napari
uses through napari-ome-zarr); level 0 is opened as a Zarr array and read plane by plane, so
only the chunks of the plane asked for are read.

Writing (:class:`ZarrPlaneWriter`): an NGFF 0.5 image of one level, chunked by plane, with
axes and pixel size, written plane by plane and resumable: every finished plane is recorded by
an empty marker file (``.microvae-done/K`` inside the store, which Zarr readers ignore) made
after its chunk is written, so a run that was stopped continues where it stopped, a plane
whose chunk was half-written is never counted as done, and processes writing different planes
of one image never overwrite each other's records. The group attribute ``microvae.complete``
turns true only when every plane is in (the markers are then removed).
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import shutil
from pathlib import Path

import numpy as np

from ..errors import AxesError, ImageReadError, ImageWriteError
from ..extras import require
from .axes import validate_axes
from .metadata import normalise_unit
from .record import check_dtype

__all__ = [
    "MISSING_CHUNKS",
    "ZarrPlaneWriter",
    "ZarrReader",
    "is_zarr",
    "unfinished_output",
    "zarr_progress",
]

_log = logging.getLogger(__name__)

# NGFF axis names <-> microvae's letters; NGFF has no samples axis (S)
_FROM_NGFF = {"t": "T", "c": "C", "z": "Z", "y": "Y", "x": "X"}
_TO_NGFF = {v: k for k, v in _FROM_NGFF.items()}
_NGFF_TYPES = {"T": "time", "C": "channel", "Z": "space", "Y": "space", "X": "space"}
_NGFF_UNITS = {"um": "micrometer", "nm": "nanometer", "mm": "millimeter", "A": "angstrom"}
_MARKERS = ("zarr.json", ".zattrs", ".zgroup")


def is_zarr(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a Zarr store: a folder named ``*.zarr`` or holding Zarr metadata."""
    path = Path(path)
    return path.is_dir() and (
        path.suffix.lower() == ".zarr" or any((path / m).is_file() for m in _MARKERS)
    )


def _zarr():
    """zarr and ome-zarr-py (the ``zarr`` extra), or an error naming the extra."""
    require("ome_zarr.format", "zarr", "OME-Zarr images")
    return require("zarr", "zarr", "OME-Zarr images")


def _open_group(path: Path, mode: str = "r"):
    zarr = _zarr()

    try:
        return zarr.open_group(str(path), mode=mode)
    except Exception as exc:  # zarr raises several types for a missing or foreign store
        raise ImageReadError(
            f"{path.name}: not a readable Zarr store ({type(exc).__name__}: {exc}); check the "
            "path (an OME-Zarr image is a folder, usually NAME.ome.zarr)"
        ) from None


def _multiscales(path: Path) -> tuple[dict, str]:
    """The first multiscales entry of an OME-Zarr image and its NGFF version; the metadata is
    read and its axes validated by ome-zarr-py, without opening any scale level (a missing
    level other than 0 does not stop level 0 from being read)."""
    _zarr()
    from ome_zarr.axes import Axes
    from ome_zarr.format import FormatV04, FormatV05, format_from_version
    from ome_zarr.io import parse_url

    # NGFF 0.4 lives on Zarr v2 (.zattrs), 0.5 on Zarr v3 (zarr.json): ask for the one there
    fmt = FormatV04() if (path / ".zattrs").is_file() else FormatV05()
    try:
        location = parse_url(str(path), fmt=fmt)
    except Exception as exc:
        raise ImageReadError(f"{path.name}: cannot read its Zarr metadata ({exc})") from None
    if location is None:
        raise ImageReadError(f"{path}: not found, or not a Zarr store; check the path")
    attrs = location.root_attrs
    ome = attrs.get("ome", attrs)  # NGFF 0.5 keeps its metadata under "ome"
    entries = ome.get("multiscales")
    if not entries:
        raise ImageReadError(
            f"{path.name}: a Zarr store without OME-Zarr multiscales metadata (a plain Zarr "
            "array, a plate or labels); give the path of an OME-Zarr image"
        )
    ms = entries[0]
    version = str(ome.get("version") or ms.get("version") or fmt.version)
    try:
        Axes(ms.get("axes"), fmt=format_from_version(version))
    except Exception as exc:  # ome-zarr-py raises ValueError/KeyError for bad axes
        raise ImageReadError(
            f"{path.name}: invalid OME-Zarr axes ({type(exc).__name__}: {exc})"
        ) from None
    return ms, version


MISSING_CHUNKS = ("error", "fill")


class ZarrReader:
    """Planes of level 0 of an OME-Zarr image (a :class:`~microvae.io.record.BlockReader`).

    Zarr reads a chunk that is not in the store as the array's fill value, so a chunk lost in
    a copy would read as a plane of zeros. Before a plane is read, its chunks are looked up
    in the store: with ``missing_chunks="error"`` (the default) a missing one is an error
    naming the file, the plane and the chunk; ``"fill"`` reads it as the fill value, for
    images whose writer leaves chunks that hold only the fill value unwritten (zarr 3's
    ``write_empty_chunks=False``)."""

    def __init__(
        self, path: str | os.PathLike, *, axes: str | None = None, missing_chunks: str = "error"
    ):
        if missing_chunks not in MISSING_CHUNKS:
            raise ValueError(
                f"missing_chunks must be one of {MISSING_CHUNKS}, got {missing_chunks!r}"
            )
        self.missing_chunks = missing_chunks
        self.path = Path(path)
        self.name = self.path.name
        ms, self.ngff_version = _multiscales(self.path)
        datasets = ms.get("datasets") or []
        if not datasets:
            raise ImageReadError(f"{self.name}: the multiscales metadata lists no scale level")
        level0 = datasets[0]["path"]
        group = _open_group(self.path)
        try:
            self._array = group[level0]
        except KeyError:
            raise ImageReadError(
                f"{self.name}: scale level '{level0}' (level 0) is listed in the metadata but "
                "missing from the store; copy the image again"
            ) from None
        self.shape = tuple(int(n) for n in self._array.shape)
        self.dtype = check_dtype(self._array.dtype, source=self.name)
        names = [a["name"] if isinstance(a, dict) else a for a in ms.get("axes", [])]
        native = "".join(_FROM_NGFF.get(str(n).lower(), "Q") for n in names)
        if axes is None:
            try:
                axes = validate_axes(native, self.shape, source=self.name)
            except AxesError as exc:
                raise AxesError(
                    f"{exc}; the image's axes {names} cannot be used as they are: pass "
                    "axes=... (CLI: --axes), e.g. 'ZYX'"
                ) from None
        self.axes = validate_axes(axes, self.shape, source=self.name)
        if self.axes[-2:] != "YX":
            raise AxesError(f"{self.name}: axes {self.axes} must end in YX for OME-Zarr")
        self.pixel_size, self.unit = _pixel_size(ms, datasets[0], self.axes)
        self.bit_depth_hint = None

    def _missing(self, outer_index: tuple[int, ...]) -> list[str]:
        """The store keys of the plane's chunks that the store does not hold."""
        from zarr.core.sync import sync

        meta = self._array.metadata
        grid = getattr(getattr(meta, "chunk_grid", None), "chunk_shape", None) or meta.chunks
        ranges = [
            [outer_index[i] // c] if i < len(outer_index) else range(math.ceil(n / c))
            for i, (n, c) in enumerate(zip(self.shape, grid))
        ]
        store, prefix = self._array.store_path.store, self._array.store_path.path
        keys = [
            "/".join(filter(None, (prefix, meta.encode_chunk_key(tuple(coords)))))
            for coords in itertools.product(*ranges)
        ]
        return [k for k in keys if not sync(store.exists(k))]

    def read_block(self, outer_index: tuple[int, ...]) -> np.ndarray:
        key = tuple(outer_index) + (slice(None), slice(None))  # the axes end in YX
        if self.missing_chunks == "error":
            missing = self._missing(tuple(outer_index))
            if missing:
                more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
                unfinished = unfinished_output(self.path)
                if unfinished:
                    raise ImageReadError(
                        f"{self.name}: plane {tuple(outer_index)} was never written: {unfinished}"
                    )
                raise ImageReadError(
                    f"{self.name}: plane {tuple(outer_index)} has no chunk {missing[0]}{more} "
                    "in the store, which zarr would read as the fill value "
                    f"{self._array.fill_value}; the image is incomplete (a lost or unfinished "
                    "copy): copy it again. If its writer leaves chunks of only the fill value "
                    "unwritten, pass --missing-chunks fill"
                )
        try:
            return np.asarray(self._array[key])
        except Exception as exc:  # a missing or damaged chunk: codec, I/O or zarr errors
            raise ImageReadError(
                f"{self.name}: cannot read plane {tuple(outer_index)} ({type(exc).__name__}: "
                f"{exc}); the chunk is damaged or missing, copy the image again"
            ) from None

    def close(self) -> None:
        pass


def _pixel_size(ms: dict, dataset: dict, axes: str) -> tuple[dict[str, float], str | None]:
    """Pixel sizes of level 0 from its scale transform and the axes' units (one unit: the X
    axis's, as everywhere in microvae)."""
    scale = None
    for t in dataset.get("coordinateTransformations") or []:
        if t.get("type") == "scale":
            scale = t.get("scale")
    units = {}
    for letter, a in zip(axes, ms.get("axes", [])):
        if isinstance(a, dict) and a.get("unit"):
            units[letter] = normalise_unit(a["unit"])
    unit = units.get("X") or units.get("Y")
    if scale is None or unit is None:
        return {}, None
    sizes = {a: float(s) for a, s in zip(axes, scale) if a in "ZYX" and units.get(a) == unit}
    return sizes, unit


def zarr_progress(path: str | os.PathLike) -> tuple[bool, set[int]]:
    """(complete, planes done) of an image written by :class:`ZarrPlaneWriter`; (False, {})
    for a path that is absent or not such an image."""
    path = Path(path)
    if not is_zarr(path):
        return False, set()
    try:
        attrs = dict(_open_group(path).attrs).get("microvae", {})
    except ImageReadError:
        return False, set()
    if attrs.get("complete"):
        return True, set(range(int(attrs.get("planes", 0))))
    return False, _markers(path)


def unfinished_output(path: str | os.PathLike) -> str | None:
    """Why ``path`` is not to be trusted as a finished image, if it is an OME-Zarr output of
    microvae whose run stopped before every plane was in ("unfinished microvae output: 2 of
    4 planes written; ..."); None for a complete one or any other path. The unwritten
    planes read as zeros, and viewers such as napari show the image as if it were whole."""
    path = Path(path)
    if not is_zarr(path):
        return None
    try:
        attrs = dict(_open_group(path).attrs).get("microvae")
    except ImageReadError:
        return None
    if not isinstance(attrs, dict) or attrs.get("complete", True):
        return None
    n = int(attrs.get("planes", 0))
    return (
        f"unfinished microvae output: {len(_markers(path))} of {n} planes written (the others "
        "read as zeros); finish it with the same microvae predict command and --resume"
    )


_DONE = ".microvae-done"


def _markers(path: Path) -> set[int]:
    folder = path / _DONE
    if not folder.is_dir():
        return set()
    return {int(p.name) for p in folder.iterdir() if p.name.isdigit()}


class ZarrPlaneWriter:
    """An NGFF 0.5 OME-Zarr image written block by block (plane by plane), resumably.

    ``axes`` from TCZYX in that order (NGFF's), Y and X last. A block spans ``block_axes``
    (``YX``: a plane; ``CYX``: a plane of every channel, as latent maps), one chunk each;
    block k is the k-th in C order over the other axes. If ``path`` holds an unfinished image
    of the same shape and dtype written by this class, its done blocks are kept
    (``planes_done``) and the rest can be written; anything else there is an error unless
    ``overwrite``. ``close()`` marks the image complete once every block is in.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        shape: tuple[int, ...],
        dtype: np.dtype | str,
        axes: str,
        pixel_size: dict[str, float] | None = None,
        unit: str | None = "um",
        overwrite: bool = False,
        block_axes: str = "YX",
    ):
        self.path = Path(path)
        shape, dtype = tuple(int(n) for n in shape), np.dtype(dtype)
        axes = self._check(shape, axes, block_axes)
        self.shape, self.dtype, self.axes = shape, dtype, axes
        self._block = [a in block_axes for a in axes]
        self._outer = tuple(n for n, b in zip(shape, self._block) if not b)
        self.block_shape = tuple(n for n, b in zip(shape, self._block) if b)
        self.n_planes = math.prod(self._outer)
        if self.path.exists() and overwrite:
            if not is_zarr(self.path):
                raise ImageWriteError(
                    f"{self.path}: exists and is no Zarr store; it is not replaced: remove it"
                )
            shutil.rmtree(self.path)  # the old chunks and markers with it
        if self.path.exists():
            done = self._continue()
        else:
            self._create(pixel_size, unit)
            done = set()
        # every block as a chunk, even one of only the fill value (zarr 3 skips those by
        # default): a reader tells a missing chunk from a written one by the store's listing
        self._array = self._array.with_config({"write_empty_chunks": True})
        self._done_dir = self.path / _DONE
        self._done_dir.mkdir(exist_ok=True)
        self.planes_done = set(done)

    def _check(self, shape: tuple[int, ...], axes: str, block_axes: str) -> str:
        """The axes, checked: NGFF's TCZYX order, the block inside them, the folder there."""
        name = self.path.name
        axes = validate_axes(axes, shape, source=name)
        if set(axes) - set(_TO_NGFF) or list(axes) != sorted(axes, key="TCZYX".index):
            hint = " (Q: the file does not name its stack axis)" if "Q" in axes else ""
            raise ImageWriteError(
                f"{name}: axes {axes}{hint} cannot be written as OME-Zarr, which needs axes "
                "from TCZYX in that order; pass --axes (e.g. ZYX or TYX), or --format tiff"
            )
        if not set("YX") <= set(block_axes) <= set(axes):
            raise ValueError(f"block_axes {block_axes!r} must hold Y and X and lie in {axes}")
        if not self.path.parent.is_dir():
            raise ImageWriteError(f"{self.path}: folder {self.path.parent} does not exist")
        return axes

    def _continue(self) -> set[int]:
        """Open the unfinished image of the same shape and dtype at ``path``; its done
        blocks. Anything else there is an error."""
        complete, done = zarr_progress(self.path)
        try:
            old = _open_group(self.path)["0"]
            same = tuple(old.shape) == self.shape and np.dtype(old.dtype) == self.dtype
        except (ImageReadError, KeyError):
            same = False
        if not same or complete:
            raise ImageWriteError(
                f"{self.path}: already exists"
                + (" and is complete" if same and complete else " and holds another image")
                + "; remove it, or pass overwrite (CLI: without --resume it is replaced)"
            )
        self._group = _zarr().open_group(str(self.path), mode="r+")
        self._array = self._group["0"]
        return done

    def _create(self, pixel_size: dict[str, float] | None, unit: str | None) -> None:
        """A new image: the array, chunked by block, and its NGFF 0.5 metadata."""
        zarr = _zarr()
        from ome_zarr.format import FormatV05
        from ome_zarr.writer import write_multiscales_metadata

        shape, axes = self.shape, self.axes
        try:
            self._group = zarr.open_group(str(self.path), mode="w", zarr_format=3)
        except PermissionError as exc:
            raise ImageWriteError(
                f"{self.path}: cannot write ({exc.strerror}); choose a writable folder"
            ) from exc
        self._array = self._group.create_array(
            "0",
            shape=shape,
            dtype=self.dtype,
            chunks=tuple(n if b else 1 for n, b in zip(shape, self._block)),
            fill_value=0,
        )
        pixel_size = {a: float(v) for a, v in (pixel_size or {}).items() if a in axes}
        unit = normalise_unit(unit) if pixel_size else None
        ngff_axes = []
        for a in axes:
            entry = {"name": _TO_NGFF[a], "type": _NGFF_TYPES[a]}
            if a in pixel_size and unit in _NGFF_UNITS:
                entry["unit"] = _NGFF_UNITS[unit]
            ngff_axes.append(entry)
        scale = [pixel_size.get(a, 1.0) if unit in _NGFF_UNITS else 1.0 for a in axes]
        write_multiscales_metadata(
            self._group,
            [{"path": "0", "coordinateTransformations": [{"type": "scale", "scale": scale}]}],
            fmt=FormatV05(),
            axes=ngff_axes,
            name=self.path.name,
        )
        self._group.attrs["microvae"] = {"complete": False, "planes": self.n_planes}

    @classmethod
    def reopen(cls, path: str | os.PathLike) -> ZarrPlaneWriter:
        """An unfinished image written by this class, opened to go on (or to be closed once
        other processes have written its planes); shape, dtype and axes from the store."""
        path = Path(path)
        complete, _ = zarr_progress(path)
        group = _open_group(path)
        try:
            array = group["0"]
            ms = dict(group.attrs)["ome"]["multiscales"][0]
        except KeyError:
            raise ImageWriteError(f"{path.name}: not an image written by microvae") from None
        axes = "".join(_FROM_NGFF[a["name"]] for a in ms["axes"])
        block = "CYX" if "C" in axes else "YX"
        if complete:
            raise ImageWriteError(f"{path.name}: already complete; nothing to reopen")
        return cls(path, shape=array.shape, dtype=array.dtype, axes=axes, block_axes=block)

    def write(self, k: int, plane: np.ndarray) -> None:
        """Write block ``k`` (C order over the axes outside the block; shape ``block_shape``)
        and record it as done."""
        plane = np.asarray(plane)
        if not 0 <= k < self.n_planes or plane.shape != self.block_shape:
            raise ImageWriteError(
                f"{self.path.name}: plane {k} of shape {plane.shape} does not fit "
                f"{self.n_planes} planes of shape {self.block_shape}"
            )
        where = iter(int(i) for i in np.unravel_index(k, self._outer)) if self._outer else None
        key = tuple(slice(None) if b else next(where) for b in self._block)
        self._array[key] = plane.astype(self.dtype, copy=False)
        # after the chunk is written: a half-written one is not done
        (self._done_dir / str(k)).touch()
        self.planes_done.add(k)

    def close(self) -> Path:
        """Mark the image complete; every plane must be done."""
        missing = sorted(set(range(self.n_planes)) - self.planes_done)
        if missing:
            raise ImageWriteError(
                f"{self.path.name}: {len(missing)} of {self.n_planes} planes not written "
                f"(first: {missing[0]}); run again with --resume to finish it"
            )
        self._group.attrs["microvae"] = {"complete": True, "planes": self.n_planes}
        shutil.rmtree(self._done_dir, ignore_errors=True)
        return self.path

    def abort(self) -> None:
        """Keep what is done (for a resumed run); the image stays marked incomplete."""
        _log.info(
            "%s: stopped with %d of %d planes", self.path.name, len(self.planes_done), self.n_planes
        )
