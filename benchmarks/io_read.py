"""Benchmark: reading a large stack plane by plane (throughput and peak memory).

Generates an uncompressed (and optionally a zlib-compressed) uint16 ZYX stack of the requested
size in a temporary folder, walks it with ``open_image(...).iter_planes()``, and writes the
throughput (MB/s, planes/s) and the peak resident memory above the start to
``benchmarks/results/io_read.json``. The stack is deleted afterwards.

    python benchmarks/io_read.py --size-gb 1.0 [--side 2048] [--compressed]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import tifffile
from _results import PeakRSS, write_result

from microvae.io import open_image

RESULTS = Path(__file__).resolve().parent / "results"


def make_stack(path: Path, n_planes: int, side: int, compression: str | None) -> None:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 4096, (side, side), dtype=np.uint16)
    planes = (np.roll(base, z, axis=1) for z in range(n_planes))
    tifffile.imwrite(
        path,
        planes,
        shape=(n_planes, side, side),
        dtype=np.uint16,
        imagej=True,
        metadata={"axes": "ZYX"},
        compression=compression,
    )


def walk(path: Path) -> dict:
    with PeakRSS() as mem:
        t0 = time.perf_counter()
        with open_image(path) as rec:
            checksum = 0
            for _, plane in rec.iter_planes():
                checksum += int(plane[0, 0])
            n, shape = rec.n_planes, rec.plane_shape
        seconds = time.perf_counter() - t0
    plane_mb = shape[0] * shape[1] * 2 / 1e6
    return {
        "planes": n,
        "plane_shape": list(shape),
        "stack_mb": round(n * plane_mb, 1),
        "seconds": round(seconds, 3),
        "mb_per_s": round(n * plane_mb / seconds, 1),
        "planes_per_s": round(n / seconds, 1),
        "peak_rss_above_start_mb": round((mem.peak - mem.start) / 1e6, 1),
        "peak_rss_in_planes": round((mem.peak - mem.start) / 1e6 / plane_mb, 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-gb", type=float, default=1.0)
    ap.add_argument("--side", type=int, default=2048)
    ap.add_argument("--compressed", action="store_true", help="also a zlib-compressed stack")
    ap.add_argument("--tmp", type=Path, default=None, help="folder for the generated stack")
    args = ap.parse_args()
    n_planes = max(1, int(args.size_gb * 1e9 / (args.side * args.side * 2)))
    runs = {}
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        for compression in [None] + (["zlib"] if args.compressed else []):
            path = Path(tmp) / f"stack-{compression or 'raw'}.tif"
            make_stack(path, n_planes, args.side, compression)
            runs[compression or "uncompressed"] = {
                "file_mb": round(path.stat().st_size / 1e6, 1),
                **walk(path),
            }
            path.unlink()
    path = write_result("io_read", {"tifffile": tifffile.__version__, "runs": runs})
    result = json.loads(path.read_text())
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
