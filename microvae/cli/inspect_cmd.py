"""``microvae inspect``: what microvae reads from each file, and how a 2D or a 3D model sees it."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..errors import MicrovaeError
from ..io import ImageRecord, channel_axis, open_image, unfinished_output

__all__ = ["add_parser", "run", "describe"]


def add_parser(sub) -> None:
    p = sub.add_parser(
        "inspect",
        help="show axes, shape, dtype, bit depth, pixel size and value range of TIFF files "
        "and OME-Zarr images (and flag unfinished OME-Zarr outputs)",
        description="Read each FILE as microvae does and print what it found. Bad files are "
        "reported one line each; the exit status is 2 if any file failed.",
    )
    p.add_argument("files", nargs="+", type=Path, metavar="FILE")
    p.add_argument("--json", action="store_true", help="print a JSON list instead of text")
    p.add_argument("--channel", type=int, default=None, help="keep this channel (C or S axis)")
    p.add_argument("--axes", default=None, help="override the file's axes, e.g. ZYX")
    p.set_defaults(run=run)


def describe(record: ImageRecord) -> dict:
    """A JSON-ready summary of a record (scans the values once, plane by plane)."""
    stats = record.stats
    ch_axis = channel_axis(record.axes)
    return {
        "file": str(record.path) if record.path else None,
        "axes": record.axes,
        "shape": list(record.shape),
        "dtype": record.dtype.name,
        "bit_depth": record.bit_depth,
        "integer_valued": stats.integer_valued,
        "pixel_size": record.pixel_size,
        "unit": record.unit,
        "min": stats.min,
        "max": stats.max,
        "channel": record.channel,
        "n_channels": record.n_channels,
        "channel_axis": ch_axis if record.n_channels > 1 else None,
        "plane_axes": record.plane_axes,
        "n_planes": record.n_planes,
        "plane_shape": list(record.plane_shape),
    }


def _num(v: float) -> str:
    return f"{v:.6g}"


def format_text(d: dict) -> str:
    bits = (
        f"{d['bit_depth']}-bit"
        if d["bit_depth"]
        else ("integer values" if d["integer_valued"] else "continuous values")
    )
    if d["pixel_size"]:
        size = " x ".join(f"{_num(d['pixel_size'][a])}" for a in d["axes"] if a in d["pixel_size"])
        size += f" {d['unit']} ({''.join(a for a in d['axes'] if a in d['pixel_size'])})"
    else:
        size = "not in the file"
    ny, nx = d["plane_shape"]
    planes = f"{d['n_planes']} plane{'s' * (d['n_planes'] != 1)} of {ny} x {nx}"
    if d["plane_axes"]:
        planes += f" (over {d['plane_axes']})"
    if d["n_channels"] > 1:
        planes += (
            f"; {d['n_channels']} {'samples' if d['channel_axis'] == 'S' else 'channels'}: "
            f"choose one with --channel 0..{d['n_channels'] - 1}"
        )
    lines = [
        d["file"],
        f"  axes        {d['axes']}",
        f"  shape       {' x '.join(map(str, d['shape']))}",
        f"  dtype       {d['dtype']}, {bits}",
        f"  pixel size  {size}",
        f"  values      {_num(d['min'])} .. {_num(d['max'])}",
        f"  2D model    {planes}",
        f"  3D model    {_volumes(d)}",
    ]
    if "Q" in d["axes"]:
        lines.append("  note        axis Q is unknown to the file; pass --axes (e.g. ZYX or TYX)")
    if d.get("unfinished"):
        lines.append(f"  UNFINISHED  {d['unfinished']}")
    return "\n".join(lines)


def _volumes(d: dict) -> str:
    """How a 3D model sees the file: its volumes (one per index over the plane axes but Z)
    and the voxel's depth over its width, or why it cannot read it."""
    axes = d["plane_axes"]
    if "Z" not in axes and axes != "Q":
        return "no Z axis: a 3D model cannot read it (pass --axes if the file's stack is Z)"
    zname = "Z" if "Z" in axes else "Q"
    nz = d["shape"][d["axes"].index(zname)]
    n = d["n_planes"] // nz
    ny, nx = d["plane_shape"]
    out = f"{n} volume{'s' * (n != 1)} of {nz} x {ny} x {nx}"
    if zname == "Q":
        out += " (axis Q read as Z)"
    z, x = d["pixel_size"].get("Z"), d["pixel_size"].get("X")
    if z and x:
        out += f", voxels {z / x:.2f}x as deep as wide"
    else:
        out += "; voxel size not in the file (config: data.z_over_xy)"
    return out


def run(args: argparse.Namespace) -> int:
    results, failed = [], 0
    for path in args.files:
        # an unfinished OME-Zarr output: described (its unwritten planes as zeros) and flagged
        unfinished = unfinished_output(path)
        fill = "fill" if unfinished else "error"
        try:
            with open_image(
                path, channel=args.channel, axes=args.axes, missing_chunks=fill
            ) as record:
                d = describe(record)
            d["unfinished"] = unfinished
        except MicrovaeError as exc:
            failed += 1
            print(f"microvae: error: {exc}", file=sys.stderr)
            results.append({"file": str(path), "error": str(exc)})
            continue
        results.append(d)
        if not args.json:
            print(format_text(d))
    if args.json:
        print(json.dumps(results, indent=2))
    return 2 if failed else 0
