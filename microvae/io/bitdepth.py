"""Effective bit depth: how many intensity levels the data really uses.

12-bit cameras store their data in uint16 files; a model that treats such data as 16-bit wastes
15/16 of its discrete likelihood on levels that never occur, and reports bits/dim that cannot be
compared. The rule, in order:

1. integer-valued data (any integer dtype, or float data whose values are all integers) with a
   negative value, or a maximum above 65535, has no bit depth (None: continuous);
2. an explicit hint from the file (OME ``SignificantBits``, a TIFF ``BitsPerSample`` other than
   8/16/32) is used when the data fit in it;
3. data that fit in 8 bits and are stored in 8 bits (uint8/int8, or integer-valued float data
   with maximum <= 255) are 8-bit;
4. otherwise the smallest of 12, 14 and 16 bits that holds the maximum: wider containers are
   taken to hold camera data, which is never below 12 bits in practice (a dim 12-bit image whose
   maximum is 1900 is still 12-bit data, and so is the next image from the same camera).

Float data with non-integer values are continuous (None).
"""

from __future__ import annotations

import numpy as np

__all__ = ["CAMERA_BIT_DEPTHS", "effective_bit_depth"]

CAMERA_BIT_DEPTHS = (12, 14, 16)


def effective_bit_depth(
    dtype: np.dtype,
    vmin: float,
    vmax: float,
    *,
    integer_valued: bool,
    hint: int | None = None,
) -> int | None:
    """Bit depth (1 to 16) of data with the given dtype and value range, or None if continuous.

    Args:
        dtype: storage dtype of the data.
        vmin, vmax: smallest and largest value in the data.
        integer_valued: whether every value is an integer (always True for integer dtypes).
        hint: bit depth declared by the file, if any.
    """
    dtype = np.dtype(dtype)
    if not integer_valued or vmin < 0 or vmax > 65535:
        return None
    needed = max(int(vmax), 1).bit_length()
    if hint is not None and needed <= hint <= 16:
        return int(hint)
    stored_in_8_bits = dtype.itemsize == 1 or dtype.kind == "f"
    if stored_in_8_bits and needed <= 8:
        return 8
    return next(b for b in CAMERA_BIT_DEPTHS if needed <= b)
