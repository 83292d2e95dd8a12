"""Do the embeddings separate tubular from fragmented mitochondria on images the model never saw?

Trains configs/demo.yaml (or --config) on synthetic tubular and fragmented images, embeds the
tiles (with signal) of held-out images of both phenotypes, and scores a linear probe fitted on
half of the held-out images and tested on the other half (split by image). Also reports the
collapse verdict. Writes results/embedding_separation.json.

    python benchmarks/embedding_separation.py [--steps 800] [--config configs/demo.yaml]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from _results import write_result

from microvae.inference import load_model
from microvae.latent import TileSet, embed, linear_probe, split_by_group, tiles_from_planes
from microvae.latent.diagnostics import diagnose
from microvae.synthetic import SynthParams, generate, write_synthetic_set
from microvae.training.session import fit

ROOT = Path(__file__).resolve().parents[1]
PHENOTYPES = ("tubular", "fragmented")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, default=ROOT / "configs" / "demo.yaml")
    ap.add_argument("--steps", type=int, default=800)
    ap.add_argument("--train-images", type=int, default=6, help="per phenotype")
    ap.add_argument("--test-images", type=int, default=8, help="per phenotype")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        for i, ph in enumerate(PHENOTYPES):
            write_synthetic_set(
                data,
                SynthParams(shape=(256, 256), phenotype=ph),
                n=args.train_images,
                seed=i,
                prefix=ph,
                progress=False,
            )
        t0 = time.perf_counter()
        run, summary = fit(
            args.config,
            [str(data / f"{ph}_0??.tif") for ph in PHENOTYPES],
            Path(tmp) / "run",
            overrides=[f"train.max_steps={args.steps}", "data.num_workers=0"],
            progress=False,
        )
        seconds = time.perf_counter() - t0
        model = load_model(run / "model.pt")
        sets = []
        for ph in PHENOTYPES:
            for i in range(args.test_images):
                s = generate(shape=(256, 256), phenotype=ph, seed=2000 + i)
                sets.append(
                    tiles_from_planes(
                        [s.image],
                        model.default_tile(),
                        max_tiles=16,
                        min_signal=0.1,
                        source=f"{ph}{i}",
                        label=ph,
                    )
                )
        tiles = TileSet.concat(sets)
        x = embed(model, tiles)
        labels = np.asarray(tiles.labels)
        train, test = split_by_group(tiles.sources, labels)
        acc = linear_probe(x[train], labels[train], x[test], labels[test])
        flat = embed(model, tiles, how="flat")
        flat_acc = linear_probe(flat[train], labels[train], flat[test], labels[test])
        diag = diagnose(model, tiles)
    payload = {
        "config": str(args.config.relative_to(ROOT)),
        "steps": args.steps,
        "training_seconds": round(seconds, 1),
        "held_out_tiles": {"probe_fit": int(train.sum()), "probe_test": int(test.sum())},
        "probe_accuracy_pooled": round(acc, 4),
        "probe_accuracy_flat_top_level": round(flat_acc, 4),
        "embedding_dimension": int(x.shape[1]),
        "verdict": diag["verdict"],
        "active_units": f"{diag['active_units']}/{diag['total_units']}",
    }
    path = write_result("embedding_separation", payload)
    print(payload)
    print(f"written: {path}")


if __name__ == "__main__":
    main()
