"""The image record: an array (or a lazy view of a file) with its axes and physical metadata.

A record keeps the file's axes order. Internally, data are read in *blocks*: one block is a
2D plane (``YX``) or a plane with its samples (``YXS``); every other axis is an *outer* axis
that the reader indexes. That is what lets a 2D model walk through a stack larger than memory
one plane at a time.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Protocol

import numpy as np

from ..errors import AxesError, ChannelError, ImageReadError
from .axes import channel_axis, plane_axes, validate_axes
from .bitdepth import effective_bit_depth

__all__ = ["ImageRecord", "ValueStats", "BlockReader", "ArrayReader", "check_dtype"]


class BlockReader(Protocol):
    """What a record reads its data from (a TIFF file, or an array in memory)."""

    axes: str  # full axes of the source, in its own order
    shape: tuple[int, ...]
    dtype: np.dtype

    def read_block(self, outer_index: tuple[int, ...]) -> np.ndarray:
        """Block at ``outer_index`` (over the axes other than Y, X, S), shape (Y, X[, S])."""

    def close(self) -> None: ...


def check_dtype(dtype: np.dtype, *, source: str) -> np.dtype:
    """Return ``dtype`` if microvae can read it; raise ImageReadError for bool, complex, etc."""
    dtype = np.dtype(dtype)
    if dtype.kind not in "uif":
        raise ImageReadError(
            f"{source}: unsupported pixel type {dtype} (microvae reads unsigned/signed integer "
            "and float images); convert the image to uint8, uint16 or float32"
        )
    return dtype


def outer_axes(axes: str) -> str:
    return "".join(a for a in axes if a not in "YXS")


def block_axes(axes: str) -> str:
    return "YXS" if "S" in axes else "YX"


class ArrayReader:
    """Blocks of an in-memory array (no copy: a transposed view)."""

    def __init__(self, array: np.ndarray, axes: str):
        self.axes, self.shape, self.dtype = axes, tuple(array.shape), array.dtype
        order = [axes.index(a) for a in outer_axes(axes) + block_axes(axes)]
        self._canonical = np.transpose(array, order)

    def read_block(self, outer_index: tuple[int, ...]) -> np.ndarray:
        return self._canonical[outer_index]

    def close(self) -> None:
        pass


@dataclass(frozen=True)
class ValueStats:
    """Value range of an image, found by one pass over its planes."""

    min: float
    max: float
    integer_valued: bool


class ImageRecord:
    """An image with its axes, dtype, bit depth and pixel size; eager or lazy.

    Attributes:
        path: file it came from, or None for an array.
        axes: axes string in the data's order, e.g. ``"ZYX"``; the chosen channel's axis is gone.
        shape: shape in ``axes`` order.
        dtype: numpy dtype as stored.
        pixel_size: physical size per spatial axis (``"X"``, ``"Y"``, ``"Z"``) in ``unit``;
            only the sizes the file declares.
        unit: unit of ``pixel_size`` (``"um"``, ``"nm"``, ...), or None when unknown.
        channel: index of the channel chosen from the file's C or S axis, or None.

    Use ``iter_planes()`` to walk a stack plane by plane (memory: a few planes); ``data`` loads
    the whole image. Both check that values are finite.
    """

    def __init__(
        self,
        reader: BlockReader,
        *,
        path: Path | None = None,
        channel: int | None = None,
        pixel_size: dict[str, float] | None = None,
        unit: str | None = None,
        bit_depth_hint: int | None = None,
        file_channel: int | None = None,
    ):
        """Wrap ``reader``; ``channel`` selects from its C/S axis, ``file_channel`` only records
        which channel an already-selected array came from."""
        self._reader = reader
        self.path = path
        self.pixel_size = dict(pixel_size or {})
        self.unit = unit
        self._bit_depth_hint = bit_depth_hint
        self.dtype = check_dtype(reader.dtype, source=self.name)
        if 0 in reader.shape:
            raise ImageReadError(f"{self.name}: image is empty (shape {tuple(reader.shape)})")
        self._channel_axis = channel_axis(reader.axes)
        if channel is not None:
            self._check_channel(channel)
        self._selected = channel
        self.channel = channel if channel is not None else file_channel
        if channel is None:
            self.axes, self.shape = reader.axes, tuple(reader.shape)
        else:
            k = reader.axes.index(self._channel_axis)
            self.axes = reader.axes.replace(self._channel_axis, "")
            self.shape = tuple(reader.shape[:k] + reader.shape[k + 1 :])

    @classmethod
    def from_array(
        cls,
        array: np.ndarray,
        axes: str,
        *,
        channel: int | None = None,
        pixel_size: dict[str, float] | None = None,
        unit: str | None = None,
    ) -> ImageRecord:
        """Wrap an in-memory array (no copy). ``axes`` must match ``array.ndim``."""
        array = np.asarray(array)
        axes = validate_axes(axes, array.shape, source="array")
        return cls(ArrayReader(array, axes), channel=channel, pixel_size=pixel_size, unit=unit)

    # -- description -------------------------------------------------------------------------

    @property
    def name(self) -> str:
        """File name for messages, or ``"array"``."""
        return self.path.name if self.path is not None else "array"

    @property
    def plane_axes(self) -> str:
        """Axes that a 2D model iterates over (all but Y, X and channel axes)."""
        return plane_axes(self.axes)

    @property
    def n_planes(self) -> int:
        """Number of 2D planes a 2D model sees (per channel)."""
        return math.prod(self.shape[self.axes.index(a)] for a in self.plane_axes)

    @property
    def plane_shape(self) -> tuple[int, int]:
        return (self.shape[self.axes.index("Y")], self.shape[self.axes.index("X")])

    @property
    def n_channels(self) -> int:
        """Size of the remaining channel axis (C or S), 1 if there is none."""
        ax = channel_axis(self.axes)
        return self.shape[self.axes.index(ax)] if ax else 1

    def __repr__(self) -> str:
        return (
            f"ImageRecord({self.name!r}, axes={self.axes!r}, shape={self.shape}, "
            f"dtype={self.dtype}, pixel_size={self.pixel_size}, unit={self.unit!r})"
        )

    # -- reading -----------------------------------------------------------------------------

    def _check_channel(self, channel: int) -> None:
        ax = self._channel_axis
        if ax is None:
            raise ChannelError(
                f"{self.name}: channel={channel} was given but axes {self._reader.axes!r} have "
                "no channel axis (C or S); leave channel unset or pass axes=..."
            )
        n = self._reader.shape[self._reader.axes.index(ax)]
        if not 0 <= channel < n:
            raise ChannelError(
                f"{self.name}: channel {channel} is out of range; axes {self._reader.axes!r} "
                f"have {n} along {ax}, so pass channel=0..{n - 1}"
            )

    def require_single_channel(self) -> None:
        """Raise ChannelError when a channel axis with more than one entry remains."""
        if self.n_channels > 1:
            ax = channel_axis(self.axes)
            word = "samples" if ax == "S" else "channels"
            raise ChannelError(
                f"{self.name}: axes {self.axes} has {self.n_channels} {word}; pass "
                f"channel=0..{self.n_channels - 1} (CLI: --channel) or axes=... to read one plane "
                "at a time"
            )

    def _blocks(
        self, only: Collection[int] | None = None
    ) -> Iterator[tuple[tuple[int, ...], np.ndarray]]:
        """(index over the record's outer axes, block of shape (Y, X[, S])) for every block
        (or for the C-order block numbers in ``only``; the others are not read)."""
        src_outer = outer_axes(self._reader.axes)
        rec_outer = outer_axes(self.axes)
        sizes = [self.shape[self.axes.index(a)] for a in rec_outer]
        selected = self._selected
        for k, idx in enumerate(np.ndindex(*sizes)):
            if only is not None and k not in only:
                continue
            src_idx = tuple(
                selected
                if a == self._channel_axis and selected is not None
                else idx[rec_outer.index(a)]
                for a in src_outer
            )
            block = self._reader.read_block(src_idx)
            if self._channel_axis == "S" and selected is not None:
                block = block[..., selected]
            yield idx, block

    def _check_finite(self, block: np.ndarray) -> None:
        if block.dtype.kind == "f" and not np.isfinite(block).all():
            n_nan = int(np.isnan(block).sum())
            n_inf = int(np.isinf(block).sum())
            raise ImageReadError(
                f"{self.name}: contains {n_nan} NaN and {n_inf} infinite values; replace them "
                "(e.g. numpy.nan_to_num) before using the image"
            )

    def iter_planes(
        self, only: Collection[int] | None = None
    ) -> Iterator[tuple[tuple[int, ...], np.ndarray]]:
        """Yield ``(index, plane)`` for every 2D plane, reading one plane at a time (or for
        the planes whose C-order numbers are in ``only``; the others are not read).

        ``index`` is a tuple over ``plane_axes`` (empty for a 2D image); ``plane`` has shape
        ``plane_shape`` and the record's dtype. Requires a single channel.
        """
        self.require_single_channel()
        for idx, block in self._blocks(only):
            plane = block[..., 0] if block.ndim == 3 else block
            self._check_finite(plane)
            plane_idx = tuple(i for a, i in zip(outer_axes(self.axes), idx) if a not in "C")
            yield plane_idx, np.asarray(plane)

    @property
    def volume_axes(self) -> str:
        """Axes that a 3D model iterates over: the plane axes but Z (e.g. ``T`` for TZYX)."""
        return self.plane_axes.replace("Z", "")

    def require_z(self) -> None:
        """Raise AxesError unless the image has a Z axis (what a 3D model reads)."""
        if "Z" not in self.axes:
            raise AxesError(
                f"{self.name}: axes {self.axes} have no Z; a 3D model reads stacks of planes "
                "(ZYX, TZYX); pass axes=... (CLI: --axes, config: data.axes), e.g. ZYX, if the "
                "file's stack axis is Z, or use a 2D model"
            )

    def iter_volumes(self) -> Iterator[tuple[tuple[int, ...], np.ndarray]]:
        """Yield ``(index, volume)`` for every (Z, Y, X) volume, a 3D model's view: one per
        index over :attr:`volume_axes` (empty for ZYX), read plane by plane (memory: one
        volume). Requires a single channel and a Z axis."""
        self.require_single_channel()
        self.require_z()
        axes = self.plane_axes
        sizes = [self.shape[self.axes.index(a)] for a in axes]
        z = axes.index("Z")
        outer = [n for a, n in zip(axes, sizes) if a != "Z"]
        for index in np.ndindex(*outer):
            numbers = {
                int(np.ravel_multi_index((*index[:z], k, *index[z:]), sizes))
                for k in range(sizes[z])
            }
            # C order: for a fixed outer index the plane numbers grow with z
            planes = [plane for _, plane in self.iter_planes(only=numbers)]
            yield index, np.stack(planes)

    @property
    def data(self) -> np.ndarray:
        """The whole image as an array of ``shape`` in ``axes`` order (loads it all)."""
        out_axes = outer_axes(self.axes) + block_axes(self.axes)
        out = np.empty([self.shape[self.axes.index(a)] for a in out_axes], dtype=self.dtype)
        for idx, block in self._blocks():
            self._check_finite(block)
            out[idx] = block
        return np.transpose(out, [out_axes.index(a) for a in self.axes])

    @cached_property
    def stats(self) -> ValueStats:
        """Minimum, maximum and integer-ness of the values (one pass over the planes)."""
        lo, hi = math.inf, -math.inf
        integer = self.dtype.kind in "ui"
        float_integer = self.dtype.kind == "f"
        for _, block in self._blocks():
            self._check_finite(block)
            lo, hi = min(lo, float(block.min())), max(hi, float(block.max()))
            if float_integer:
                float_integer = bool(np.all(np.mod(block, 1) == 0))
        integer = integer or float_integer
        return ValueStats(min=lo, max=hi, integer_valued=integer)

    @cached_property
    def bit_depth(self) -> int | None:
        """Effective bit depth (see :mod:`microvae.io.bitdepth`); None for continuous data."""
        s = self.stats
        return effective_bit_depth(
            self.dtype, s.min, s.max, integer_valued=s.integer_valued, hint=self._bit_depth_hint
        )

    def close(self) -> None:
        """Release the file handle of a lazy record (reading again reopens it)."""
        self._reader.close()

    def __enter__(self) -> ImageRecord:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
