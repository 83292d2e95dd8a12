"""Typed exceptions of microvae.

Every error a user can cause (a bad file, a bad option) is a :class:`MicrovaeError`. Its
message is one line that names the file or option, the problem and the fix; the CLI prints it
and exits with status 2 instead of showing a traceback.
"""

from __future__ import annotations

__all__ = [
    "AxesError",
    "ChannelError",
    "ImageReadError",
    "ImageWriteError",
    "MicrovaeError",
    "NonFiniteError",
    "NotGenerativeError",
    "ShapeError",
]


class MicrovaeError(Exception):
    """Base class of the errors that bad input or options cause (CLI exit status 2)."""


class ImageReadError(MicrovaeError, ValueError):
    """A file cannot be read as an image: missing, empty, truncated, not a TIFF, bad values."""


class AxesError(MicrovaeError, ValueError):
    """An axes string is invalid or does not match the image's shape."""


class ChannelError(MicrovaeError, ValueError):
    """A channel index is out of range, or a single channel is needed and none was chosen."""


class ImageWriteError(MicrovaeError, OSError):
    """An image cannot be written (folder not writable, array and axes disagree)."""


class ShapeError(MicrovaeError, ValueError):
    """An image or tile shape the model cannot take (e.g. not divisible by 2**levels)."""


class NonFiniteError(MicrovaeError, FloatingPointError):
    """A loss term or gradient became NaN or infinite; the message names the step and term."""


class NotGenerativeError(MicrovaeError, TypeError):
    """The model cannot generate without an input (skip_mode 'deterministic')."""
