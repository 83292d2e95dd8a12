"""``microvae synth``: write synthetic mitochondria images and their ground truth as TIFF."""

from __future__ import annotations

import argparse
from pathlib import Path

from pydantic import ValidationError

from ..errors import MicrovaeError
from ..synthetic import MANIFEST, PHENOTYPES, SynthParams, write_synthetic_set

__all__ = ["add_parser", "run", "parse_shape"]


def parse_shape(text: str) -> tuple[int, ...]:
    """``"512x512"`` -> (512, 512); ``"16x256x256"`` -> (16, 256, 256)."""
    try:
        shape = tuple(int(n) for n in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"shape {text!r} is not YxX or ZxYxX in pixels, e.g. 512x512 or 16x256x256"
        ) from None
    if len(shape) not in (2, 3) or min(shape) < 1:
        raise argparse.ArgumentTypeError(
            f"shape {text!r} must have 2 (YxX) or 3 (ZxYxX) positive sizes, e.g. 512x512"
        )
    return shape


def add_parser(sub) -> None:
    p = sub.add_parser(
        "synth",
        help="write synthetic mitochondria TIFFs with ground truth",
        description="Write N noisy synthetic mitochondria images (NAME.tif), their noise-free "
        "ground truth (NAME_gt.tif) and manifest.csv (phenotype, seed, camera) to OUT_DIR.",
    )
    p.add_argument("out_dir", type=Path, metavar="OUT_DIR")
    p.add_argument("--n", type=int, default=4, help="number of images (default 4)")
    p.add_argument(
        "--shape",
        type=parse_shape,
        default=(512, 512),
        help="YxX or ZxYxX in pixels (default 512x512)",
    )
    p.add_argument("--phenotype", choices=PHENOTYPES, default="tubular")
    p.add_argument(
        "--dtype",
        choices=("uint16", "uint8"),
        default="uint16",
        help="uint16 holds 12-bit data (default), uint8 8-bit",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--labels",
        action="store_true",
        help="also write NAME_labels.tif (0 background, 1 tubule, 2 punctum)",
    )
    p.add_argument("--prefix", default="synth", help="file name prefix (default synth)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.n < 1:
        raise MicrovaeError(f"--n must be at least 1, got {args.n}")
    try:
        params = SynthParams(shape=args.shape, phenotype=args.phenotype, dtype=args.dtype)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise MicrovaeError(f"--{first['loc'][0]}: {first['msg']}") from None
    out_dir = args.out_dir
    if out_dir.exists() and not out_dir.is_dir():
        raise MicrovaeError(f"{out_dir}: exists and is not a folder; choose another OUT_DIR")
    try:
        rows = write_synthetic_set(
            out_dir, params, n=args.n, seed=args.seed, labels=args.labels, prefix=args.prefix
        )
    except PermissionError as exc:
        raise MicrovaeError(
            f"{out_dir}: cannot write ({exc.strerror}); choose a writable folder"
        ) from exc
    shape = "x".join(map(str, params.shape))
    step = f", {params.z_step_um} um z-step" if params.is_stack else ""
    print(
        f"wrote {len(rows)} {params.phenotype} images ({shape} {params.axes}, {params.dtype} "
        f"{params.bit_depth}-bit, {params.pixel_size_um} um/pixel{step}) with ground truth to "
        f"{out_dir}/ (see {MANIFEST})"
    )
    return 0
