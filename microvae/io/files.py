"""File names and tables beside images: the stem of an image file, CSV rows in and out."""

from __future__ import annotations

import csv
from pathlib import Path

from .atomic import atomic_path

__all__ = ["file_stem", "read_csv", "write_csv"]

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
