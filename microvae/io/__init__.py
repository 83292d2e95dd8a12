"""Image input and output (TIFF and OME-Zarr): image records with axes, bit depth and pixel
size, atomic and plane-by-plane writers."""

from .atomic import atomic_path, stale_temporaries, temp_path
from .axes import KNOWN_AXES, channel_axis, plane_axes, validate_axes
from .bitdepth import effective_bit_depth
from .files import file_kind, file_stem, read_csv, write_csv
from .images import open_image, read_image
from .omezarr import ZarrPlaneWriter, ZarrReader, is_zarr, unfinished_output, zarr_progress
from .preview import save_png, side_by_side
from .record import ImageRecord, ValueStats
from .tiff import TiffPlaneWriter, write_image

__all__ = [
    "atomic_path",
    "channel_axis",
    "effective_bit_depth",
    "file_kind",
    "file_stem",
    "ImageRecord",
    "is_zarr",
    "KNOWN_AXES",
    "open_image",
    "plane_axes",
    "read_csv",
    "read_image",
    "save_png",
    "side_by_side",
    "stale_temporaries",
    "temp_path",
    "TiffPlaneWriter",
    "unfinished_output",
    "validate_axes",
    "ValueStats",
    "write_csv",
    "write_image",
    "zarr_progress",
    "ZarrPlaneWriter",
    "ZarrReader",
]
