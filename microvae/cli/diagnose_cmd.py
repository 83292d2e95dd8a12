"""``microvae diagnose``: does a trained model use its latent space?"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .arguments import add_image_args

__all__ = ["add_parser", "run"]


def add_parser(sub) -> None:
    p = sub.add_parser(
        "diagnose",
        help="posterior-collapse diagnostics of a model (on images, or as stored)",
        description="Print the collapse diagnostics of MODEL: KL per latent level and channel, "
        "active units, z-reader weight norms, sensitivity to replacing z by prior noise, and "
        "the verdict (healthy / partly collapsed / collapsed). Measured on tiles of INPUT "
        "when given; otherwise the numbers of the model's last validation.",
    )
    p.add_argument("model", type=Path, metavar="MODEL")
    p.add_argument("inputs", nargs="*", metavar="INPUT")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.add_argument("--threshold", type=float, default=0.01, help="active unit: KL > this (nats)")
    p.add_argument("--max-tiles", type=int, default=64)
    add_image_args(p)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..inference import load_model
    from ..latent import diagnose, format_diagnostics

    model = load_model(args.model, device=args.device)
    d = diagnose(
        model,
        args.inputs or None,
        threshold=args.threshold,
        max_tiles=args.max_tiles,
        seed=args.seed,
        channel=args.channel,
        axes=args.axes,
    )
    print(json.dumps(d, indent=2) if args.json else format_diagnostics(d))
    return 0
