"""Synthetic image sets on disk: noisy images, their ground truth and a manifest."""

from __future__ import annotations

from pathlib import Path

from tqdm import tqdm

from ..io import write_csv, write_image
from .params import SynthParams
from .simulate import generate, image_seed

__all__ = ["MANIFEST", "write_synthetic_set"]

MANIFEST = "manifest.csv"


def write_synthetic_set(
    out_dir: Path,
    params: SynthParams,
    *,
    n: int,
    seed: int,
    labels: bool = False,
    prefix: str = "synth",
    progress: bool = True,
) -> list[dict]:
    """Generate and write ``n`` images to ``out_dir``: PREFIX_000.tif, its noise-free ground
    truth PREFIX_000_gt.tif (and with ``labels`` PREFIX_000_labels.tif), ...; returns the
    manifest rows (phenotype, seed, camera, network statistics), also in manifest.csv."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in tqdm(range(n), desc="synth", unit="image", disable=not progress):
        s = generate(params, seed=image_seed(seed, i))
        name = f"{prefix}_{i:03d}"
        meta = {"axes": s.axes, "pixel_size": s.pixel_size, "unit": s.unit}
        write_image(out_dir / f"{name}.tif", s.image, **meta)
        write_image(out_dir / f"{name}_gt.tif", s.ground_truth, **meta)
        if labels:
            write_image(out_dir / f"{name}_labels.tif", s.labels, **meta)
        rows.append(
            {
                "file": f"{name}.tif",
                "ground_truth": f"{name}_gt.tif",
                "phenotype": s.phenotype,
                "seed": seed,
                "index": i,
                "shape": "x".join(map(str, s.image.shape)),
                "dtype": s.image.dtype.name,
                "bit_depth": params.bit_depth,
                "camera_offset_adu": s.camera.offset,
                "camera_gain_adu_per_photon": round(s.camera.gain, 4),
                "read_noise_adu": round(s.camera.read_noise_adu, 4),
                **{
                    f"network_{k}": (round(v, 3) if isinstance(v, float) else v)
                    for k, v in s.network.items()
                },
            }
        )
    write_csv(out_dir / MANIFEST, rows)
    return rows
