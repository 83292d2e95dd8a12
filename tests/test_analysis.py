"""Analysis on trained models: collapse verdicts, phenotype embeddings, evaluate and diagnose.

Two small models are trained the same way (beta = 1, 400 steps, 64 x 64 tiles, a mix of
tubular and fragmented synthetic mitochondria): the ladder default and the deterministic
U-Net. About a minute of training on 2 cores for the whole module.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from microvae.cli.main import main
from microvae.errors import MicrovaeError
from microvae.inference import load_model
from microvae.latent import TileSet, embed, linear_probe, tiles_from_planes
from microvae.latent.diagnostics import diagnose
from microvae.report import evaluate
from microvae.synthetic import SynthParams, generate, write_synthetic_set

SMALL = [
    "data.tile_size=64",
    "model.levels=3",
    "model.base_channels=8",
    "model.max_channels=32",
    "model.latent_channels=8",
    "objective.beta=1.0",
    "objective.warmup_steps=50",
    "train.max_steps=400",
    "train.batch_size=8",
    "train.val_every=400",
    "train.checkpoint_every=400",
    "data.max_val_tiles=16",
    "data.val_fraction=0.25",
    "data.num_workers=0",
    "train.accelerator=cpu",
    "train.devices=1",
]
PHENOTYPES = ("tubular", "fragmented")
# the module trains two models in its fixtures (~1 min on 2 idle cores): room for a busy machine
pytestmark = pytest.mark.timeout(1200)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("analysis_data")
    for i, ph in enumerate(PHENOTYPES):
        write_synthetic_set(
            out,
            SynthParams(shape=(256, 256), phenotype=ph),
            n=6,
            seed=i,
            prefix=ph,
            progress=False,
        )
    with open(out / "labels.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["file", "phenotype"])
        for ph in PHENOTYPES:
            w.writerows([f"{ph}_{i:03d}.tif", ph] for i in range(6))
    return out


@pytest.fixture(scope="module")
def ladder(tmp_path_factory, data, train_tiny) -> Path:
    return _train(train_tiny, tmp_path_factory.mktemp("ladder"), data, "ladder")


@pytest.fixture(scope="module")
def deterministic(tmp_path_factory, data, train_tiny) -> Path:
    return _train(train_tiny, tmp_path_factory.mktemp("deterministic"), data, "deterministic")


def _train(train_tiny, base: Path, data: Path, mode: str) -> Path:
    """The shared tiny-model trainer with SMALL's larger settings (every TINY key)."""
    inputs = [str(data / f"{ph}_00?.tif") for ph in PHENOTYPES]
    return train_tiny(base / mode, inputs, SMALL + [f"model.skip_mode={mode}"])


def test_verdicts_deterministic_unet_collapses_and_ladder_stays_healthy(
    data, ladder, deterministic
):
    inputs = [str(data / "tubular_00[45].tif"), str(data / "fragmented_00[45].tif")]
    det = diagnose(load_model(deterministic), inputs)
    assert det["verdict"] == "collapsed", det
    lad = diagnose(load_model(ladder), inputs)
    assert lad["verdict"] == "healthy", lad
    assert lad["active_units"] > 0 and lad["sensitivity"] > 10 * det["sensitivity"]
    assert det["n_tiles"] == lad["n_tiles"] > 8
    assert len(lad["sensitivity_per_level"]) == 3 and len(lad["kl_per_level_nats"]) == 3


def test_embeddings_separate_tubular_from_fragmented_on_held_out_images(ladder):
    model = load_model(ladder)
    sets = []
    for ph in PHENOTYPES:
        for i in range(8):  # images the model never saw
            s = generate(shape=(256, 256), phenotype=ph, seed=2000 + i)
            sets.append(
                tiles_from_planes(
                    [s.image], 64, max_tiles=12, min_signal=0.1, source=f"{ph}{i}", label=ph
                )
            )
    tiles = TileSet.concat(sets)
    x = embed(model, tiles)
    y = np.array([lab == "tubular" for lab in tiles.labels], float)
    image = np.array([int(s[-1]) for s in tiles.sources])
    train, test = image < 4, image >= 4  # the classifier is tested on other images again
    acc = linear_probe(x[train], y[train], x[test], y[test])
    assert acc >= 0.75, acc  # chance is 0.5; a demo-sized model reaches 0.97
    assert 0.3 < y[test].mean() < 0.7


FIGURES = (
    "presence_0",
    "calibration",
    "crops",
    "frc",
    "kl",
    "embedding_pca",
    "prototype",
    "samples",
    "interpolation",
    "traversal",
    "holes",
    "density_paths",
)


def test_evaluate_writes_metrics_diagnostics_and_a_report_with_every_figure(
    tmp_path, data, ladder, capsys
):
    out = tmp_path / "eval"
    status = main(
        [
            "evaluate",
            str(ladder),
            str(data / "tubular_00[45].tif"),
            str(data / "fragmented_00[45].tif"),
            "--gt",
            "{stem}_gt.tif",
            "--labels",
            str(data / "labels.csv"),
            "--label-column",
            "phenotype",
            "--out",
            str(out),
            "--max-tiles",
            "48",
            "--split-noise",
            "--iwae",
            "8",
            "--samples",
            "4",
            "--no-progress",
        ]
    )
    assert status == 0
    printed = capsys.readouterr().out
    # how sure of each structure: intervals over 4 draws of each file's first plane, branch
    # presence, and the draws' calibration by the noise split
    unc = json.loads((out / "uncertainty.json").read_text())
    assert unc["samples"] == 4 and len(unc["planes"]) == 4
    for plane in unc["planes"]:
        value, low, high = plane["intervals"]["total_length_px"]
        assert low <= high and 0.3 < value < 3 and plane["branches"] > 0
    assert np.isfinite(unc["calibration"]["slope"]) and unc["calibration"]["slope_stderr"] > 0
    assert "## How sure of each structure" in (out / "report.md").read_text()
    assert "network length" in printed
    # the importance-weighted bound beside the ELBO: tighter (>=), in bits/dim of the tiles
    b = json.loads((out / "diagnostics.json").read_text())["bounds"]
    assert b["k"] == 8 and b["is_bound"] and b["iwae_nats"] >= b["elbo_nats"]
    side = int(round((b["elbo_nats"] / (-b["elbo_bits_per_dim"] * math.log(2))) ** 0.5))
    # nats per tile over the tile's pixels and ln 2: the training tile
    assert side == load_model(ladder).default_tile()
    assert f"IWAE_8 {b['iwae_bits_per_dim']:.4f} bits/dim" in printed
    assert "## Likelihood bounds" in (out / "report.md").read_text()
    assert "noise-split estimate of the error to the signal" in printed
    assert "reconstruction vs ground truth" in printed and "report:" in printed
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    pairs = {(r["file"], r["reference"], r["compared"]) for r in rows}
    for f in ("tubular_005.tif", "fragmented_005.tif", "all"):
        assert (f, "input", "reconstruction") in pairs
        assert (f, "ground truth", "reconstruction") in pairs
        assert (f, "ground truth", "input") in pairs
    mean = {(r["reference"], r["compared"]): r for r in rows if r["file"] == "all"}
    recon, noisy = mean["ground truth", "reconstruction"], mean["ground truth", "input"]
    assert float(recon["psnr_db"]) > float(noisy["psnr_db"])  # the model denoises
    for key in ("frc_resolution_px", "frc_resolution_um", "hf_ratio", "ratio_n_junctions"):
        assert np.isfinite(float(recon[key])), key
    # without ground truth: the camera's gain found from the images (synthetic: 30.71 ADU per
    # photo-electron), and an error estimate of the half-dose reconstruction above that of
    # the full-dose one against the ground truth (half the photons, more noise to remove)
    split = mean["input", "reconstruction"]
    assert float(split["split_gain"]) == pytest.approx(30.71, rel=0.1)
    assert float(split["split_mse"]) > 0.5 * float(recon["mse"])
    diag = json.loads((out / "diagnostics.json").read_text())
    assert diag["verdict"] == "healthy" and diag["n_tiles"] > 8
    report = (out / "report.md").read_text()
    for name in FIGURES:
        png = out / "figures" / f"{name}.png"
        assert f"figures/{name}.png" in report, name
        with Image.open(png) as im:
            pixels = np.asarray(im.convert("L"))
        assert pixels.shape[0] > 100 and pixels.std() > 5, name  # drawn, not blank
    assert "| fragmented | tubular |" in report  # the hole between the two labels
    assert "tells the labels of" in report  # two files per label: a probe on the other files
    assert "Verdict: **healthy**" in report
    assert "by noise splitting" in report
    # the samples' morphology against the data tiles', top level from the fitted aggregate
    # posterior at T = 1 and 0.7, and from the learned prior
    assert "morphology distance to the data" in printed
    assert "Do the samples look like the data?" in report
    real = json.loads((out / "latent.json").read_text())["realism"]
    assert set(real) == {
        "aggregate prior, T = 1",
        "aggregate prior, T = 0.7",
        "learned prior, T = 1",
    }
    for r in real.values():
        assert r["data"]["tiles"] > 8 and r["data"]["length_density"] > 0
        assert r["reference_score"] >= 0 and 0 <= r["samples_kept"] <= 1
        assert r["score"] is None or r["score"] >= 0


def test_evaluate_of_a_deterministic_unet_says_it_cannot_generate(tmp_path, data, deterministic):
    result = evaluate(
        load_model(deterministic),
        [data / "tubular_005.tif"],
        tmp_path,
        max_tiles=16,
        progress=False,
    )
    assert result.diagnostics["verdict"] == "collapsed"
    assert set(result.figures) == {"crops", "frc", "kl", "embedding"}
    assert "cannot generate" in result.report.read_text()
    with pytest.raises(MicrovaeError, match="cannot sample"):  # before any work
        evaluate(load_model(deterministic), [data / "tubular_005.tif"], tmp_path, samples=4)


def test_evaluate_reports_a_missing_ground_truth(tmp_path, data, ladder, capsys):
    status = main(
        [
            "evaluate",
            str(ladder),
            str(data / "tubular_000.tif"),
            "--gt",
            "{stem}_truth.tif",
            "--out",
            str(tmp_path),
        ]
    )
    assert status == 2
    assert "tubular_000_truth.tif: ground truth not found" in capsys.readouterr().err


def test_diagnose_command_text_json_and_stored(data, deterministic, capsys):
    assert main(["diagnose", str(deterministic), str(data / "tubular_005.tif")]) == 0
    text = capsys.readouterr().out
    assert "verdict: collapsed" in text and "level 0: KL" in text
    assert main(["diagnose", str(deterministic), str(data / "tubular_005.tif"), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["verdict"] == "collapsed" and d["skip_mode"] == "deterministic"
    assert main(["diagnose", str(deterministic), "--json"]) == 0  # the model file's numbers
    stored = json.loads(capsys.readouterr().out)
    assert stored["source"].startswith("the model file") and stored["verdict"] == "collapsed"


def test_predict_with_fine_metrics(tmp_path, data, ladder):
    out = tmp_path / "pred"
    assert (
        main(
            [
                "predict",
                str(ladder),
                str(data / "tubular_005.tif"),
                "--out",
                str(out),
                "--metrics",
                "fine",
                "--no-progress",
            ]
        )
        == 0
    )
    (row,) = list(csv.DictReader(open(out / "metrics.csv")))
    assert float(row["frc_resolution_um"]) == pytest.approx(float(row["frc_resolution_px"]) * 0.065)
    assert 0.5 < float(row["hf_ratio"]) < 1.5 and float(row["ratio_total_length_px"]) > 0.5
