"""TIFF input and output: image records with axes, bit depth and pixel size."""

from .atomic import atomic_path
from .axes import KNOWN_AXES, channel_axis, plane_axes, validate_axes
from .bitdepth import effective_bit_depth
from .record import ImageRecord, ValueStats
from .tiff import open_image, read_image, write_image

__all__ = [
    "KNOWN_AXES",
    "ImageRecord",
    "ValueStats",
    "atomic_path",
    "channel_axis",
    "effective_bit_depth",
    "open_image",
    "plane_axes",
    "read_image",
    "validate_axes",
    "write_image",
]
