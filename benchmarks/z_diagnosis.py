"""Why the 3D model trails the 2D one on the Z-stacks: how much Z can give, and how fast 3D
variants learn at an equal number of steps.

1. **What Z can give, by linear filters.** On synthetic ZYX stacks (the generator's optics:
   lateral PSF sigma 0.08 um, axial 0.21 um, i.e. about one 0.2 um plane), against the ground
   truth: the oracle Wiener filter, its gains per frequency from the true signal and noise
   spectra, applied per plane (2D) and to the volume (3D). The gap is what pooling planes can
   add to a per-plane linear estimate. On the real stacks' held-out blocks, without ground
   truth: the best Gaussian blur in XY alone, and in XY and Z, scored by the noise-split
   estimate (as benchmarks/stacks3d.py scores the models).
2. **How fast variants learn.** On MitoGraphTest001 (held-out block and training planes as in
   stacks3d.py), every variant trains for the same number of steps: the 2D model of
   cpu.yaml without its full-resolution level, cpu3d.yaml as it is (8 channels at full
   resolution), and at 16 channels with 3-wide Z kernels everywhere, with nnU-Net's rule
   (``z_kernels_for``: one plane where the voxel is over twice as deep as wide), and with
   one-plane kernels at every resolution (Z meets only through the top level's stride and
   GroupNorm). Seconds and noise-split PSNR per variant.

    python benchmarks/z_diagnosis.py               # ~25 min on 2 cores
    python benchmarks/z_diagnosis.py --steps 100 --name z_diagnosis_smoke
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _results import write_result
from scipy import ndimage as ndi
from stacks3d import REAL, SETS, VOXEL, score, split_stack, train

from microvae import read_image, write_image
from microvae.metrics import split_noise_error
from microvae.model import z_kernels_for
from microvae.synthetic import generate

Z_OVER_XY = VOXEL["Z"] / VOXEL["X"]
WIDE = ["model.base_channels=16", "model.max_channels=64"]
VARIANTS = {
    "2d (cpu.yaml, no full-resolution level)": ("cpu", ["model.full_resolution_latent=0"]),
    "3d cpu3d.yaml (8 channels, 3-wide Z)": ("cpu3d", []),
    "3d 16 channels, 3-wide Z": ("cpu3d", WIDE),
    "3d 16 channels, nnU-Net z_kernels": (
        "cpu3d",
        [*WIDE, f"model.z_kernels={z_kernels_for(3, Z_OVER_XY)}".replace(" ", "")],
    ),
    "3d 16 channels, one-plane kernels": ("cpu3d", [*WIDE, "model.z_kernels=[1,1,1,1]"]),
}


def _psnr(x: np.ndarray, truth: np.ndarray) -> float:
    rng = float(truth.max() - truth.min())
    return float(10 * np.log10(rng**2 / np.mean((x - truth) ** 2)))


def wiener_gap(z_step_um: float, seed: int) -> dict:
    """PSNR (dB) against the ground truth of the input, the per-plane and the volume oracle
    Wiener filters, on one synthetic stack of 32 x 192 x 192."""
    s = generate(shape=(32, 192, 192), seed=seed, z_step_um=z_step_um)
    x, truth = s.image.astype(np.float64), s.ground_truth.astype(np.float64)
    m, noise = truth.mean(), x - truth
    # the signal's power per frequency, smoothed over 3 bins (a periodogram is too rough to
    # divide by); the noise's, flat (it is white)
    s3 = ndi.uniform_filter(np.abs(np.fft.fftn(truth - m)) ** 2, 3)
    n3 = np.mean(np.abs(np.fft.fftn(noise)) ** 2)
    r3 = np.real(np.fft.ifftn(s3 / (s3 + n3) * np.fft.fftn(x - m))) + m
    s2 = ndi.uniform_filter(np.abs(np.fft.fft2(truth - m)) ** 2, (1, 3, 3)).mean(0)
    n2 = np.mean(np.abs(np.fft.fft2(noise)) ** 2)
    r2 = np.real(np.fft.ifft2(s2 / (s2 + n2) * np.fft.fft2(x - m))) + m
    return {
        "z_step_um": z_step_um,
        "seed": seed,
        "input_db": _psnr(x, truth),
        "wiener_2d_db": _psnr(r2, truth),
        "wiener_3d_db": _psnr(r3, truth),
    }


def gaussian_gap(block: np.ndarray) -> dict:
    """The best Gaussian blur's noise-split PSNR on a held-out block, in XY alone and in XY
    and Z (sigmas in pixels and planes)."""
    best: dict[str, tuple[float, list[float]]] = {"xy": (-np.inf, []), "xyz": (-np.inf, [])}
    for sxy in (0.5, 0.7, 0.9, 1.1):
        for sz in (0.0, 0.4, 0.7, 1.0):
            est = split_noise_error(
                block,
                lambda v, sigma=(sz, sxy, sxy): ndi.gaussian_filter(v.astype(np.float64), sigma),
            )
            for key in ("xy", "xyz") if sz == 0 else ("xyz",):
                if est.psnr_db > best[key][0]:
                    best[key] = (est.psnr_db, [sz, sxy])
    return {f"best_{k}_db": v[0] for k, v in best.items()} | {
        f"best_{k}_sigma_z_xy": v[1] for k, v in best.items()
    }


def variants(work: Path, steps: int) -> dict:
    volume = read_image(REAL / SETS["MitoGraphTest001"]).data
    parts, block, _ = split_stack(volume)
    files = []
    for i, part in enumerate(parts):
        path = work / f"train{i}.tif"
        write_image(path, part, axes="ZYX", pixel_size=VOXEL)
        files.append(str(path))
    common = [
        "data.split=within",
        "train.accelerator=cpu",
        "train.devices=1",
        f"train.max_steps={steps}",
        f"train.val_every={steps}",
        f"train.checkpoint_every={steps}",
        f"objective.warmup_steps={steps // 6}",
    ]
    out = {}
    for i, (name, (config, overrides)) in enumerate(VARIANTS.items()):
        model, seconds, summary = train(config, files, work / f"v{i}", [*common, *overrides])
        rec = model.reconstruct(block, "ZYX").astype(np.float64)
        out[name] = {
            "config": config,
            "overrides": overrides,
            "seconds": seconds,
            "verdict": summary["collapse"].get("verdict"),
            "rmse_to_input": float(np.sqrt(np.mean((rec - block) ** 2))),
            **score(model, block),
        }
        print(f"{name}: {out[name]['split_psnr_db']:.2f} dB in {seconds:.0f} s", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=300, help="training steps of every variant")
    ap.add_argument("--name", default="z_diagnosis")
    args = ap.parse_args()
    started = time.time()
    result: dict = {
        "wiener": [wiener_gap(z, seed) for z in (0.2, 0.1) for seed in (3, 4)],
        "steps": args.steps,
    }
    print("oracle Wiener:", result["wiener"], flush=True)
    if REAL.is_dir():
        result["gaussian"] = {
            name: gaussian_gap(split_stack(read_image(REAL / file).data)[1])
            for name, file in SETS.items()
        }
        with tempfile.TemporaryDirectory() as tmp:
            result["variants"] = variants(Path(tmp), args.steps)
    else:
        print(f"skipped the real stacks: {REAL} is absent")
    result["seconds"] = round(time.time() - started)
    write_result(args.name, result, torch.device("cpu"))


if __name__ == "__main__":
    main()
