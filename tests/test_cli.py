"""The synth and inspect commands, called as a user would."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import numpy as np
import pytest
import tifffile

from microvae.cli.main import main
from microvae.io import read_image


def _run(*args):
    return subprocess.run(
        [sys.executable, "-m", "microvae.cli.main", *map(str, args)], capture_output=True, text=True
    )


def test_synth_writes_images_ground_truth_and_manifest(tmp_path, capsys):
    out = tmp_path / "syn"
    assert (
        main(
            [
                "synth",
                str(out),
                "--n",
                "3",
                "--shape",
                "96x80",
                "--phenotype",
                "mixed",
                "--dtype",
                "uint8",
                "--seed",
                "4",
                "--labels",
            ]
        )
        == 0
    )
    assert "wrote 3 mixed images" in capsys.readouterr().out
    names = sorted(p.name for p in out.iterdir())
    assert names == ["manifest.csv"] + [
        f"synth_00{i}{s}.tif" for i in range(3) for s in ("", "_gt", "_labels")
    ]
    rows = list(csv.DictReader(open(out / "manifest.csv")))
    assert [r["phenotype"] for r in rows] == ["mixed"] * 3
    assert rows[0]["ground_truth"] == "synth_000_gt.tif" and rows[0]["bit_depth"] == "8"
    img, gt = read_image(out / "synth_001.tif"), read_image(out / "synth_001_gt.tif")
    assert img.axes == gt.axes == "YX" and img.shape == (96, 80) and img.dtype == np.uint8
    assert img.pixel_size == pytest.approx({"X": 0.065, "Y": 0.065}) and img.unit == "um"
    labels = read_image(out / "synth_001_labels.tif").data
    assert set(np.unique(labels)) == {0, 1, 2}
    # ground truth and noisy image agree up to noise
    diff = img.data.astype(float) - gt.data.astype(float)
    assert abs(diff.mean()) < 2 and 0 < diff.std() < 20


def test_synth_stacks_and_seed_determinism(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["synth", str(a), "--n", "2", "--shape", "6x64x64", "--seed", "9"]) == 0
    assert main(["synth", str(b), "--n", "3", "--shape", "6x64x64", "--seed", "9"]) == 0
    rec = read_image(a / "synth_001.tif")
    assert rec.axes == "ZYX" and rec.shape == (6, 64, 64) and rec.pixel_size["Z"] == 0.2
    # image i does not depend on how many images were made
    for i in (0, 1):
        assert (
            tifffile.imread(a / f"synth_00{i}.tif") == tifffile.imread(b / f"synth_00{i}.tif")
        ).all()
    assert not (tifffile.imread(b / "synth_000.tif") == tifffile.imread(b / "synth_001.tif")).all()


@pytest.mark.parametrize(
    "args,message",
    [
        (["--shape", "512"], "--shape: shape '512' must have 2"),
        (["--shape", "axb"], "is not YxX or ZxYxX"),
        (["--shape", "4x4"], "--shape: "),
        (["--n", "0"], "--n must be at least 1"),
        (["--phenotype", "blobs"], "invalid choice"),
    ],
)
def test_synth_bad_options(tmp_path, args, message):
    res = _run("synth", tmp_path / "o", *args)
    assert res.returncode == 2 and message in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "o").exists()


def test_synth_out_dir_is_a_file(tmp_path):
    (tmp_path / "f").write_text("x")
    res = _run("synth", tmp_path / "f", "--n", "1", "--shape", "32x32")
    assert res.returncode == 2 and "exists and is not a folder" in res.stderr


def test_inspect_text_and_json(tmp_path, capsys):
    assert main(["synth", str(tmp_path), "--n", "1", "--shape", "5x40x48"]) == 0
    capsys.readouterr()
    path = tmp_path / "synth_000.tif"
    assert main(["inspect", str(path)]) == 0
    text = capsys.readouterr().out
    for expected in (
        "axes        ZYX",
        "shape       5 x 40 x 48",
        "uint16, 12-bit",
        "0.2 x 0.065 x 0.065 um (ZYX)",
        "5 planes of 40 x 48 (over Z)",
        "3D model    1 volume of 5 x 40 x 48, voxels 3.08x as deep as wide",
    ):
        assert expected in text
    assert main(["inspect", "--json", str(path)]) == 0
    (info,) = json.loads(capsys.readouterr().out)
    data = tifffile.imread(path)
    assert info["axes"] == "ZYX" and info["shape"] == [5, 40, 48] and info["n_planes"] == 5
    assert info["bit_depth"] == 12 and info["dtype"] == "uint16"
    assert (info["min"], info["max"]) == (data.min(), data.max())
    assert info["pixel_size"] == pytest.approx({"Z": 0.2, "Y": 0.065, "X": 0.065})


def test_inspect_json_lists_failures_too(tmp_path, capsys):
    (tmp_path / "bad.tif").write_bytes(b"\x00" * 10)
    assert main(["inspect", "--json", str(tmp_path / "bad.tif")]) == 2
    out = capsys.readouterr()
    (entry,) = json.loads(out.out)
    assert "bad.tif" in entry["error"] and out.err.startswith("microvae: error: ")


@pytest.mark.real_data
def test_inspect_real_files(real_data, capsys):
    files = sorted(real_data.glob("*.tif"))
    assert main(["inspect", "--json", *map(str, files)]) == 0
    by_name = {e["file"].rsplit("/", 1)[-1]: e for e in json.loads(capsys.readouterr().out)}
    hela = by_name["hela-cells.tif"]
    assert hela["axes"] == "YXS" and hela["n_channels"] == 3 and hela["channel_axis"] == "S"
    assert by_name["MitoGraphTest001.tif"]["n_planes"] == 41
    assert by_name["123002002001.tif"]["bit_depth"] == 8


def test_the_core_runs_without_the_optional_extras(tmp_path, tiny_model_path):
    """Without zarr/ome-zarr, dask.distributed and bioimageio: microvae imports, info and
    predict on TIFFs run, and what needs an extra names it."""
    from microvae.io import write_image
    from microvae.synthetic import generate

    write_image(tmp_path / "s.tif", generate(shape=(2, 40, 40), seed=0).image, axes="ZYX")
    code = f"""
import sys
for name in ("zarr", "ome_zarr", "distributed", "bioimageio", "napari"):
    sys.modules[name] = None  # not installed: importing it raises ImportError
import microvae
from microvae.cli.main import main
model, data, out = {str(tiny_model_path)!r}, {str(tmp_path / "s.tif")!r}, {str(tmp_path)!r}
assert main(["info", model]) == 0
assert main(["predict", model, data, "--out", out + "/a", "--no-progress"]) == 0
for extra, args in (
    ("zarr", ["predict", model, data, "--out", out + "/b", "--format", "ome-zarr"]),
    ("dask", ["predict", model, data, "--out", out + "/c", "--dask", "local:1"]),
    ("bioimageio", ["export", model, "--bioimageio", out + "/m.zip"]),
):
    assert main(args) == 2, extra
print("core ok")
"""
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert "core ok" in p.stdout
    for extra in ("zarr", "dask", "bioimageio"):
        assert f"pip install 'microvae[{extra}]'" in p.stderr, extra
    assert (tmp_path / "a" / "s_recon.tif").is_file()


def test_configs_are_presets_by_name(tmp_path, capsys):
    from microvae.config import PRESETS, load_config

    assert main(["configs"]) == 0
    listed = capsys.readouterr().out
    for name in ("cpu", "demo", "mito2d", "em2d", "baseline-gaussian", "unet-deterministic"):
        assert f"\n{name} " in f"\n{listed}", name
        assert load_config(name) == load_config(PRESETS / f"{name}.yaml")
    assert main(["configs", "--copy", "cpu", "--to", str(tmp_path / "mine.yaml")]) == 0
    assert (tmp_path / "mine.yaml").read_text() == (PRESETS / "cpu.yaml").read_text()
    assert main(["configs", "--copy", "cpu", "--to", str(tmp_path / "mine.yaml")]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["train", "cpu2", "--data", str(tmp_path), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "cpu2: no config of that name (presets: baseline-gaussian, cpu," in err
