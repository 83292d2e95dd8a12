"""Axes strings: which letters microvae knows, how they are checked, what a 2D model sees.

Letters: ``T`` time, ``Z`` depth, ``C`` channel (one plane per channel), ``Y`` rows, ``X``
columns, ``S`` samples inside a pixel (RGB-like channels), ``Q`` an unknown stack axis (a
multi-page TIFF without metadata). Every axes string holds ``Y`` and ``X`` once, ``Y`` before
``X``, and no letter twice.
"""

from __future__ import annotations

from ..errors import AxesError

__all__ = [
    "KNOWN_AXES",
    "CHANNEL_AXES",
    "from_tifffile_axes",
    "validate_axes",
    "channel_axis",
    "plane_axes",
]

KNOWN_AXES = "TZCYXSQ"
CHANNEL_AXES = "CS"


def from_tifffile_axes(axes: str) -> str:
    """Map tifffile's axes letters onto microvae's: ``I`` and other stack letters become ``Q``."""
    return "".join(a if a in KNOWN_AXES else "Q" for a in axes.upper())


def validate_axes(axes: str, shape: tuple[int, ...], *, source: str) -> str:
    """Return ``axes`` upper-cased after checking it against ``shape``.

    Raises:
        AxesError: naming ``source`` (a file name or "array"), when a letter is unknown or
            repeated, ``Y``/``X`` are missing or out of order, or the length differs from
            ``len(shape)``.
    """
    axes = axes.upper()
    unknown = sorted(set(axes) - set(KNOWN_AXES))
    if unknown:
        raise AxesError(
            f"{source}: axes {axes!r} has unknown letter(s) {''.join(unknown)}; "
            f"use letters from {KNOWN_AXES} (Q for an unknown stack axis)"
        )
    repeated = sorted({a for a in axes if axes.count(a) > 1})
    if repeated:
        raise AxesError(f"{source}: axes {axes!r} repeats {''.join(repeated)}; each letter once")
    if "Y" not in axes or "X" not in axes or axes.index("Y") > axes.index("X"):
        raise AxesError(f"{source}: axes {axes!r} must contain Y and then X (e.g. 'ZYX')")
    if len(axes) != len(shape):
        raise AxesError(
            f"{source}: axes {axes!r} has {len(axes)} letters but the image has {len(shape)} "
            f"dimensions (shape {tuple(shape)}); pass axes with {len(shape)} letters"
        )
    return axes


def channel_axis(axes: str) -> str | None:
    """The axis that holds channels: ``C`` if present, else ``S``, else None."""
    for a in CHANNEL_AXES:
        if a in axes:
            return a
    return None


def plane_axes(axes: str) -> str:
    """Axes a 2D model iterates over: all but ``Y``, ``X`` and the channel axes."""
    return "".join(a for a in axes if a not in "YX" + CHANNEL_AXES)
