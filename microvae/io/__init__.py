"""Image input and output (TIFF and OME-Zarr): image records with axes, bit depth and pixel
size, atomic and plane-by-plane writers."""

from .atomic import atomic_path, stale_temporaries, temp_path
from .axes import KNOWN_AXES, channel_axis, plane_axes, validate_axes
from .bitdepth import effective_bit_depth
from .files import file_stem, read_csv, write_csv
from .images import open_image, read_image
from .omezarr import ZarrPlaneWriter, ZarrReader, is_zarr, unfinished_output, zarr_progress
from .record import ImageRecord, ValueStats
from .tiff import TiffPlaneWriter, write_image

__all__ = [
    "KNOWN_AXES",
    "TiffPlaneWriter",
    "ZarrPlaneWriter",
    "ZarrReader",
    "ImageRecord",
    "ValueStats",
    "atomic_path",
    "channel_axis",
    "effective_bit_depth",
    "file_stem",
    "is_zarr",
    "open_image",
    "plane_axes",
    "read_csv",
    "read_image",
    "stale_temporaries",
    "temp_path",
    "unfinished_output",
    "validate_axes",
    "write_csv",
    "write_image",
    "zarr_progress",
]
