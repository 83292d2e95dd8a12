"""The effective bit depth rule of microvae.io.bitdepth."""

import numpy as np
import pytest

from microvae.io import effective_bit_depth


@pytest.mark.parametrize(
    "dtype,vmin,vmax,integer,hint,expected",
    [
        ("uint8", 0, 255, True, None, 8),
        ("uint8", 0, 1, True, None, 8),
        ("uint16", 0, 4095, True, None, 12),
        ("uint16", 0, 1900, True, None, 12),  # a dim 12-bit image is still 12-bit
        ("uint16", 0, 200, True, None, 12),
        ("uint16", 100, 4096, True, None, 14),
        ("uint16", 0, 16383, True, None, 14),
        ("uint16", 0, 65535, True, None, 16),
        ("uint16", 0, 1000, True, 10, 10),  # a declared 10-bit file keeps its depth
        ("uint16", 0, 2000, True, 10, 12),  # a declaration that the data contradict is ignored
        ("float32", 0, 255, True, None, 8),
        ("float32", 0, 3000, True, None, 12),
        ("float32", 0, 1, False, None, None),
        ("int16", -5, 100, True, None, None),
        ("uint32", 0, 70000, True, None, None),
    ],
)
def test_rule(dtype, vmin, vmax, integer, hint, expected):
    got = effective_bit_depth(np.dtype(dtype), vmin, vmax, integer_valued=integer, hint=hint)
    assert got == expected
