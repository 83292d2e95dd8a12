"""Finding TIFFs: files, folders (searched recursively) and glob patterns."""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable
from pathlib import Path

from ..errors import MicrovaeError

__all__ = ["DataError", "find_tiffs", "TIFF_SUFFIXES"]

TIFF_SUFFIXES = (".tif", ".tiff")


class DataError(MicrovaeError, ValueError):
    """The training data cannot be used as given (no files, too small, constant...)."""


def _is_tiff(path: Path) -> bool:
    return path.suffix.lower() in TIFF_SUFFIXES and not path.name.startswith(".")


def find_tiffs(inputs: Iterable[str | os.PathLike]) -> list[Path]:
    """Sorted, de-duplicated TIFF paths from files, folders and globs.

    Raises:
        DataError: an input matches nothing, or no TIFF is found at all.
    """
    found: dict[Path, None] = {}
    inputs = list(inputs)
    for item in inputs:
        text = str(item)
        path = Path(text)
        if path.is_dir():
            matches = sorted(p for p in path.rglob("*") if p.is_file() and _is_tiff(p))
        elif path.is_file():
            matches = [path]
        elif glob.has_magic(text):
            matches = sorted(Path(p) for p in glob.glob(text, recursive=True))
            matches = [p for p in matches if p.is_file() and _is_tiff(p)]
        else:
            raise DataError(f"{text}: no such file or folder; check the path")
        if not matches:
            raise DataError(f"{text}: no TIFF files (.tif, .tiff) found there")
        found.update(dict.fromkeys(matches))
    if not found:
        raise DataError("no input given; pass TIFF files, folders or glob patterns")
    return list(found)
