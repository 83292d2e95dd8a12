"""Entry point of the ``microvae`` command: subcommands, and one way of reporting errors.

Errors caused by input or options (:class:`~microvae.errors.MicrovaeError`) print one line,
``microvae: error: FILE: problem; fix``, and exit with status 2, like argparse's usage errors.
"""

from __future__ import annotations

import argparse
import sys

from .. import __version__
from ..errors import MicrovaeError
from . import inspect_cmd, synth_cmd

__all__ = ["main", "build_parser"]

SUBCOMMANDS = (synth_cmd, inspect_cmd)


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
    try:
        return int(args.run(args) or 0)
    except MicrovaeError as exc:
        print(f"microvae: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            "microvae: interrupted; finished files are complete, none is half-written",
            file=sys.stderr,
        )
        return 130


if __name__ == "__main__":
    sys.exit(main())
