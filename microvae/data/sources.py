"""Finding images: TIFF files and OME-Zarr images, from files, folders (searched recursively)
and glob patterns."""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable
from pathlib import Path

from ..errors import MicrovaeError
from ..io import is_zarr

__all__ = ["DataError", "find_images", "TIFF_SUFFIXES"]

TIFF_SUFFIXES = (".tif", ".tiff")


class DataError(MicrovaeError, ValueError):
    """The training data cannot be used as given (no files, too small, constant...)."""


def _is_image(path: Path) -> bool:
    if path.name.startswith("."):
        return False
    if path.is_dir():
        return is_zarr(path)
    return path.is_file() and path.suffix.lower() in TIFF_SUFFIXES


def _in_folder(folder: Path) -> list[Path]:
    """Images under ``folder``: TIFFs, and OME-Zarr images (not descended into)."""
    found = []
    for root, dirs, files in os.walk(folder):
        here = Path(root)
        keep = []
        for d in sorted(dirs):
            if d.startswith("."):
                continue
            if is_zarr(here / d):
                found.append(here / d)
            else:
                keep.append(d)
        dirs[:] = keep
        found += [here / f for f in files if _is_image(here / f)]
    return sorted(found)


def find_images(inputs: Iterable[str | os.PathLike]) -> list[Path]:
    """Sorted, de-duplicated image paths (TIFF files, OME-Zarr folders) from files, folders
    and globs.

    Raises:
        DataError: an input matches nothing, or no image is found at all.
    """
    found: dict[Path, None] = {}
    inputs = list(inputs)
    for item in inputs:
        text = str(item)
        path = Path(text)
        if path.is_dir() and is_zarr(path):
            matches = [path]
        elif path.is_dir():
            matches = _in_folder(path)
        elif path.is_file():
            matches = [path]
        elif glob.has_magic(text):
            matches = sorted(Path(p) for p in glob.glob(text, recursive=True))
            matches = [p for p in matches if _is_image(p)]
        else:
            raise DataError(f"{text}: no such file or folder; check the path")
        if not matches:
            raise DataError(f"{text}: no images (.tif, .tiff, OME-Zarr) found there")
        found.update(dict.fromkeys(matches))
    if not found:
        raise DataError("no input given; pass TIFF files, OME-Zarr images, folders or globs")
    return list(found)
