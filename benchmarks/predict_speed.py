"""Benchmark: predict's throughput against a bare forward pass, and its memory on a big stack.

1. Efficiency: a stack of ``--planes`` planes of ``--side``^2 (uint16, 12-bit) goes through
   ``process_stacks`` (reading, normalising, tiling with overlap, the network, blending,
   writing the TIFF), and the same tiles, already in memory as tensors, go through the bare
   network in the same batches. Megapixels of input per second of each, and their ratio.
2. Memory: a generated stack of ``--big-gb`` GB goes through ``process_stacks`` with a tiny
   architecture (the pipeline's memory does not depend on the model's size); peak resident
   memory above the start, in MB and in planes. Then the same for an OME-Zarr stack of
   ``--zarr-gb`` GB (chunked by plane) predicted with ``format="ome-zarr"`` (0: skip).
3. The same for a 3D model (``--config3d``, default configs/cpu3d.yaml): its efficiency over a
   volume of ``--planes3d`` planes of ``--side3d``^2 in 3D tiles (the bare network over the
   same tiles, slab by slab), and its memory on the ``--zarr-gb`` OME-Zarr stack with a tiny 3D
   architecture. Run whole, a 3D model on this CPU would take hours on 4 GB, so the memory run
   finishes the first and the last ``--block3d`` planes (as a Dask worker runs its block
   of a stack): every plane of the stack is still read, in order, and the slabs at both ends
   run; beside it the same on a stack of 4 blocks' planes, since a 3D network's own working
   memory (Conv3d unfolds its input on the CPU) is large and does not depend on the stack.
4. Posterior samples (``--samples``, default 16): the same stack of ``--planes`` planes of
   ``--side``^2 predicted with 1 and with N draws per tile: seconds and peak resident memory
   of each, and their ratios (issue 25's targets: time <= N x, memory the same).

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
from microvae.batch.stacks import process_file
from microvae.config import load_config
from microvae.data import Normalisation
from microvae.devices import pick_device
from microvae.inference import TileOptions, TrainedModel
from microvae.inference.grid import TileGrid
from microvae.inference.volumes import ZGrid
from microvae.io import ZarrPlaneWriter, write_image
from microvae.model import build_vae

ROOT = Path(__file__).resolve().parents[1]


def make_model(config: Path, overrides: list[str], device) -> TrainedModel:
    cfg = load_config(config, overrides)
    norm = Normalisation(bit_depth=12, low=100.0, high=3000.0, dtype="uint16")
    vae = build_vae(cfg.model, cfg.likelihood, bit_depth=12)
    vae.set_input_normalisation(*norm.encoder_affine())
    return TrainedModel(vae, cfg, norm).to(device)


def stack_planes(planes: int, side: int):
    """The benchmark stack's planes: one random 12-bit plane, shifted by a pixel per plane."""
    base = np.random.default_rng(0).integers(100, 3000, (side, side), dtype=np.uint16)
    return (np.roll(base, z, axis=1) for z in range(planes))


def make_stack(path: Path, planes: int, side: int) -> None:
    """A uint16 ZYX stack (12-bit values), TIFF or, for a ``.ome.zarr`` path, OME-Zarr."""
    shape = (planes, side, side)
    if path.name.endswith(".ome.zarr"):
        w = ZarrPlaneWriter(path, shape=shape, dtype=np.uint16, axes="ZYX")
        for z, plane in enumerate(stack_planes(planes, side)):
            w.write(z, plane)
        w.close()
        return
    write_image(path, stack_planes(planes, side), axes="ZYX", shape=shape, dtype=np.uint16)


def big_memory(
    model: TrainedModel, stack: Path, out: Path, gb: float, side: int, block: int = 0
) -> dict:
    """Peak resident memory of predicting a generated stack of ``gb`` GB (TIFF or
    OME-Zarr, by ``stack``'s name; the outputs in the same format). ``block`` > 0: only the
    first and the last ``block`` planes are finished (every plane is still read)."""
    n_big = max(1, math.ceil(gb * 1e9 / (side**2 * 2)))  # at least gb
    if not stack.exists():
        make_stack(stack, n_big, side)
    fmt = "ome-zarr" if stack.name.endswith(".ome.zarr") else "tiff"
    planes = None
    if block:
        planes = sorted({*range(block), *range(n_big - block, n_big)})
    with PeakRSS() as mem:
        t0 = time.perf_counter()
        # large tiles: fewer Python iterations; memory does not depend on the tile
        if planes is None:
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
        else:  # as a Dask worker runs its block of a stack (the embedding needs 2D maps)
            out.mkdir()
            process_file(
                model,
                stack,
                out,
                outputs={"reconstruction"},
                options=TileOptions(tile_size=256, batch_size=2),
                channel=None,
                axes=None,
                metrics=None,
                progress=False,
                fmt=fmt,
                resume=False,
                planes=planes,
                finish=False,
            )
        seconds = time.perf_counter() - t0
    plane_mb = side**2 * 2 / 1e6
    depth = f"{model.config.data.tile_depth}x" if model.dims == 3 else ""
    return {
        "model": f"tiny {model.dims}D (levels 2, 4-8 channels), tiles of {depth}256x256",
        "format": fmt,
        "stack_gb": round(n_big * plane_mb / 1e3, 2),
        "planes": n_big,
        "planes_finished": n_big if planes is None else len(planes),
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


@torch.no_grad()
def bare_forward_3d(model: TrainedModel, volume: np.ndarray, batch: int, device) -> float:
    """Seconds for a 3D network alone over the 3D tiles that predict runs on ``volume``
    (Z, H, W): the same grids in XY and Z, the tiles of each slab in batches."""
    tile, depth = model.default_tile(), model.config.data.tile_depth
    mz, mxy = model.config.model.multiples()[:2]
    grid = TileGrid.plan(volume.shape[1:], tile=tile, overlap=tile // 4, multiple=mxy)
    zgrid = ZGrid.plan(len(volume), depth=depth, overlap=depth // 4, multiple=mz)
    padded = np.stack(
        [
            grid.pad_plane(model.normalisation.to_model(volume[zgrid.source(p)]))
            for p in range(zgrid.padded)
        ]
    )
    # as predict, only the slabs that cover a plane of the volume (not padding alone)
    slabs = [z for z in zgrid.starts if z < zgrid.pad[0] + len(volume) and z + depth > zgrid.pad[0]]
    tiles = [
        padded[z : z + depth, y : y + tile, x : x + tile] for z in slabs for y, x in grid.positions
    ]
    model.vae.reconstruct(torch.from_numpy(np.stack(tiles[:batch])[:, None]).to(device))
    _sync(device)
    t0 = time.perf_counter()
    for i in range(0, len(tiles), batch):
        model.vae.reconstruct(torch.from_numpy(np.stack(tiles[i : i + batch])[:, None]).to(device))
    _sync(device)
    return time.perf_counter() - t0


def efficiency_3d(model: TrainedModel, tmp: Path, args, device) -> dict:
    """Predict against the bare 3D network over the same tiles, on a volume of
    ``--planes3d`` planes of ``--side3d``^2: the faster of two runs of each (this machine's
    timings of the same work vary by 20%)."""
    mvox = args.planes3d * args.side3d**2 / 1e6
    make_stack(tmp / "volume.tif", args.planes3d, args.side3d)
    volume = np.stack(list(stack_planes(args.planes3d, args.side3d)))
    t_predict, t_bare = [], []
    for i in range(2):
        t0 = time.perf_counter()
        process_stacks(
            model,
            tmp / "volume.tif",
            tmp / f"out3d_{i}",
            outputs=["reconstruction"],
            batch_size=args.batch3d,
            progress=False,
        )
        t_predict.append(time.perf_counter() - t0)
        t_bare.append(bare_forward_3d(model, volume, args.batch3d, device))
    t_predict, t_bare = min(t_predict), min(t_bare)
    return {
        "planes": args.planes3d,
        "side": args.side3d,
        "tile": [model.config.data.tile_depth, model.default_tile(), model.default_tile()],
        "batch": args.batch3d,
        "megavoxels": round(mvox, 2),
        "predict_s": round(t_predict, 2),
        "bare_forward_s": round(t_bare, 2),
        "predict_mvox_per_s": round(mvox / t_predict, 3),
        "bare_forward_mvox_per_s": round(mvox / t_bare, 3),
        "ratio": round(t_bare / t_predict, 3),
    }


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


# part -> its key in the results
def sampling_cost(model: TrainedModel, tmp: Path, args) -> dict:
    """predict with 1 and with ``--samples`` posterior draws per tile, on the same stack:
    seconds and peak resident memory above the start of each."""
    make_stack(tmp / "sampled.tif", args.planes, args.side)
    make_stack(tmp / "warm.tif", 1, 128)
    for n in (1, args.samples):  # first calls allocate: both paths warm before measuring
        process_stacks(model, tmp / "warm.tif", tmp / f"warm{n}", progress=False, samples=n, seed=0)
    runs = {}
    for n in (1, args.samples):
        with PeakRSS() as mem:
            t0 = time.perf_counter()
            process_stacks(
                model,
                tmp / "sampled.tif",
                tmp / f"out_samples{n}",
                outputs=["reconstruction"],
                batch_size=args.batch,
                progress=False,
                samples=n,
                seed=0,
            )
            seconds = time.perf_counter() - t0
        runs[n] = (seconds, (mem.peak - mem.start) / 1e6)
    (t1, m1), (tn, mn) = runs[1], runs[args.samples]
    return {
        "planes": args.planes,
        "side": args.side,
        "batch": args.batch,
        "samples": args.samples,
        "seconds_1": round(t1, 2),
        f"seconds_{args.samples}": round(tn, 2),
        "time_ratio": round(tn / t1, 2),
        "peak_rss_above_start_mb_1": round(m1, 1),
        f"peak_rss_above_start_mb_{args.samples}": round(mn, 1),
        "memory_ratio": round(mn / m1, 2) if m1 > 0 else None,
    }


PARTS = {
    "efficiency": "efficiency",
    "memory": "memory",
    "zarr": "memory_ome_zarr",
    "efficiency3d": "efficiency_3d",
    "zarr3d": "memory_ome_zarr_3d",
    "samples": "samples",
}
TINY = [
    "model.levels=2",
    "model.base_channels=4",
    "model.max_channels=8",
    "model.latent_channels=2",
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, default=ROOT / "configs" / "demo.yaml")
    ap.add_argument("--planes", type=int, default=16)
    ap.add_argument("--side", type=int, default=1024)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--big-gb", type=float, default=2.0)
    ap.add_argument("--zarr-gb", type=float, default=4.0, help="OME-Zarr stack (0: skip)")
    ap.add_argument("--big-side", type=int, default=2048)
    ap.add_argument("--config3d", type=Path, default=ROOT / "configs" / "cpu3d.yaml")
    ap.add_argument("--planes3d", type=int, default=32)
    ap.add_argument("--side3d", type=int, default=512)
    ap.add_argument("--batch3d", type=int, default=4)
    ap.add_argument("--block3d", type=int, default=8, help="planes finished at each end")
    ap.add_argument("--samples", type=int, default=16, help="posterior draws per tile")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--tmp", type=Path, default=None)
    ap.add_argument(
        "--parts",
        nargs="+",
        choices=list(PARTS),
        default=list(PARTS),
        help="what to measure; the others are kept from the results file, with their date",
    )
    args = ap.parse_args()
    device = pick_device(args.device)
    model = make_model(args.config, [], device)
    result: dict = {
        "config": args.config.name,
        "config3d": args.config3d.name,
        "tile": model.default_tile(),
        "overlap": model.default_tile() // 4,
        "batch": args.batch,
    }
    parts = set(args.parts)
    old = RESULTS / f"predict_speed{'' if device.type == 'cpu' else '_' + device.type}.json"
    if parts != set(PARTS) and old.is_file():  # the other parts as an earlier run measured them
        earlier = json.loads(old.read_text())
        for part, key in PARTS.items():
            if part not in parts and key in earlier:
                result[key] = {"date": earlier[key].get("date", earlier["date"]), **earlier[key]}
    today = time.strftime("%Y-%m-%d")
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        tmp = Path(tmp)
        if "efficiency" in parts:
            result["efficiency"] = {"date": today, **efficiency(model, tmp, args, device)}
        if "samples" in parts:
            result["samples"] = {"date": today, **sampling_cost(model, tmp, args)}
        if "efficiency3d" in parts:
            model3d = make_model(args.config3d, [], device)
            result["efficiency_3d"] = {"date": today, **efficiency_3d(model3d, tmp, args, device)}
        tiny = make_model(args.config, TINY, device)
        if "memory" in parts:
            result["memory"] = {
                "date": today,
                **big_memory(tiny, tmp / "big.tif", tmp / "out_big", args.big_gb, args.big_side),
            }
            shutil.rmtree(tmp / "out_big")
            (tmp / "big.tif").unlink()
        stack = tmp / "big.ome.zarr"
        if "zarr" in parts and args.zarr_gb > 0:
            result["memory_ome_zarr"] = {
                "date": today,
                **big_memory(tiny, stack, tmp / "out_zarr", args.zarr_gb, args.big_side),
            }
        if "zarr3d" in parts and args.zarr_gb > 0:
            tiny3d = make_model(args.config3d, [*TINY, "data.tile_depth=16"], device)
            # the network's own working memory is large in 3D (Conv3d unfolds its input on
            # the CPU): a stack of 4 blocks' planes, the same side, shows what is the pipeline's
            thin_gb = 4 * args.block3d * args.big_side**2 * 2 / 1e9
            thin = big_memory(
                tiny3d,
                tmp / "thin.ome.zarr",
                tmp / "out_thin3d",
                thin_gb,
                args.big_side,
                block=args.block3d,
            )
            big = big_memory(
                tiny3d, stack, tmp / "out_zarr3d", args.zarr_gb, args.big_side, block=args.block3d
            )
            result["memory_ome_zarr_3d"] = {
                "date": today,
                **big,
                "thin_stack_planes": thin["planes"],
                "thin_stack_peak_rss_above_start_mb": thin["peak_rss_above_start_mb"],
            }
    path = write_result("predict_speed", result, device)
    print(path.read_text())


if __name__ == "__main__":
    main()
