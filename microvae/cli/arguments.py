"""Arguments that several commands share, so that each is spelt and explained once."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

__all__ = ["add_image_args", "add_model_io_args", "add_tile_args", "fraction", "whole_number"]


def whole_number(minimum: int, why: str = "") -> Callable[[str], int]:
    """An argparse ``type``: a whole number >= ``minimum``; ``why`` ends the message of a
    smaller one (e.g. "a spread needs at least 2 draws")."""

    def parse(text: str) -> int:
        try:
            n = int(text)
        except ValueError:
            n = None
        if n is None or n < minimum:
            reason = f" ({why})" if why else ""
            raise argparse.ArgumentTypeError(
                f"must be a whole number >= {minimum}, got {text!r}{reason}"
            )
        return n

    return parse


def fraction(text: str) -> float:
    """An argparse ``type``: a number strictly between 0 and 1 (a quantile, a fraction)."""
    try:
        q = float(text)
    except ValueError:
        q = float("nan")
    if not 0.0 < q < 1.0:
        raise argparse.ArgumentTypeError(f"must lie strictly between 0 and 1, got {text!r}")
    return q


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
