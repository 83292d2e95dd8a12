"""``microvae export``: a model file as a bioimage.io model package."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_parser", "run"]


def add_parser(sub) -> None:
    p = sub.add_parser(
        "export",
        help="write a model as a bioimage.io model package",
        description="Write MODEL (RUN_DIR/model.pt) as a bioimage.io model package (spec 0.5, "
        "a zip): PyTorch state-dict weights whose architecture microvae provides "
        "(microvae.model.exported.Reconstructor), the normalisation as pre- and "
        "postprocessing, a test tile with its reconstruction, a cover image and a README. "
        "microvae.load_model and every command that takes a model read the package back.",
    )
    p.add_argument("model", type=Path, metavar="MODEL")
    p.add_argument("--bioimageio", type=Path, required=True, metavar="OUT.zip")
    p.add_argument(
        "--image",
        type=Path,
        default=None,
        help="an image to take the test tile from (default: synthetic mitochondria in the "
        "training data's intensity range)",
    )
    p.add_argument("--name", default=None, help="the package's name")
    p.add_argument("--author", dest="authors", action="append", default=[], metavar="NAME")
    p.add_argument("--license", default="CC-BY-4.0", help="SPDX licence of the weights")
    p.add_argument("--channel", type=int, default=None, help="channel of --image")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..export import export_bioimageio
    from ..inference import load_model
    from ..io import read_image

    model = load_model(args.model)
    image = None
    if args.image is not None:
        image = read_image(args.image, channel=args.channel).data
    out = export_bioimageio(
        model,
        args.bioimageio,
        image=image,
        name=args.name,
        authors=args.authors,
        license=args.license,
    )
    print(f"bioimage.io package: {out} (check it with: bioimageio test {out})")
    return 0
