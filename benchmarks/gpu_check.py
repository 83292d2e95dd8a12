"""The CUDA paths, run once each (issue 14, part 4): bf16 mixed-precision training through
microvae's own fit, CUDA inference against CPU inference of the same model, and predict on
CUDA with TIFF and OME-Zarr outputs. Writes results/gpu_check_cuda.json; exits 1 if a path
fails or there is no CUDA device.

    python benchmarks/gpu_check.py [--steps 200]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np
import torch
from _results import write_result

from microvae.api import process_stacks
from microvae.inference import load_model
from microvae.io import read_image, write_image
from microvae.synthetic import SynthParams, generate, write_synthetic_set
from microvae.training.session import fit

ROOT = Path(__file__).resolve().parents[1]


def _check(name: str, results: dict, fn) -> None:
    t0 = time.perf_counter()
    try:
        results[name] = {"ok": True, **fn()}
    except Exception as exc:  # recorded, and the other paths still run
        results[name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        traceback.print_exc()
    results[name]["seconds"] = round(time.perf_counter() - t0, 1)
    print(name, results[name], flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=200)
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA device: nothing to check", file=sys.stderr)
        return 1
    device = torch.device("cuda")
    results: dict = {"gpu": torch.cuda.get_device_name(0)}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write_synthetic_set(
            tmp / "data", SynthParams(shape=(256, 256)), n=4, seed=0, progress=False
        )
        run = tmp / "run"

        def train_bf16() -> dict:
            _, summary = fit(
                ROOT / "configs" / "demo.yaml",
                [str(tmp / "data" / "synth_00?.tif")],
                run,
                overrides=[
                    f"train.max_steps={args.steps}",
                    f"train.val_every={args.steps}",
                    "train.accelerator=gpu",
                    "train.devices=1",
                    "train.precision=bf16-mixed",
                ],
                progress=False,
            )
            val = summary["validation"]["val/bits_per_dim"]
            if not np.isfinite(val):
                raise RuntimeError(f"validation bits/dim {val}")
            return {
                "steps": summary["steps"],
                "train_seconds": summary["seconds"],
                "steps_per_s": round(summary["steps"] / summary["seconds"], 2),
                "precision": summary["precision"],
                "device": summary["device"],
                "val_bits_per_dim": round(float(val), 4),
                "verdict": (summary.get("collapse") or {}).get("verdict"),
            }

        def cuda_inference() -> dict:
            image = generate(shape=(4, 512, 512), seed=3).image
            gpu = load_model(run / "model.pt", device="cuda").reconstruct(image, "ZYX")
            cpu = load_model(run / "model.pt", device="cpu").reconstruct(image, "ZYX")
            diff = np.abs(gpu.astype(np.float64) - cpu.astype(np.float64))
            span = float(image.max() - image.min())
            if diff.mean() > 0.01 * span:
                raise RuntimeError(f"CUDA and CPU reconstructions differ by {diff.mean():.2f}")
            return {"mean_abs_diff": round(float(diff.mean()), 3), "range": span}

        def cuda_predict() -> dict:
            stack = generate(shape=(8, 1024, 1024), seed=4).image
            write_image(tmp / "stack.tif", stack, axes="ZYX")
            model = load_model(run / "model.pt", device="cuda")
            out = {}
            for fmt in ("tiff", "ome-zarr"):
                t0 = time.perf_counter()
                summary = process_stacks(
                    model, tmp / "stack.tif", tmp / f"out_{fmt}", format=fmt, progress=False
                )
                if summary.failed:
                    raise RuntimeError(summary.failed[0].message)
                seconds = time.perf_counter() - t0
                out[f"{fmt}_mpx_per_s"] = round(stack.size / 1e6 / seconds, 2)
            a = read_image(tmp / "out_tiff" / "stack_recon.tif").data
            b = read_image(tmp / "out_ome-zarr" / "stack_recon.ome.zarr").data
            out["formats_agree"] = bool(np.array_equal(a, b))
            return out

        _check("train_bf16_mixed", results, train_bf16)
        if results["train_bf16_mixed"]["ok"]:
            _check("cuda_inference_vs_cpu", results, cuda_inference)
            _check("cuda_predict", results, cuda_predict)
    path = write_result("gpu_check", results, device)
    print(path.read_text())
    return 0 if all(v.get("ok", True) for v in results.values() if isinstance(v, dict)) else 1


if __name__ == "__main__":
    sys.exit(main())
