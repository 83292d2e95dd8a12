"""Benchmark: training speed of the configs in configs/, with and without the data pipeline.

For each config: synthetic 12-bit images are written to a temporary folder and prepared as in
training (planes, split, normalisation, foreground sampling, D4 augmentation, DataLoader);
then ``--steps`` optimisation steps are timed (after ``--warmup``) twice: fetching every batch
from the DataLoader, and reusing one batch already in memory. The difference is the data
pipeline's overhead. Results go to ``benchmarks/results/train_speed[_DEVICE].json``.

    python benchmarks/train_speed.py [--configs demo mito2d] [--steps 20] [--device auto]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from _results import write_result
from torch.utils.data import DataLoader

from microvae.config import load_config
from microvae.data import prepare_data
from microvae.devices import pick_device
from microvae.objective import compute_loss
from microvae.synthetic import SynthParams, write_synthetic_set
from microvae.training.module import VAEModule

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_config(name: str, data_dir: Path, *, device, steps: int, warmup: int) -> dict:
    cfg = load_config(ROOT / "configs" / f"{name}.yaml", ["data.num_workers=0"])
    t = cfg.train
    prepared = prepare_data(
        [str(data_dir / "synth_???.tif")], cfg.data, n_train_tiles=(steps + warmup) * t.batch_size
    )
    module = VAEModule(cfg.to_dict(), prepared.normalisation.to_dict())
    vae = module.vae.to(device)
    opt = torch.optim.AdamW(vae.parameters(), lr=t.lr)

    def step(x, i):
        out = vae(x)
        terms = compute_loss(out, cfg.objective, i)
        opt.zero_grad(set_to_none=True)
        terms.loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), t.grad_clip)
        opt.step()

    loader = DataLoader(prepared.train, batch_size=t.batch_size, drop_last=True)

    def from_loader():  # time includes fetching the batch
        it = iter(loader)
        for i in range(steps + warmup):
            _sync(device)
            t0 = time.perf_counter()
            x = next(it).to(device)
            step(x, i)
            _sync(device)
            if i >= warmup:
                yield time.perf_counter() - t0

    pipeline = list(from_loader())
    fixed = next(iter(loader)).to(device)
    memory = []
    for i in range(steps + warmup):
        _sync(device)
        t0 = time.perf_counter()
        step(fixed, i)
        _sync(device)
        if i >= warmup:
            memory.append(time.perf_counter() - t0)
    s_pipe, s_mem = statistics.median(pipeline), statistics.median(memory)
    return {
        "config": name,
        "tile": cfg.data.tile_size,
        "batch": t.batch_size,
        "parameters_millions": round(sum(p.numel() for p in vae.parameters()) / 1e6, 3),
        "s_per_step_with_pipeline": round(s_pipe, 4),
        "s_per_step_data_in_memory": round(s_mem, 4),
        "tiles_per_s_with_pipeline": round(t.batch_size / s_pipe, 1),
        "tiles_per_s_data_in_memory": round(t.batch_size / s_mem, 1),
        "pipeline_overhead_percent": round(100 * (s_pipe - s_mem) / s_mem, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", nargs="+", default=["demo", "mito2d"])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    device = pick_device(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        write_synthetic_set(Path(tmp), SynthParams(shape=(512, 512)), n=6, seed=0, progress=False)
        runs = [
            time_config(n, Path(tmp), device=device, steps=args.steps, warmup=args.warmup)
            for n in args.configs
        ]
    write_result("train_speed", {"runs": runs}, device)
    for r in runs:
        print(
            f"{r['config']:>8}: {r['s_per_step_with_pipeline']:.3f} s/step "
            f"({r['tiles_per_s_with_pipeline']} tiles/s) with the data pipeline, "
            f"{r['s_per_step_data_in_memory']:.3f} s/step in memory: overhead "
            f"{r['pipeline_overhead_percent']}%"
        )


if __name__ == "__main__":
    main()
