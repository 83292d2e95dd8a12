"""Arguments that several commands share, so that each is spelt and explained once."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_image_args", "add_model_io_args", "add_tile_args"]


def add_model_io_args(p: argparse.ArgumentParser) -> None:
    """MODEL, one or more INPUTs and ``--out DIR``."""
    p.add_argument("model", type=Path, metavar="MODEL")
    p.add_argument("inputs", nargs="+", metavar="INPUT")
    p.add_argument("--out", type=Path, required=True, metavar="DIR")


def add_image_args(p: argparse.ArgumentParser) -> None:
    """``--device``, ``--channel`` and ``--axes``: where the model runs, what it reads."""
    p.add_argument("--device", default="auto", help="auto (CUDA, MPS, CPU), cpu, cuda, ...")
    p.add_argument("--channel", type=int, default=None, help="channel of C/S axes to use")
    p.add_argument("--axes", default=None, help="override the files' axes, e.g. ZYX")


def add_tile_args(p: argparse.ArgumentParser) -> None:
    """``--tile-size`` and ``--overlap`` of the tiles a plane is run in."""
    p.add_argument("--tile-size", type=int, default=None, help="default: the training tile")
    p.add_argument("--overlap", type=int, default=None, help="default: a quarter of the tile")
