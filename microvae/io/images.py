"""Opening images of any supported format: TIFF (ImageJ, OME-TIFF) and OME-Zarr."""

from __future__ import annotations

import os
from pathlib import Path

from .omezarr import ZarrReader, is_zarr
from .record import ArrayReader, ImageRecord
from .tiff import TiffReader

__all__ = ["open_image", "read_image"]


def open_image(
    path: str | os.PathLike,
    *,
    channel: int | None = None,
    axes: str | None = None,
    series: int = 0,
    missing_chunks: str = "error",
) -> ImageRecord:
    """Open an image lazily: metadata now, pixels when planes are read.

    Args:
        path: TIFF, ImageJ hyperstack or OME-TIFF file, or an OME-Zarr image (a folder, NGFF
            0.4 or 0.5; its level 0, read chunk by chunk).
        channel: index along the C (or S) axis to keep; None keeps all channels.
        axes: override the axes the file declares, e.g. ``"ZYX"`` for a page stack that the
            file calls ``QYX``.
        series: which image series of a multi-series TIFF.
        missing_chunks: OME-Zarr: a plane with a chunk missing from the store is an error
            (``"error"``), or reads as the fill value (``"fill"``: for writers that leave
            chunks of only the fill value unwritten).

    Returns:
        An :class:`ImageRecord`; call ``close()`` (or use ``with``) to release the file.

    Raises:
        ImageReadError, AxesError, ChannelError: with the file name and the fix.

    Example:
        >>> with open_image("stack.tif", channel=1) as rec:     # doctest: +SKIP
        ...     for index, plane in rec.iter_planes():
        ...         print(index, plane.shape)
    """
    path = Path(path)
    if is_zarr(path):
        reader = ZarrReader(path, axes=axes, missing_chunks=missing_chunks)
    else:
        reader = TiffReader(path, series=series, axes=axes)
    try:
        return ImageRecord(
            reader,
            path=path,
            channel=channel,
            pixel_size=reader.pixel_size,
            unit=reader.unit,
            bit_depth_hint=reader.bit_depth_hint,
        )
    except BaseException:
        reader.close()
        raise


def read_image(
    path: str | os.PathLike,
    *,
    channel: int | None = None,
    axes: str | None = None,
    series: int = 0,
    missing_chunks: str = "error",
) -> ImageRecord:
    """Read a whole image into memory; same arguments as :func:`open_image`.

    The returned record's ``data`` is an in-memory array of ``shape`` in ``axes`` order, its
    dtype as stored; values are checked to be finite.
    """
    with open_image(
        path, channel=channel, axes=axes, series=series, missing_chunks=missing_chunks
    ) as lazy:
        data = lazy.data
        return ImageRecord(
            ArrayReader(data, lazy.axes),
            path=lazy.path,
            pixel_size=lazy.pixel_size,
            unit=lazy.unit,
            bit_depth_hint=lazy._bit_depth_hint,
            file_channel=lazy.channel,
        )
