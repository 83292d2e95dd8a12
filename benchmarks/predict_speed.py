"""Benchmark: predict's throughput against a bare forward pass, and its memory on a big stack.

1. Efficiency: a stack of ``--planes`` planes of ``--side``^2 (uint16, 12-bit) goes through
   ``process_stacks`` (reading, normalising, tiling with overlap, the network, blending,
   writing the TIFF), and the same tiles, already in memory as tensors, go through the bare
   network in the same batches. Megapixels of input per second of each, and their ratio.
2. Memory: a generated stack of ``--big-gb`` GB goes through ``process_stacks`` with a tiny
   architecture (the pipeline's memory does not depend on the model's size); peak resident
   memory above the start, in MB and in planes. Then the same for an OME-Zarr stack of
   ``--zarr-gb`` GB (chunked by plane) predicted with ``format="ome-zarr"`` (0: skip).

The architecture of ``--config`` (default configs/demo.yaml) with untrained weights: speed
does not depend on the weights. Results go to benchmarks/results/predict_speed[_DEVICE].json.

    python benchmarks/predict_speed.py [--planes 16] [--side 1024] [--big-gb 2] [--zarr-gb 4]
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _results import RESULTS, PeakRSS, write_result

from microvae.api import process_stacks
from microvae.config import load_config
from microvae.data import Normalisation
from microvae.devices import pick_device
from microvae.inference import TrainedModel
from microvae.inference.grid import TileGrid
from microvae.io import ZarrPlaneWriter, write_image
from microvae.model import build_vae

ROOT = Path(__file__).resolve().parents[1]


def make_model(config: Path, overrides: list[str], device) -> TrainedModel:
    cfg = load_config(config, overrides)
    norm = Normalisation(bit_depth=12, low=100.0, high=3000.0, dtype="uint16")
    vae = build_vae(cfg.model, cfg.likelihood, bit_depth=12)
    vae.set_input_normalisation(*norm.encoder_affine())
    return TrainedModel(vae, cfg, norm).to(device)


def make_stack(path: Path, planes: int, side: int) -> None:
    """A uint16 ZYX stack (12-bit values), TIFF or, for a ``.ome.zarr`` path, OME-Zarr."""
    rng = np.random.default_rng(0)
    base = rng.integers(100, 3000, (side, side), dtype=np.uint16)
    shape = (planes, side, side)
    if path.name.endswith(".ome.zarr"):
        w = ZarrPlaneWriter(path, shape=shape, dtype=np.uint16, axes="ZYX")
        for z in range(planes):
            w.write(z, np.roll(base, z, axis=1))
        w.close()
        return
    write_image(
        path,
        (np.roll(base, z, axis=1) for z in range(planes)),
        axes="ZYX",
        shape=shape,
        dtype=np.uint16,
    )


def big_memory(model: TrainedModel, stack: Path, out: Path, gb: float, side: int) -> dict:
    """Peak resident memory of predicting a generated stack of ``gb`` GB (TIFF or
    OME-Zarr, by ``stack``'s name; the outputs in the same format)."""
    n_big = max(1, math.ceil(gb * 1e9 / (side**2 * 2)))  # at least gb
    make_stack(stack, n_big, side)
    fmt = "ome-zarr" if stack.name.endswith(".ome.zarr") else "tiff"
    with PeakRSS() as mem:
        t0 = time.perf_counter()
        # large tiles: fewer Python iterations; memory does not depend on the tile
        process_stacks(
            model,
            stack,
            out,
            outputs=["reconstruction", "embedding"],
            batch_size=4,
            tile_size=256,
            progress=False,
            format=fmt,
        )
        seconds = time.perf_counter() - t0
    plane_mb = side**2 * 2 / 1e6
    return {
        "model": "tiny (levels 2, 4-8 channels), tiles of 256",
        "format": fmt,
        "stack_gb": round(n_big * plane_mb / 1e3, 2),
        "planes": n_big,
        "side": side,
        "seconds": round(seconds, 1),
        "peak_rss_above_start_mb": round((mem.peak - mem.start) / 1e6, 1),
        "peak_rss_in_planes": round((mem.peak - mem.start) / 1e6 / plane_mb, 2),
    }


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


@torch.no_grad()
def bare_forward(model: TrainedModel, plane: np.ndarray, planes: int, batch: int, device) -> float:
    """Seconds for the network alone over the tiles of ``planes`` such planes."""
    tile = model.default_tile()
    grid = TileGrid.plan(plane.shape, tile=tile, overlap=tile // 4, multiple=2**model.levels)
    padded = grid.pad_plane(model.normalisation.to_model(plane))
    tiles = torch.from_numpy(
        np.stack([padded[y : y + tile, x : x + tile] for y, x in grid.positions])[:, None]
    ).to(device)
    model.vae.reconstruct(tiles[:batch])  # warm-up
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(planes):
        for i in range(0, len(tiles), batch):
            model.vae.reconstruct(tiles[i : i + batch])
    _sync(device)
    return time.perf_counter() - t0


def efficiency(model: TrainedModel, tmp: Path, args, device) -> dict:
    """Predict against the bare network over the same tiles, on a stack of ``--planes``."""
    mpx = args.planes * args.side**2 / 1e6
    make_stack(tmp / "stack.tif", args.planes, args.side)
    t0 = time.perf_counter()
    process_stacks(
        model,
        tmp / "stack.tif",
        tmp / "out",
        outputs=["reconstruction"],
        batch_size=args.batch,
        progress=False,
    )
    t_predict = time.perf_counter() - t0
    plane = np.random.default_rng(0).integers(100, 3000, (args.side, args.side), dtype=np.uint16)
    t_bare = bare_forward(model, plane, args.planes, args.batch, device)
    return {
        "planes": args.planes,
        "side": args.side,
        "megapixels": round(mpx, 2),
        "predict_s": round(t_predict, 2),
        "bare_forward_s": round(t_bare, 2),
        "predict_mpx_per_s": round(mpx / t_predict, 3),
        "bare_forward_mpx_per_s": round(mpx / t_bare, 3),
        "ratio": round(t_bare / t_predict, 3),
    }


PARTS = ("efficiency", "memory", "zarr")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, default=ROOT / "configs" / "demo.yaml")
    ap.add_argument("--planes", type=int, default=16)
    ap.add_argument("--side", type=int, default=1024)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--big-gb", type=float, default=2.0)
    ap.add_argument("--zarr-gb", type=float, default=4.0, help="OME-Zarr stack (0: skip)")
    ap.add_argument("--big-side", type=int, default=2048)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--tmp", type=Path, default=None)
    ap.add_argument(
        "--parts",
        nargs="+",
        choices=PARTS,
        default=list(PARTS),
        help="what to measure; the others are kept from the results file, with their date",
    )
    args = ap.parse_args()
    device = pick_device(args.device)
    model = make_model(args.config, [], device)
    result: dict = {
        "config": args.config.name,
        "tile": model.default_tile(),
        "overlap": model.default_tile() // 4,
        "batch": args.batch,
    }
    parts = set(args.parts)
    if parts != set(PARTS):  # the other parts as an earlier run measured them
        old = RESULTS / f"predict_speed{'' if device.type == 'cpu' else '_' + device.type}.json"
        if old.is_file():
            earlier = json.loads(old.read_text())
            for key, part in (("efficiency", "efficiency"), ("memory", "memory")):
                if part not in parts and key in earlier:
                    result[key] = {"date": earlier["date"], **earlier[key]}
            if "zarr" not in parts and "memory_ome_zarr" in earlier:
                result["memory_ome_zarr"] = {"date": earlier["date"], **earlier["memory_ome_zarr"]}
    today = time.strftime("%Y-%m-%d")
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        tmp = Path(tmp)
        if "efficiency" in parts:
            result["efficiency"] = {"date": today, **efficiency(model, tmp, args, device)}
        tiny = make_model(
            args.config,
            [
                "model.levels=2",
                "model.base_channels=4",
                "model.max_channels=8",
                "model.latent_channels=2",
            ],
            device,
        )
        if "memory" in parts:
            result["memory"] = {
                "date": today,
                **big_memory(tiny, tmp / "big.tif", tmp / "out_big", args.big_gb, args.big_side),
            }
            shutil.rmtree(tmp / "out_big")
            (tmp / "big.tif").unlink()
        if "zarr" in parts and args.zarr_gb > 0:
            result["memory_ome_zarr"] = {
                "date": today,
                **big_memory(
                    tiny, tmp / "big.ome.zarr", tmp / "out_zarr", args.zarr_gb, args.big_side
                ),
            }
    path = write_result("predict_speed", result, device)
    print(path.read_text())


if __name__ == "__main__":
    main()
