"""TIFF input and output: image records with axes, bit depth and pixel size."""

from .atomic import atomic_path
from .axes import KNOWN_AXES, channel_axis, plane_axes, validate_axes
from .bitdepth import effective_bit_depth
from .files import file_stem, read_csv, write_csv
from .record import ImageRecord, ValueStats
from .tiff import TiffPlaneWriter, open_image, read_image, write_image

__all__ = [
    "KNOWN_AXES",
    "TiffPlaneWriter",
    "ImageRecord",
    "ValueStats",
    "atomic_path",
    "channel_axis",
    "effective_bit_depth",
    "file_stem",
    "open_image",
    "plane_axes",
    "read_csv",
    "read_image",
    "validate_axes",
    "write_csv",
    "write_image",
]
