"""Files beside images: the stem of an image file, CSV rows in and out, and what kind of file a
path holds (by its first bytes, for messages that say what was given instead)."""

from __future__ import annotations

import csv
import zipfile
from pathlib import Path

from .atomic import atomic_path
from .omezarr import is_zarr, unfinished_output

__all__ = ["file_kind", "file_stem", "read_csv", "write_csv"]

_IMAGE_SUFFIXES = (".ome.tiff", ".ome.tif", ".ome.zarr", ".tiff", ".tif", ".zarr")


def file_stem(path: Path) -> str:
    """The file name without its image suffix (.tif, .tiff, .ome.tif(f)): NAME in
    NAME_recon.tif."""
    name = Path(path).name
    for suffix in _IMAGE_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return Path(path).stem


def write_csv(path: Path, rows: list[dict]) -> None:
    """Rows (dicts; columns in order of first appearance) to a CSV file, atomically."""
    fields = list(dict.fromkeys(k for row in rows for k in row))
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


def read_csv(path: Path) -> list[dict]:
    """The rows of a CSV file with a header, as dicts of strings."""
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


# first bytes -> what the file is (the formats someone may pass by mistake)
_MAGIC = (
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"II+\x00", "a TIFF image (BigTIFF)"),
    (b"MM\x00+", "a TIFF image (BigTIFF)"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"\x89HDF\r\n\x1a\n", "an HDF5 file"),
    (b"\x93NUMPY", "a NumPy array (.npy)"),
    (b"\x1f\x8b", "a gzip archive"),
)


def file_kind(path: str | Path) -> str:
    """What ``path`` holds, judged by its first bytes (never by its name), as words for a
    message: "a TIFF image", "a PNG image", "a torch file", "a zip archive", "a pickle",
    "a text file", "an OME-Zarr image (a folder)", "a folder", "an empty file", "no file",
    or "a file of unknown format". A torch file is a zip holding ``*/data.pkl``."""
    path = Path(path)
    if path.is_dir():
        if not is_zarr(path):
            return "a folder"
        return f"an OME-Zarr image (a folder; {unfinished_output(path) or 'complete'})"
    if not path.is_file():
        return "no file"
    with open(path, "rb") as fh:
        head = fh.read(512)
    if not head:
        return "an empty file"
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    if head.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(path) as z:
                names = z.namelist()
        except zipfile.BadZipFile:
            return "a damaged zip archive"
        if any(n.endswith("/data.pkl") or n == "data.pkl" for n in names):
            return "a torch file"
        return "a zip archive"
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return "a pickle"  # also what torch.save wrote before its zip format
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return "a file of unknown format"
    return "a text file"
