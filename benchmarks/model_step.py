"""Benchmark: one training step (forward, backward, Adam) of each VAE variant.

Batch of 16 tiles of 64x64 (the issue's reference), default architecture, every
skip_mode x likelihood pair; reports the median seconds per step and tiles per second over
``--steps`` steps after ``--warmup`` steps, and writes ``benchmarks/results/model_step.json``.

    python benchmarks/model_step.py [--device auto|cpu|cuda] [--steps 10] [--batch 16] [--tile 64]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
from _results import write_result

from microvae.devices import pick_device
from microvae.model import LikelihoodConfig, ModelConfig, build_vae

RESULTS = Path(__file__).resolve().parent / "results"
CASES = [
    ("ladder", "dmol"),
    ("ladder", "laplace"),
    ("ladder", "gaussian"),
    ("deterministic", "dmol"),
    ("none", "gaussian"),
]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_steps(mode: str, lik: str, *, device, batch: int, tile: int, steps: int, warmup: int):
    torch.manual_seed(0)
    vae = build_vae(
        ModelConfig(skip_mode=mode, tile_size=tile), LikelihoodConfig(name=lik), bit_depth=12
    ).to(device)
    opt = torch.optim.Adam(vae.parameters(), lr=1e-4)
    x = (torch.randint(0, 4096, (batch, 1, tile, tile)) / 4095 * 2 - 1).to(device)
    times = []
    for i in range(warmup + steps):
        _sync(device)
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        out = vae(x)
        loss = -(out.elbo.mean()) / out.n_dims
        loss.backward()
        opt.step()
        _sync(device)
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    median = statistics.median(times)
    return {
        "skip_mode": mode,
        "likelihood": lik,
        "parameters_millions": round(sum(p.numel() for p in vae.parameters()) / 1e6, 3),
        "median_s_per_step": round(median, 4),
        "min_s_per_step": round(min(times), 4),
        "tiles_per_s": round(batch / median, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--tile", type=int, default=64)
    args = ap.parse_args()
    device = pick_device(args.device)
    runs = [
        time_steps(
            m,
            lk,
            device=device,
            batch=args.batch,
            tile=args.tile,
            steps=args.steps,
            warmup=args.warmup,
        )
        for m, lk in CASES
    ]
    write_result("model_step", {"batch": args.batch, "tile": args.tile, "runs": runs}, device)
    for r in runs:
        print(
            f"{r['skip_mode']:>13} + {r['likelihood']:<8} {r['parameters_millions']:6.2f} M  "
            f"{r['median_s_per_step']:.3f} s/step  {r['tiles_per_s']:7.1f} tiles/s"
        )


if __name__ == "__main__":
    main()
