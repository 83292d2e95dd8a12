"""Tiled inference: exact stitching, no seams, any size, axes and dtype."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from microvae.errors import AxesError, ChannelError
from microvae.inference import (
    ArraySink,
    PlaneResult,
    PlaneSink,
    TileOptions,
    as_image,
    count_steps,
    deliver,
    image_steps,
    load_model,
    run_image,
)
from microvae.inference.grid import TileGrid, blend_window
from microvae.inference.tiled import iter_tiles
from microvae.synthetic import generate


@pytest.fixture(scope="module")
def model(tiny_model_path):
    return load_model(tiny_model_path)


@pytest.fixture(scope="module")
def local_model(tmp_path_factory, synth_data, train_tiny):
    """No normalisation layers: the output at a pixel depends only on its neighbourhood."""
    run = tmp_path_factory.mktemp("inference_local") / "run"
    return load_model(train_tiny(run, synth_data, ["model.norm=none"]))


@pytest.mark.parametrize("shape", [(5, 7), (32, 32), (100, 37), (257, 300)])
def test_grid_covers_the_plane_on_aligned_corners(shape):
    grid = TileGrid.plan(shape, tile=32, overlap=8, multiple=4)
    covered = np.zeros(grid.padded_shape, int)
    for y, x in grid.positions:
        assert y % 4 == 0 and x % 4 == 0
        covered[y : y + 32, x : x + 32] += 1
    assert covered.min() >= 1
    plane = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    padded = grid.pad_plane(plane)
    assert padded.shape == grid.padded_shape
    np.testing.assert_array_equal(grid.crop(padded), plane)


def test_blend_window_is_smooth_and_positive():
    w = blend_window(32, 8)
    assert w.min() > 0 and w.max() == 1 and np.allclose(w, w.T) and np.allclose(w, w[::-1])
    assert np.all(w[16, 8:24] == 1) and np.all(np.diff(w[16, :8]) > 0)


class _Identity(torch.nn.Module):
    """A 'model' returning its input: stitching must then give back the plane exactly."""

    levels = 2

    def __init__(self):
        super().__init__()
        self.p = torch.nn.Parameter(torch.zeros(1))

    def reconstruct(self, x, **kw):
        return x

    def encode(self, x):
        return [x[:, :, ::4, ::4].repeat(1, 3, 1, 1), x[:, :, ::2, ::2]]

    def reconstruct_and_encode(self, x, **kw):
        return x, self.encode(x)


@pytest.mark.parametrize(
    "shape,tile,overlap", [((100, 77), 32, 8), ((20, 20), 32, 12), ((64, 200), 64, 0)]
)
def test_stitching_is_exact_for_an_identity(shape, tile, overlap):
    x = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    steps = iter_tiles(
        _Identity(), x, TileOptions(batch_size=3), tile=tile, overlap=overlap, latents=True
    )
    out = _drain(steps)
    np.testing.assert_allclose(out["reconstruction"], x, atol=1e-5)
    top, fine = out["latents"]
    np.testing.assert_allclose(fine[0], x[::2, ::2][: fine.shape[1], : fine.shape[2]], atol=1e-5)
    assert top.shape[0] == 3


def test_no_seams_and_little_dependence_on_tile_size(local_model):
    img = generate(shape=(256, 256), seed=5).ground_truth  # smooth: noise-free and blurred
    small = local_model.reconstruct(img, tile_size=64, overlap=16).astype(float)
    large = local_model.reconstruct(img, tile_size=128, overlap=32).astype(float)
    rng = float(img.max() - img.min())
    diff = small - large
    assert np.abs(diff).mean() < 0.01 * rng  # seen: 0.5% of the range
    # a seam would be a jump of the difference at the small tiles' borders
    grid = TileGrid.plan(img.shape, tile=64, overlap=16, multiple=4)
    (_, _), (left, _) = grid.pad
    borders = {x - left for _, x in grid.positions} | {x + 64 - left for _, x in grid.positions}
    cols = [c for c in sorted(borders) if 1 <= c < img.shape[1]]
    jumps = np.abs(np.diff(diff, axis=1)).mean(axis=0)  # jumps[c - 1]: between c-1 and c
    assert max(jumps[c - 1] for c in cols) < 3 * np.median(jumps) + 0.002 * rng


def test_default_tile_is_the_training_tile(model):
    assert model.default_tile() == model.config.data.tile_size == 32


def test_axes_dtypes_and_sizes(model, caplog):
    s = generate(shape=(3, 70, 90), seed=1)
    zyx = model.reconstruct(s.image, "ZYX", tile_size=32)
    assert zyx.shape == (3, 70, 90) and zyx.dtype == np.uint16
    one = model.reconstruct(s.image[1])
    np.testing.assert_array_equal(one, zyx[1])  # deterministic, plane by plane
    tiny = model.reconstruct(s.image[0, :13, :21])
    assert tiny.shape == (13, 21)
    rgb = np.stack([s.image[0]] * 3, axis=-1)
    with pytest.raises(ChannelError, match="axes YXS has 3 samples"):
        model.reconstruct(rgb, "YXS")
    assert model.reconstruct(rgb, "YXS", channel=1).shape == (70, 90)
    with pytest.raises(AxesError, match="pass axes="):
        model.reconstruct(s.image)
    as_float = model.reconstruct(s.image[0].astype(np.float32))
    assert as_float.dtype == np.float32
    np.testing.assert_array_equal(as_float, zyx[0].astype(np.float32))
    with caplog.at_level(logging.WARNING, logger="microvae"):
        small8 = model.reconstruct((s.image[0] // 16).astype(np.uint8))
    assert small8.dtype == np.uint8
    assert "uint8 data, the model was trained on uint16" in caplog.text


def test_sampling_on_request(model):
    img = generate(shape=(64, 64), seed=2).image
    a = model.reconstruct(img, output="sample", seed=1)
    b = model.reconstruct(img, output="sample", seed=1)
    c = model.reconstruct(img, output="sample", seed=2)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_encode_embeddings_and_maps(model):
    s = generate(shape=(2, 64, 96), seed=3)
    enc = model.encode(s.image, "ZYX", tile_size=32)
    assert enc["embedding"].shape == (2, 16)
    top, fine = enc["latents"][0]
    assert top.shape == (4, 16, 24) and fine.shape == (4, 32, 48)
    expected = np.concatenate(
        [top.mean((1, 2)), top.std((1, 2)), fine.mean((1, 2)), fine.std((1, 2))]
    )
    np.testing.assert_allclose(enc["embedding"][0], expected, rtol=1e-5, atol=1e-6)


def _drain(steps):
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value


def test_one_pass_equals_separate_passes(model):
    img = generate(shape=(70, 90), seed=4).image
    both = _drain(model.plane_steps(img, latents=True))
    np.testing.assert_array_equal(both.reconstruction, model.reconstruct(img))
    alone = _drain(model.plane_steps(img, reconstruct=False, latents=True))
    assert alone.reconstruction is None
    for a, b, c in zip(both.latents, alone.latents, model.encode(img)["latents"][0]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(b, c)


def test_step_by_step_plane_yields_progress_and_the_same_result(model):
    img = generate(shape=(70, 90), seed=4).image
    opts = TileOptions(batch_size=2)
    steps = model.plane_steps(img, options=opts)
    ticks = []
    while True:
        try:
            ticks.append(next(steps))
        except StopIteration as done:
            recon, levels = done.value.reconstruction, done.value.latents
            break
    total = model.count_tiles(img.shape, opts)
    assert ticks[-1] == (total, total) and len(ticks) == -(-total // 2)
    assert [d for d, _ in ticks] == sorted(d for d, _ in ticks)
    np.testing.assert_array_equal(recon, model.reconstruct(img, batch_size=2))
    assert levels is None
    # stopping between batches is just not iterating further
    partial = model.plane_steps(img, options=opts)
    assert next(partial) == (2, total)
    partial.close()


class _Log(PlaneSink):
    """Records what the pipeline tells it."""

    def __init__(self, needs_reconstruction=True, needs_latents=False, fail_at=None):
        self.needs_reconstruction, self.needs_latents = needs_reconstruction, needs_latents
        self.fail_at, self.events = fail_at, []

    def start(self, info):
        super().start(info)
        self.events.append(("start", info.n_planes))

    def add(self, out):
        if out.index == self.fail_at:
            raise RuntimeError("sink failed")
        self.events.append(("add", out.index, out.reconstruction is None, out.latents is None))

    def close(self):
        self.events.append(("close",))

    def abort(self):
        self.events.append(("abort",))


def test_pipeline_feeds_sinks_in_order_and_computes_only_what_they_need(model):
    stack = generate(shape=(3, 40, 52), seed=2).image
    recon, latent = _Log(), _Log(needs_reconstruction=False, needs_latents=True)
    steps = list(image_steps(model, as_image(stack, "ZYX"), [recon, latent]))
    assert [s.plane for s in steps] == sorted(s.plane for s in steps) and steps[-1].plane == 2
    assert steps[-1].tiles_done == steps[-1].tiles
    assert len(steps) == count_steps(model, stack.shape)
    # both sinks see both outputs (one pass computes them); none is skipped
    want = [("start", 3)] + [("add", k, False, False) for k in range(3)] + [("close",)]
    assert recon.events == want and latent.events == want
    alone = _Log()
    run_image(model, as_image(stack, "ZYX"), [alone])
    assert alone.events[1] == ("add", 0, False, True)  # no latents when no sink needs them


def test_stopping_or_a_failing_sink_aborts_every_sink(model, tmp_path):
    stack = generate(shape=(3, 40, 52), seed=2).image
    a, b = _Log(), _Log()
    steps = image_steps(model, as_image(stack, "ZYX"), [a, b])
    next(steps)
    steps.close()  # what a cancelled napari worker does
    assert a.events == [("start", 3), ("abort",)] and b.events == a.events
    a, b = _Log(), _Log(fail_at=1)
    with pytest.raises(RuntimeError, match="sink failed"):
        run_image(model, as_image(stack, "ZYX"), [a, b])
    assert a.events[-1] == ("abort",) and ("close",) not in a.events
    # the batch writers then leave nothing: the TIFF sink's temporary file is gone
    from microvae.batch.writers import ImageFile

    tif = ImageFile(tmp_path / "r.tif")
    with pytest.raises(RuntimeError):
        run_image(model, as_image(stack, "ZYX"), [tif, _Log(fail_at=2)])
    assert list(tmp_path.iterdir()) == []


def test_deliver_hands_known_planes_to_the_sinks_as_the_pipeline_does(tmp_path):
    """Planes reconstructed already (e.g. kept posterior draws' mean) reach the same sinks,
    in order, with start and close; a failing sink aborts every one."""
    stack = generate(shape=(3, 40, 52), seed=2).image
    recon = stack[::-1].copy()  # any known planes
    std = np.arange(3, dtype=np.float32)[:, None, None] * np.ones((3, 40, 52), np.float32)
    arrays, log = [ArraySink("reconstruction"), ArraySink("std"), ArraySink("error")], _Log()
    deliver(as_image(stack, "ZYX"), [*arrays, log], lambda k: PlaneResult(recon[k], None, std[k]))
    np.testing.assert_array_equal(arrays[0].array, recon)
    np.testing.assert_array_equal(arrays[1].array, std)
    np.testing.assert_allclose(arrays[2].array, np.abs(stack.astype(np.float32) - recon))
    assert log.events == [("start", 3)] + [("add", k, False, True) for k in range(3)] + [("close",)]
    a = _Log()
    with pytest.raises(RuntimeError, match="sink failed"):
        deliver(as_image(stack, "ZYX"), [a, _Log(fail_at=1)], lambda k: PlaneResult(recon[k], None))
    assert a.events[-1] == ("abort",) and ("close",) not in a.events


def test_an_opened_image_and_the_readme_sink(model, tmp_path):
    from microvae.io import open_image, write_image

    stack = generate(shape=(3, 40, 52), seed=2).image
    write_image(tmp_path / "s.tif", stack, axes="ZYX")
    with open_image(tmp_path / "s.tif") as rec:
        from_file = model.reconstruct(rec)
    np.testing.assert_array_equal(from_file, model.reconstruct(stack, "ZYX"))

    class Brightest(PlaneSink):  # the README's example
        def start(self, info):
            super().start(info)
            self.values = []

        def add(self, out):
            self.values.append(float(out.reconstruction.max()))

    sink = Brightest()
    with open_image(tmp_path / "s.tif") as rec:
        run_image(model, rec, [sink])
    assert sink.values == [float(p.max()) for p in from_file]
    with pytest.raises(AxesError, match="pass axes"):
        as_image(stack)
    assert as_image(stack, stacks=True).axes == "QYX"  # napari layers: stacks of planes
