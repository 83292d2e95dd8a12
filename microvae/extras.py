"""Optional dependencies (pip extras): import one, or say which extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType

from .errors import MicrovaeError

__all__ = ["require"]


def require(module: str, extra: str, what: str) -> ModuleType:
    """Import ``module``, which ``what`` (e.g. "OME-Zarr images") needs; where it is missing,
    a MicrovaeError that names the extra to install: ``pip install 'microvae[EXTRA]'``."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        missing = exc.name or module.split(".")[0]
        raise MicrovaeError(
            f"{what} need(s) {missing}, which is not installed: pip install 'microvae[{extra}]'"
        ) from None
