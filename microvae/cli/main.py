"""Entry point of the ``microvae`` command: subcommands, and one way of reporting errors.

Errors caused by input or options (:class:`~microvae.errors.MicrovaeError`) print one line,
``microvae: error: FILE: problem; fix``, and exit with status 2, like argparse's usage errors.
"""

from __future__ import annotations

import argparse
import logging
import sys

from .. import __version__
from ..errors import MicrovaeError
from . import (
    calibrate_cmd,
    configs_cmd,
    demo_cmd,
    diagnose_cmd,
    evaluate_cmd,
    export_cmd,
    info_cmd,
    inspect_cmd,
    predict_cmd,
    synth_cmd,
    train_cmd,
)

__all__ = ["main", "build_parser"]

SUBCOMMANDS = (
    synth_cmd,
    inspect_cmd,
    configs_cmd,
    train_cmd,
    info_cmd,
    predict_cmd,
    evaluate_cmd,
    calibrate_cmd,
    diagnose_cmd,
    export_cmd,
    demo_cmd,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="microvae",
        description="Variational autoencoders for microscopy images of mitochondria.",
    )
    parser.add_argument("--version", action="version", version=f"microvae {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in SUBCOMMANDS:
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 2 bad input, 130 interrupted)."""
    args = build_parser().parse_args(argv)
    _setup_logging()
    try:
        return int(args.run(args) or 0)
    except MicrovaeError as exc:
        print(f"microvae: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        detail = str(exc) or "finished files are complete, none is half-written"
        print(f"microvae: interrupted: {detail}", file=sys.stderr)
        return 130


def _setup_logging() -> None:
    """microvae's own messages (progress of training, warnings) to stderr, one per line."""
    logger = logging.getLogger("microvae")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


if __name__ == "__main__":
    sys.exit(main())
