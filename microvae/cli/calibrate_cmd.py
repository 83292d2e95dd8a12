"""``microvae calibrate``: fit the scale of a model's posterior spread, store it in the file."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..io import atomic_path
from .arguments import add_image_args, add_tile_args, whole_number

__all__ = ["add_parser", "run"]


def add_parser(sub) -> None:
    p = sub.add_parser(
        "calibrate",
        help="fit how far a model's posterior spread is off, on your images; store the scale",
        description="Measure, without ground truth, whether the spread of MODEL's posterior "
        "draws (predict --samples, model.posterior) matches its errors on INPUT (raw images "
        "with their noise, like those you will reconstruct): each image's photo-electrons are "
        "split at 0.25, 0.35 and 0.5 of the dose, the model reconstructs one part, the rest "
        "scores it, and the error over the predicted variance is extrapolated to the full "
        "dose. Its square root is stored in MODEL; the std and quantiles the model gives are "
        "widened by it from then on. A second split shows the calibration after.",
    )
    p.add_argument("model", type=Path, metavar="MODEL")
    p.add_argument("inputs", nargs="+", metavar="INPUT")
    p.add_argument(
        "--samples",
        type=whole_number(2, "a spread needs at least 2 draws"),
        default=16,
        help="draws per tile (16)",
    )
    p.add_argument(
        "--planes",
        type=int,
        default=4,
        help="2D models: planes per file, those with the most signal (default 4)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dry-run", action="store_true", help="measure and report, store nothing")
    p.add_argument("--json", type=Path, default=None, metavar="FILE", help="write the report")
    add_tile_args(p)
    add_image_args(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..inference import load_model
    from ..report import calibrate

    model = load_model(args.model, device=args.device)
    report = calibrate(
        model,
        args.inputs,
        samples=args.samples,
        planes=args.planes,
        channel=args.channel,
        axes=args.axes,
        seed=args.seed,
        store=not args.dry_run,
        tile_size=args.tile_size,
        overlap=args.overlap,
    )
    b, a = report.before, report.after
    fractions = ", ".join(f"{f:g}" for f in b.fractions)
    print(f"{len(report.images)} images, {report.samples} draws per tile, {report.seconds:.0f} s")
    print(f"error / predicted variance at dose fractions {fractions}:")
    print(f"  before  {_slopes(b)}  -> full dose {b.slope:.3f} +- {b.slope_stderr:.3f}")
    print(
        f"  after   {_slopes(a)}  -> full dose {a.slope:.3f} +- {a.slope_stderr:.3f} (a fresh "
        "split, scale applied; 1 is calibrated)"
    )
    verdict = "overconfident" if b.slope > 1 else "underconfident"
    print(f"the spread was {verdict}: std x {b.scale:.3f} +- {b.scale_stderr:.3f}")
    if report.stored is None:
        print("dry run: nothing stored")
    else:
        print(f"stored in {args.model}")
    if args.json:
        payload = {
            "before": b.to_dict(),
            "after": a.to_dict(),
            "images": report.images,
            "samples": report.samples,
            "seconds": report.seconds,
            "stored": report.stored is not None,
        }
        with atomic_path(args.json) as tmp:
            tmp.write_text(json.dumps(payload, indent=2) + "\n")
    return 0


def _slopes(fit) -> str:
    return "  ".join(f"{c.slope:.3f}" for c in fit.curves)
