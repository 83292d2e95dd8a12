"""The plugin's work without Qt: iterate the generators, check errors and results."""

from __future__ import annotations

import numpy as np
import pytest

import microvae
from microvae.inference import TileOptions
from microvae.metrics import psnr
from microvae.report import structure_uncertainty
from microvae.synthetic import generate
from napari_microvae._work import (
    PluginError,
    check_layer,
    interpolation,
    latent_tile,
    load,
    presence_colours,
    reconstruct_steps,
    structure_text,
    summary_metrics,
    total_steps,
    view_box,
)


def _exhaust(gen):
    n = 0
    while True:
        try:
            next(gen)
            n += 1
        except StopIteration as done:
            return n, done.value


def test_reconstruct_steps_yield_per_batch_and_match_the_core(model_path):
    model = load(model_path, "cpu")
    stack = generate(shape=(3, 70, 90), seed=1).image
    opts = TileOptions(batch_size=4)
    n, result = _exhaust(reconstruct_steps(model, stack, opts, error=True, pixel_size=0.065))
    assert n == total_steps(model, stack.shape, opts)
    expected = microvae.load_model(model_path).reconstruct(stack, "ZYX", batch_size=4)
    np.testing.assert_array_equal(result.reconstruction, expected)
    assert result.reconstruction.dtype == stack.dtype
    np.testing.assert_allclose(
        result.error, np.abs(stack.astype(np.float32) - expected.astype(np.float32))
    )
    assert len(result.metrics) == 3 and "frc_resolution_um" in result.metrics[0]
    mean = summary_metrics(result.metrics)
    assert mean["psnr_db"] == pytest.approx(np.mean([r["psnr_db"] for r in result.metrics]))


def test_posterior_samples_give_the_spread_and_how_sure_of_each_structure(model_path):
    """With samples on one 2D plane: the draws one by one (a step each), kept for the
    network intervals and branch presence; the reconstruction is their mean (in the plane's
    dtype) and the std layer their spread, as the core's structure_uncertainty gives them."""
    model = load(model_path, "cpu")
    plane = generate(shape=(96, 96), seed=3).image
    opts = TileOptions(samples=4, seed=0)
    n, result = _exhaust(reconstruct_steps(model, plane, opts))
    assert (
        n
        == total_steps(model, plane.shape, opts)
        == total_steps(model, plane.shape, TileOptions(samples=4))
    )
    assert n == 4  # the draws, not a posterior pass and then the draws again
    core = structure_uncertainty(microvae.load_model(model_path), plane, samples=4, seed=0)
    assert result.reconstruction.dtype == plane.dtype
    assert np.abs(result.reconstruction.astype(np.float64) - core.mmse).max() <= 0.5
    np.testing.assert_allclose(result.std, core.std, rtol=1e-6)
    assert [r["psnr_db"] for r in result.metrics] == [
        pytest.approx(psnr(plane, result.reconstruction))
    ]
    u = result.structure
    assert u is not None and u.samples == 4
    assert u.presence.labels.shape == plane.shape and u.presence.presence.size > 0
    text = structure_text(u)
    assert "network length" in text and "[" in text and "of their length" in text
    colours = presence_colours(np.array([0.0, 1.0]))
    assert colours[0][3] == 0 and colours[1][:2] == (1.0, 0.0) and colours[2][:2] == (0.0, 1.0)
    # a stack: the spread for every plane, no per-structure draws (one plane's question)
    n, result = _exhaust(reconstruct_steps(model, np.stack([plane, plane]), opts))
    assert result.std.shape == (2, 96, 96) and result.structure is None
    core = microvae.load_model(model_path).posterior(
        np.stack([plane, plane]), "ZYX", samples=4, seed=0
    )
    np.testing.assert_array_equal(result.reconstruction, core.mmse)


def test_posterior_samples_of_a_volume_give_its_3d_intervals_and_presence(model3d_path):
    """A 3D model on one volume: the intervals of its 3D network and the presence of the
    branches of its 3D skeleton, in um from the layer's scale."""
    model = load(model3d_path, "cpu")
    stack = generate(shape=(12, 64, 64), seed=6, z_step_um=0.2, pixel_size_um=0.05).image
    opts = TileOptions(samples=3, seed=0)
    n, result = _exhaust(reconstruct_steps(model, stack, opts, pixel_size=0.05, z_step=0.2))
    assert n == total_steps(model, stack.shape, opts)
    u = result.structure
    assert u.mmse.shape == stack.shape and u.presence.labels.shape == stack.shape
    text = structure_text(u)
    assert "3D network length" in text and "3D volume" in text
    # the reconstruction and its spread are the kept draws' mean and standard deviation
    assert np.abs(result.reconstruction.astype(np.float64) - u.mmse).max() <= 0.5
    np.testing.assert_array_equal(result.std, u.std)


def test_stopping_the_generator_stops_the_work(model_path):
    model = load(model_path, "cpu")
    gen = reconstruct_steps(model, generate(shape=(2, 64, 64), seed=2).image, TileOptions())
    next(gen)
    gen.close()  # what a cancelled worker does: no error, nothing returned
    with pytest.raises(StopIteration):
        next(gen)


def test_load_errors_say_what_to_do(tmp_path, model_path):
    with pytest.raises(PluginError, match="no model chosen"):
        load(None)
    with pytest.raises(PluginError, match="not found"):
        load(tmp_path / "missing.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a model")
    with pytest.raises(PluginError, match="bad.pt"):
        load(bad)
    assert load(model_path.parent, "cpu").levels == 2  # a run folder holds model.pt


def test_layers_a_model_cannot_read_are_refused():
    with pytest.raises(PluginError, match="RGB.*Split RGB"):
        check_layer(np.zeros((8, 8, 3), np.uint8), rgb=True, name="hela")
    with pytest.raises(PluginError, match="bool"):
        check_layer(np.zeros((8, 8), bool), rgb=False, name="mask")
    check_layer(np.zeros((4, 8, 8), np.uint16), rgb=False, name="stack")


def test_view_box_and_latent_tiles(model_path):
    model = load(model_path, "cpu")
    rows, cols = view_box(np.array([[0, 10, 20], [0, 110, 220]]), (200, 300))
    assert (rows, cols) == (slice(10, 111), slice(20, 221))
    rows, cols = view_box(np.array([[50, 50], [55, 55]]), (200, 300))  # zoomed far in
    assert rows.stop - rows.start == 32 and cols.stop - cols.start == 32
    plane = np.arange(100 * 120).reshape(100, 120)
    tile = latent_tile(model, plane, (slice(0, 10), slice(100, 120)))
    assert tile.shape == (32, 32) and tile[0, -1] == plane[0, 119]  # clamped inside
    with pytest.raises(PluginError, match="smaller than the model's tile"):
        latent_tile(model, plane[:20])


def test_interpolation_needs_a_generative_model(deterministic_path):
    det = load(deterministic_path, "cpu")
    tile = generate(shape=(32, 32), seed=3).image
    with pytest.raises(PluginError, match="cannot"):
        interpolation(det, tile, tile, 4)


def test_loading_a_model_does_not_import_the_training_stack(model_path):
    # Lightning pulls in torchvision and triton, whose import crashed (SIGSEGV) inside a
    # running napari; loading and applying a model must not need them
    import subprocess
    import sys

    code = (
        "import sys, numpy as np, microvae\n"
        f"m = microvae.load_model({str(model_path)!r})\n"
        "m.reconstruct(np.zeros((64, 64), np.uint16))\n"
        "bad = [k for k in ('lightning', 'torchvision', 'triton') if k in sys.modules]\n"
        "assert not bad, bad\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
