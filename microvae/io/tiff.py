"""Reading and writing TIFF, ImageJ hyperstacks and OME-TIFF (compressed too, via imagecodecs).

:class:`TiffReader` reads a series page by page (for :func:`microvae.io.open_image`), so a
stack larger than memory can be walked with ``iter_planes()``. ``write_image`` writes ImageJ
hyperstacks where ImageJ can hold the data (uint8, uint16, float32 with axes in TZCYX order)
and OME-TIFF otherwise, always atomically; :class:`TiffPlaneWriter` writes them plane by
plane.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import tifffile

from ..errors import AxesError, ImageReadError, ImageWriteError, MicrovaeError
from .atomic import _umask, atomic_path, temp_path
from .axes import from_tifffile_axes, validate_axes
from .metadata import normalise_unit, read_physical_metadata
from .record import ArrayReader, block_axes, check_dtype, outer_axes

__all__ = ["write_image", "TiffPlaneWriter", "TiffReader"]

_log = logging.getLogger(__name__)


class _CollectErrors(logging.Handler):
    """Collects the errors tifffile logs (instead of raising) while it parses a file."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextlib.contextmanager
def _tiff_errors(name: str) -> Iterator[_CollectErrors]:
    """Turn anything tifffile or a codec raises or logs as an error into ImageReadError."""
    logger = logging.getLogger("tifffile")
    handler = _CollectErrors()
    logger.addHandler(handler)
    try:
        yield handler
    except MicrovaeError:
        raise
    except Exception as exc:  # tifffile, imagecodecs, struct and OS errors alike
        if isinstance(exc, tifffile.TiffFileError) and "not a TIFF" in str(exc):
            raise ImageReadError(
                f"{name}: not a TIFF file (it does not start with a TIFF header); pass a "
                ".tif/.tiff image, or convert the file to TIFF"
            ) from exc
        raise ImageReadError(
            f"{name}: cannot read TIFF ({type(exc).__name__}: {exc}); the file is corrupt, "
            "truncated or not a TIFF: copy or export it again"
        ) from exc
    finally:
        logger.removeHandler(handler)
    if handler.messages:
        raise ImageReadError(
            f"{name}: corrupt or truncated TIFF ({handler.messages[0]}); copy or export it again"
        )


class TiffReader:
    """Blocks of one series of a TIFF file, read page by page where the layout allows."""

    def __init__(self, path: Path, *, series: int = 0, axes: str | None = None):
        self.path, self.name, self._series = path, path.name, series
        self._tif: tifffile.TiffFile | None = None
        self._whole: np.ndarray | None = None
        tif = self._handle()
        with _tiff_errors(self.name):
            if not 0 <= series < len(tif.series):
                raise ImageReadError(
                    f"{self.name}: series {series} does not exist; the file has "
                    f"{len(tif.series)} series (0..{len(tif.series) - 1})"
                )
            s = tif.series[series]
            self.shape = tuple(int(n) for n in s.shape)
            self.dtype = check_dtype(s.dtype, source=self.name)
            page_shape = tuple(s.keyframe.shape)
            n_pages = len(s.pages)
            self.dataoffset = s.dataoffset
            self.pixel_size, self.unit, self.bit_depth_hint = read_physical_metadata(
                tif, series, from_tifffile_axes(s.axes)
            )
        if axes is None:
            native = from_tifffile_axes(s.axes)
            try:
                axes = validate_axes(native, self.shape, source=self.name)
            except AxesError as exc:
                raise AxesError(
                    f"{exc}; the file's axes {s.axes!r} cannot be used as they are: pass "
                    "axes=... (CLI: --axes), e.g. 'ZYX'"
                ) from None
        self.axes = validate_axes(axes, self.shape, source=self.name)
        k = len(page_shape)
        page_axes = self.axes[-k:] if k else ""
        outer = self.axes[:-k] if k else self.axes
        self._page_axes = page_axes
        self._outer_sizes = tuple(self.shape[: len(outer)])
        self._by_page = (
            page_shape == self.shape[-k:]
            and set(page_axes) in ({"Y", "X"}, {"Y", "X", "S"})
            and outer == outer_axes(self.axes)
            and n_pages == math.prod(self._outer_sizes)
        )
        if not self._by_page:
            _log.info("%s: layout not readable page by page; memory-mapping or loading", self.name)

    def _handle(self) -> tifffile.TiffFile:
        if self._tif is None:
            _check_file(self.path)
            with _tiff_errors(self.name):
                tif = tifffile.TiffFile(self.path)
                try:
                    tif.series  # noqa: B018 -- parses the pages now, so errors surface here
                except BaseException:
                    tif.close()
                    raise
            self._tif = tif
        return self._tif

    def _read_page(self, outer_index: tuple[int, ...]) -> np.ndarray:
        tif = self._handle()
        key = int(np.ravel_multi_index(outer_index, self._outer_sizes)) if outer_index else 0
        with _tiff_errors(self.name):
            page = tif.series[self._series].pages[key]
            size = tif.filehandle.size
            for offset, count in zip(page.dataoffsets, page.databytecounts):
                if offset + count > size:
                    raise ImageReadError(
                        f"{self.name}: truncated TIFF: plane {key} needs bytes up to "
                        f"{offset + count} but the file has {size}; copy or export it again"
                    )
            block = tif.asarray(key=key, series=self._series)
        order = [self._page_axes.index(a) for a in block_axes(self._page_axes)]
        return np.transpose(block, order)

    def _whole_array(self) -> np.ndarray:
        if self._whole is None:
            with _tiff_errors(self.name):
                if self.dataoffset is not None:  # contiguous and uncompressed: map, don't load
                    arr = tifffile.memmap(self.path, series=self._series, mode="r")
                else:
                    _log.warning("%s: compressed layout without pages; loading it whole", self.name)
                    arr = self._handle().series[self._series].asarray()
            self._whole = ArrayReader(np.reshape(arr, self.shape), self.axes)
        return self._whole

    def read_block(self, outer_index: tuple[int, ...]) -> np.ndarray:
        if self._by_page:
            return self._read_page(outer_index)
        return np.array(self._whole_array().read_block(outer_index))

    def close(self) -> None:
        if self._tif is not None:
            self._tif.close()
            self._tif = None
        self._whole = None

    def __getstate__(self) -> dict:
        # A reader travels to DataLoader workers without its file handle; it reopens there.
        state = self.__dict__.copy()
        state["_tif"], state["_whole"] = None, None
        return state


def _check_file(path: Path) -> None:
    if not path.exists():
        raise ImageReadError(f"{path}: file not found; check the path")
    if path.is_dir():
        raise ImageReadError(
            f"{path}: is a folder, neither a TIFF file nor an OME-Zarr image; pass the images "
            "inside it"
        )
    if path.stat().st_size == 0:
        raise ImageReadError(f"{path.name}: file is empty (0 bytes); copy or export it again")


_OME_UNITS = {"um": "µm", "nm": "nm", "mm": "mm", "cm": "cm", "m": "m", "A": "Å"}
_IMAGEJ_DTYPES = (np.uint8, np.uint16, np.float32)


def _imagej_compatible(axes: str, dtype: np.dtype) -> bool:
    order = "TZCYX"
    return (
        dtype in _IMAGEJ_DTYPES
        and set(axes) <= set(order)
        and list(axes) == sorted(axes, key=order.index)
    )


def _tiff_kwargs(
    path: Path,
    shape: tuple[int, ...],
    dtype: np.dtype | str,
    axes: str,
    pixel_size: dict[str, float] | None,
    unit: str | None,
) -> dict:
    """tifffile.imwrite's arguments for an image of ``shape``, ``dtype`` and ``axes`` with its
    pixel size: an ImageJ hyperstack where ImageJ can hold it, an OME-TIFF otherwise."""
    shape, dtype = tuple(int(n) for n in shape), np.dtype(dtype)
    try:
        axes = validate_axes(axes, shape, source=path.name)
        check_dtype(dtype, source=path.name)
    except MicrovaeError as exc:
        raise ImageWriteError(str(exc)) from None
    pixel_size = {ax: float(v) for ax, v in (pixel_size or {}).items() if ax in axes}
    unit = normalise_unit(unit) if pixel_size else None
    if pixel_size and unit is None:
        raise ImageWriteError(
            f"{path.name}: pixel_size given with an unknown unit; use 'um' or 'nm'"
        )
    if not path.parent.is_dir():
        raise ImageWriteError(f"{path}: folder {path.parent} does not exist; create it first")
    kwargs: dict = {"shape": shape, "dtype": dtype}
    if _imagej_compatible(axes, dtype):
        meta: dict = {"axes": axes}
        if pixel_size:
            meta["unit"] = unit
            if "Z" in pixel_size:
                meta["spacing"] = pixel_size["Z"]
            if "X" in pixel_size and "Y" in pixel_size:
                kwargs["resolution"] = (1 / pixel_size["X"], 1 / pixel_size["Y"])
        kwargs.update(imagej=True, metadata=meta)
    else:
        meta = {"axes": axes}
        for ax, size in pixel_size.items():
            meta[f"PhysicalSize{ax}"] = size
            meta[f"PhysicalSize{ax}Unit"] = _OME_UNITS[unit]
        kwargs.update(ome=True, metadata=meta, photometric="minisblack")
        if "S" in axes:
            kwargs["planarconfig"] = "contig" if axes.endswith("S") else "separate"
    return kwargs


def write_image(
    path: str | os.PathLike,
    data: np.ndarray | Iterable[np.ndarray],
    *,
    axes: str,
    pixel_size: dict[str, float] | None = None,
    unit: str | None = "um",
    shape: tuple[int, ...] | None = None,
    dtype: np.dtype | str | None = None,
    compression: str | None = None,
) -> Path:
    """Write an image as TIFF with its axes and pixel size, atomically.

    Args:
        path: output file; its folder must exist.
        data: the array, or an iterable of blocks (2D planes, or YXS planes) in C order over
            the other axes, so that a large stack is written without holding it (then give
            ``shape`` and ``dtype``).
        axes: axes of ``data`` (e.g. ``"ZYX"``); kept in the file.
        pixel_size: size per spatial axis (``"X"``, ``"Y"``, ``"Z"``) in ``unit``.
        unit: length unit of ``pixel_size`` (``"um"``, ``"nm"``, ...).
        compression: None, or a tifffile codec name such as ``"zlib"`` or ``"zstd"``.

    Returns:
        The path written. The file is an ImageJ hyperstack for uint8/uint16/float32 data with
        axes in TZCYX order, an OME-TIFF otherwise.

    Raises:
        ImageWriteError: the folder is missing or not writable, or data and axes disagree.
    """
    path = Path(path)
    if isinstance(data, np.ndarray):
        shape, dtype = data.shape, data.dtype
    elif shape is None or dtype is None:
        raise ImageWriteError(
            f"{path.name}: writing from an iterable of planes needs shape and dtype"
        )
    kwargs = _tiff_kwargs(path, shape, dtype, axes, pixel_size, unit)
    kwargs["compression"] = compression
    try:
        with atomic_path(path) as tmp:
            tifffile.imwrite(tmp, data, **kwargs)
    except PermissionError as exc:
        raise ImageWriteError(
            f"{path}: cannot write ({exc.strerror}); choose a writable folder"
        ) from exc
    except (ValueError, TypeError) as exc:
        raise ImageWriteError(f"{path.name}: cannot write image ({exc})") from exc
    return path


class TiffPlaneWriter:
    """An uncompressed TIFF written plane by plane, atomically (an ImageJ hyperstack or
    OME-TIFF, as :func:`write_image` writes it).

    The file is laid out whole under a hidden temporary name beside ``path``; planes are
    written into it with ``write(k, plane)`` (k: the plane's C-order index over the axes
    other than Y and X), and ``close()`` renames it to ``path`` once every plane is in.
    ``abort()`` (or an error) removes it: a file under ``path`` is always complete. Nothing
    is memory-mapped, so memory stays one plane whatever the stack's size.
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
    ):
        path = Path(path)
        kwargs = _tiff_kwargs(path, shape, dtype, axes, pixel_size, unit)
        axes, shape = validate_axes(axes, shape, source=path.name), tuple(kwargs["shape"])
        spatial = axes.index("Y"), axes.index("X")
        if any(n != 1 for a, n in zip(axes[spatial[0] :], shape[spatial[0] :]) if a not in "YX"):
            raise ImageWriteError(
                f"{path.name}: axes {axes} put another axis after Y; plane-by-plane writing "
                "needs Y and X last (e.g. ZYX)"
            )
        self.path, self.shape = path, shape
        # little-endian whatever the machine: the bytes written below match the header
        self.dtype = np.dtype(kwargs["dtype"]).newbyteorder("<")
        self.n_planes = math.prod(shape[: spatial[0]])
        self._plane_bytes = shape[spatial[0]] * shape[spatial[1]] * self.dtype.itemsize
        self._written = np.zeros(self.n_planes, bool)
        self._tmp = temp_path(path)
        try:
            self._offset, _ = tifffile.imwrite(
                self._tmp, byteorder="<", returnoffset=True, **kwargs
            )
            self._fh = open(self._tmp, "r+b")
        except BaseException as exc:
            self._tmp.unlink(missing_ok=True)
            if isinstance(exc, PermissionError):
                raise ImageWriteError(
                    f"{path}: cannot write ({exc.strerror}); choose a writable folder"
                ) from exc
            raise

    def write(self, k: int, plane: np.ndarray) -> None:
        """Write plane ``k`` (its Y, X shape; cast to the file's dtype)."""
        plane = np.asarray(plane)
        if not 0 <= k < self.n_planes or plane.size * self.dtype.itemsize != self._plane_bytes:
            raise ImageWriteError(
                f"{self.path.name}: plane {k} of shape {plane.shape} does not fit a stack of "
                f"{self.n_planes} planes of shape {self.shape[-2:]}"
            )
        self._fh.seek(self._offset + k * self._plane_bytes)
        self._fh.write(np.ascontiguousarray(plane, dtype=self.dtype).tobytes())
        self._written[k] = True

    def close(self) -> Path:
        """Rename the finished file to its name; every plane must have been written."""
        missing = np.flatnonzero(~self._written)
        if len(missing):
            self.abort()
            raise ImageWriteError(
                f"{self.path.name}: {len(missing)} of {self.n_planes} planes never written "
                f"(first: {missing[0]}); the file was not kept"
            )
        try:
            self._fh.flush()
            os.fsync(self._fh.fileno())  # before the rename: never a renamed empty file
            self._fh.close()
            os.chmod(self._tmp, 0o666 & ~_umask())
            os.replace(self._tmp, self.path)
        except BaseException:
            self.abort()
            raise
        return self.path

    def abort(self) -> None:
        """Remove the unfinished file; ``path`` stays as it was."""
        if not self._fh.closed:
            self._fh.close()
        self._tmp.unlink(missing_ok=True)
