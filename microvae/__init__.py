"""microvae: variational autoencoders for microscopy images that keep fine mitochondrial structure.

Layers (imports point down only): ``io`` and ``synthetic`` at the bottom; data, model,
training, inference, analysis above them; the CLI on top. See the README for the quickstart.
"""

from .errors import AxesError, ChannelError, ImageReadError, ImageWriteError, MicrovaeError
from .io import ImageRecord, open_image, read_image, write_image

__version__ = "0.1.0"


def __getattr__(name: str):
    # these import torch and lightning: only when first used
    if name in ("train", "load_model", "process_stacks"):
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'microvae' has no attribute {name!r}")


__all__ = [
    "AxesError",
    "ChannelError",
    "ImageReadError",
    "ImageRecord",
    "ImageWriteError",
    "MicrovaeError",
    "__version__",
    "load_model",
    "open_image",
    "process_stacks",
    "read_image",
    "train",
    "write_image",
]
