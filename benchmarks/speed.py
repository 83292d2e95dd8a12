"""Speed, all of it: training and prediction throughput, and how close training runs to the
machine's convolution speed.

Runs train_speed.py (steps/s and tiles/s of demo.yaml and mito2d.yaml, with the data pipeline
and with data in memory) and predict_speed.py (predict Mpx/s against a bare forward pass over
the same tiles; peak memory of predict on a generated multi-GB stack), each writing its own
JSON, then measures here the achieved GFLOP/s of a demo.yaml training step (forward, backward,
optimiser; FLOPs counted by torch.utils.flop_counter) against a plain convolution
microbenchmark (3x3 convolutions, forward and backward) on the same device. On CUDA, the
training step runs in bf16 autocast with channels-last tensors. Writes results/speed.json.

    python benchmarks/speed.py [--device auto] [--skip-scripts]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import torch
from _results import write_result
from torch.utils.flop_counter import FlopCounterMode

from microvae.config import load_config
from microvae.devices import pick_device
from microvae.model import build_vae
from microvae.objective import compute_loss

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def _sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _timed(fn, device, steps: int, warmup: int) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(steps):
        _sync(device)
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _flops(fn) -> int:
    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    return counter.get_total_flops()


def training_step_gflops(device, steps: int, warmup: int) -> dict:
    cfg = load_config(ROOT / "configs" / "demo.yaml")
    vae = build_vae(cfg.model, cfg.likelihood, bit_depth=12).to(device)
    t = cfg.data.tile_size
    x = (torch.rand(cfg.train.batch_size, 1, t, t, device=device) * 2 - 1).contiguous()
    cuda = device.type == "cuda"
    if cuda:
        vae = vae.to(memory_format=torch.channels_last)
        x = x.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(vae.parameters(), lr=1e-3)
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if cuda else nullcontext()

    def step():
        with amp:
            terms = compute_loss(vae(x), cfg.objective, 1000)
        opt.zero_grad(set_to_none=True)
        terms.loss.backward()
        opt.step()

    flops = _flops(step)
    seconds = _timed(step, device, steps, warmup)
    return {
        "config": "demo.yaml",
        "batch": cfg.train.batch_size,
        "tile": t,
        "gflop_per_step": round(flops / 1e9, 3),
        "s_per_step": round(seconds, 4),
        "gflop_per_s": round(flops / seconds / 1e9, 2),
        "precision": "bf16 autocast, channels-last" if cuda else "float32",
    }


def conv_gflops(device, steps: int, warmup: int) -> dict:
    """3x3 convolutions of 64 channels on 16 x 128 x 128: forward and backward."""
    conv = torch.nn.Conv2d(64, 64, 3, padding=1).to(device)
    x = torch.randn(16, 64, 128, 128, device=device, requires_grad=True)
    cuda = device.type == "cuda"
    if cuda:
        conv = conv.to(memory_format=torch.channels_last)
        x = x.detach().to(memory_format=torch.channels_last).requires_grad_()
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if cuda else nullcontext()

    def step():
        with amp:
            y = conv(x)
        y.float().sum().backward()

    flops = _flops(step)
    seconds = _timed(step, device, steps, warmup)
    return {
        "shape": "conv 3x3, 64 -> 64 channels, 16 x 128 x 128, forward + backward",
        "gflop_per_step": round(flops / 1e9, 3),
        "s_per_step": round(seconds, 4),
        "gflop_per_s": round(flops / seconds / 1e9, 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument(
        "--skip-scripts", action="store_true", help="only the GFLOP/s part, not the two scripts"
    )
    args = ap.parse_args()
    device = pick_device(args.device)
    if not args.skip_scripts:
        for script in ("train_speed.py", "predict_speed.py"):
            subprocess.run(
                [sys.executable, str(HERE / script), "--device", args.device], check=True
            )
    step = training_step_gflops(device, args.steps, args.warmup)
    conv = conv_gflops(device, args.steps, args.warmup)
    payload = {
        "training_step": step,
        "conv_microbenchmark": conv,
        "training_over_conv": round(step["gflop_per_s"] / conv["gflop_per_s"], 3),
        "other_results": ["train_speed.json", "predict_speed.json"],
    }
    path = write_result("speed", payload, device)
    print(
        f"training step {step['gflop_per_s']} GFLOP/s, convolutions {conv['gflop_per_s']} "
        f"GFLOP/s: {payload['training_over_conv']:.2f} of the machine's convolution speed"
    )
    print(f"written: {path}")


if __name__ == "__main__":
    main()
