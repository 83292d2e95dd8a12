"""Training on stacks in 3D: volumes in, 3D tiles with signal, anisotropy-aware augmentation
and Z strides from the files' voxel size, a split by blocks of planes, a model file out."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import torch

import microvae
from microvae.config import ConfigError
from microvae.data import DataConfig, prepare_data
from microvae.data.augment import Augmenter
from microvae.data.sources import DataError
from microvae.data.tile_sampler import signal_share
from microvae.synthetic import generate

VOXEL = {"Z": 0.2, "Y": 0.05, "X": 0.05}  # Z 4x coarser: Z keeps its size at level 1


@pytest.fixture(scope="module")
def stacks(tmp_path_factory) -> Path:
    """Two synthetic ZYX stacks (16 x 64 x 64) with their voxel size, and one without."""
    folder = tmp_path_factory.mktemp("stacks")
    for i in range(2):
        s = generate(shape=(16, 64, 64), seed=i, z_step_um=0.2, pixel_size_um=0.05)
        microvae.write_image(folder / f"s{i}.tif", s.image, axes="ZYX", pixel_size=VOXEL)
    bare = generate(shape=(16, 64, 64), seed=5, z_step_um=0.2, pixel_size_um=0.05).image
    microvae.write_image(folder.parent / "bare.tif", bare, axes="ZYX", pixel_size={})
    return folder


def test_signal_share_in_3d_matches_counting():
    rng = np.random.default_rng(0)
    mask = rng.random((7, 11, 13)) > 0.7
    tile, stride = (3, 4, 5), (2, 3, 4)
    pos, share = signal_share(mask, tile, stride)
    for (z, y, x), s in zip(pos, share):
        box = mask[z : z + 3, y : y + 4, x : x + 5]
        assert s == pytest.approx(box.mean())
    assert len(pos) == len(range(0, 5, 2)) * len(range(0, 8, 3)) * len(range(0, 9, 4))


def test_volume_augmentation_keeps_z_apart_from_xy():
    """Every augmented volume is one of the 16 transforms: a D4 transform of each plane (the
    same for all) and Z flipped or not; Z never moves into XY."""
    v = np.arange(4 * 5 * 5, dtype=np.uint16).reshape(4, 5, 5)
    allowed = set()
    for flip_z, k, flip in itertools.product((False, True), range(4), (False, True)):
        w = v[::-1] if flip_z else v
        w = np.rot90(w, k, axes=(1, 2))
        w = w[:, :, ::-1] if flip else w
        allowed.add(np.ascontiguousarray(w).tobytes())
    rng = np.random.default_rng(0)
    seen = {Augmenter()(v, rng).tobytes() for _ in range(300)}
    assert seen <= allowed and len(seen) == 16


def test_prepare_data_in_3d_gives_volume_tiles(stacks):
    cfg = DataConfig(tile_size=32, tile_depth=8, max_val_tiles=4, split="within")
    data = prepare_data([stacks / "s0.tif"], cfg, n_train_tiles=6, seed=0, dims=3)
    tiles = torch.stack([data.train[i] for i in range(6)])
    assert tiles.shape == (6, 1, 8, 32, 32) and tiles.dtype == torch.float32
    assert data.val[0].shape == (1, 8, 32, 32)
    assert data.summary["z_over_xy"] == pytest.approx(4.0)
    # 16 planes: a central block of 8 would leave 4 on each side, too few for a tile 8
    # deep; a band of rows validates instead, every plane kept
    assert data.summary["split"].startswith("by rows of s0.tif")
    assert [p.shape for p in data.val.planes] == [(16, 32, 64)]
    deep = prepare_data(
        [stacks / "s0.tif"],
        DataConfig(tile_size=32, tile_depth=4, split="within"),
        n_train_tiles=1,
        dims=3,
    )
    assert deep.summary["split"].startswith("by planes of s0.tif: planes 6-9 for validation")
    assert [p.shape[0] for p in deep.train.planes] == [6, 6]
    with pytest.raises(DataError, match="cannot be split"):
        prepare_data(
            [stacks / "s0.tif"],
            DataConfig(tile_size=48, tile_depth=12, split="within"),
            n_train_tiles=1,
            dims=3,
        )


@pytest.fixture(scope="module")
def model3d(stacks, tmp_path_factory, tiny_overrides) -> Path:
    """A tiny 3D ladder trained on the two stacks (20 steps): its model file."""
    overrides = [
        *tiny_overrides,
        "model.dims=3",
        "data.tile_depth=8",
        "train.max_steps=20",
        "train.val_every=10",
        "data.split=file",
    ]
    out = tmp_path_factory.mktemp("run3d") / "run"
    microvae.train(None, str(stacks / "s?.tif"), out, overrides=overrides, progress=False)
    return out / "model.pt"


def test_a_3d_model_trains_end_to_end(model3d):
    """``microvae.train`` with model.dims 3: Z strides from the files' voxels, a model file
    that loads and reconstructs a volume tile."""
    model = microvae.load_model(model3d, device="cpu")
    cfg = model.config.model
    # voxels 4x deeper than wide: after two levels XY has caught up, so Z never halves
    assert cfg.dims == 3 and cfg.z_strides == [1, 1]
    assert np.isfinite(model.summary["validation"]["val/bits_per_dim"])
    x = torch.zeros(1, 1, 8, 32, 32)
    assert model.vae.reconstruct(x).shape == x.shape


def test_a_3d_model_reconstructs_stacks_in_3d(model3d, stacks, tmp_path):
    """Stacks of any depth through the block pipeline: every plane, in the input's dtype;
    a TZYX file one time point at a time; predict's TIFF and OME-Zarr outputs agree with the
    Python API, and a second run resumes."""
    model = microvae.load_model(model3d, device="cpu")
    volume = microvae.read_image(stacks / "s0.tif")
    recon = model.reconstruct(volume.data, axes="ZYX")
    assert recon.shape == volume.shape and recon.dtype == volume.dtype
    r = np.corrcoef(recon.astype(float).ravel(), volume.data.astype(float).ravel())[0, 1]
    assert r > 0.5  # a reconstruction of this stack, not noise or a constant
    # a stack whose file does not name its axis (a bare page stack) is read as Z
    np.testing.assert_array_equal(model.reconstruct(volume.data, axes="QYX"), recon)
    odd = model.reconstruct(volume.data[:13], axes="ZYX")  # not a multiple of the tile
    assert odd.shape == (13, 64, 64)
    both = model.reconstruct(np.stack([volume.data, volume.data]), axes="TZYX")
    np.testing.assert_array_equal(both[1], recon)
    for fmt in ("tiff", "ome-zarr"):
        out = tmp_path / fmt

        def predict(resume: bool, fmt=fmt, out=out):
            return microvae.process_stacks(
                model,
                [stacks / "s0.tif"],
                out,
                outputs=("reconstruction", "embedding"),
                format=fmt,
                progress=False,
                resume=resume,
            )

        summary = predict(resume=False)
        assert not summary.failed, summary.failed
        written = next(p for p in out.iterdir() if p.name.startswith("s0_recon"))
        np.testing.assert_array_equal(microvae.read_image(written).data, recon)
        assert "1 already complete" in predict(resume=True).line()


def test_a_3d_model_says_what_a_plane_lacks(model3d):
    model = microvae.load_model(model3d, device="cpu")
    with pytest.raises(microvae.errors.AxesError, match="have no Z; a 3D model reads stacks"):
        model.reconstruct(np.zeros((64, 64), np.uint16))


def test_a_3d_model_without_voxel_size_says_what_to_set(stacks, tmp_path, tiny_overrides):
    with pytest.raises(ConfigError, match="data.z_over_xy"):
        microvae.train(
            None,
            str(stacks.parent / "bare.tif"),
            tmp_path / "run",
            overrides=[*tiny_overrides, "model.dims=3", "data.tile_depth=4"],
            progress=False,
        )


def test_what_3d_models_cannot_do_yet_says_so_in_one_line(model3d, stacks):
    from microvae.errors import ShapeError
    from microvae.latent import collect_tiles

    model = microvae.load_model(model3d, device="cpu")
    with pytest.raises(ShapeError, match="a 3D model .* takes 2D models for now"):
        collect_tiles(model, [stacks / "s0.tif"])


def test_evaluate_scores_a_3d_model_per_plane_and_per_volume(model3d, tmp_path, caplog, capsys):
    """evaluate with a 3D model: per-plane rows from the volume's reconstruction, a row per
    volume and comparison with the 3D network and Z metrics, the noise-split estimate over
    the volume, how sure of each structure in the first volume (samples), and a report that
    says what it leaves to 2D models."""
    from microvae.metrics import network_3d_ratios
    from microvae.report import evaluate

    folder = tmp_path / "in"
    folder.mkdir()
    s = generate(shape=(16, 64, 64), seed=7, z_step_um=0.2, pixel_size_um=0.05)
    microvae.write_image(folder / "v.tif", s.image, axes="ZYX", pixel_size=VOXEL)
    microvae.write_image(folder / "v_gt.tif", s.ground_truth, axes="ZYX", pixel_size=VOXEL)
    model = microvae.load_model(model3d, device="cpu")
    result = evaluate(
        model,
        folder,
        tmp_path / "ev",
        gt="{stem}_gt.tif",
        split_noise=True,
        progress=False,
        samples=3,
    )
    planes = [r for r in result.rows if r["file"] == "v.tif" and r["plane"] != "volume"]
    volumes = {(r["reference"], r["compared"]): r for r in result.rows if r["plane"] == "volume"}
    assert len(planes) == 3 * 16 and len(volumes) == 3
    # the ground truth against the input needs no model: its 3D ratios, computed here apart
    _, _, direct = network_3d_ratios(s.ground_truth, s.image, voxel=(0.2, 0.05, 0.05))
    row = volumes[("ground truth", "input")]
    for key, value in direct.items():
        assert row[f"net3d_{key}"] == pytest.approx(value, nan_ok=True)
    # noise adds power between planes that the noise-free truth lacks
    assert row["hf_ratio_z"] > 1 and row["frc_z_planes"] > 2
    assert np.isfinite(volumes[("ground truth", "reconstruction")]["hf_ratio_z"])
    rec = volumes[("input", "reconstruction")]
    assert np.isfinite(rec["split_psnr_db"]) and "hf_ratio_z" in rec
    assert "split_psnr_db" not in planes[0]  # over the volume, not per plane
    means = {(r["reference"], r["compared"]): r for r in result.rows if r["file"] == "all"}
    assert means[("input", "reconstruction")]["net3d_total_length"] == pytest.approx(
        rec["net3d_total_length"]
    )
    # the first volume's 3D network over 3 draws, branch presence and the calibration curve
    unc = json.loads((tmp_path / "ev" / "uncertainty.json").read_text())
    (vol,) = unc["planes"]
    assert set(vol["intervals"]) >= {"total_length", "n_junctions", "volume"}
    value, low, high = vol["intervals"]["total_length"]
    assert low <= high and np.isfinite(value)
    assert (tmp_path / "ev" / vol["figure"]).is_file() and "slope" in unc["calibration"]
    report = result.report.read_text()
    assert "## How sure of each structure" in report and "3D length" in report
    assert "## Volumes" in report and "take 2D models for now" in report
    assert "8x32x32 tiles" in report and (tmp_path / "ev" / "figures" / "crops.png").is_file()
    assert "latent diagnostics, embeddings and generation figures take 2D" in caplog.text
    from microvae.cli.evaluate_cmd import _say

    _say(result, split_noise=True)  # what `microvae evaluate` prints of it
    said = capsys.readouterr().out
    assert "volumes: 3D network length ratio" in said and "noise-split estimate" in said
