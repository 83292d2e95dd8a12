"""The block pipeline of 3D models: overlapping 3D tiles, blended without seams in Z as in XY,
a few slabs of planes in memory, the same sinks as planes."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import torch
from torch import nn

from microvae.inference import TileOptions
from microvae.inference.volumes import ZGrid, iter_volume
from microvae.model import ModelConfig


class _Identity(nn.Module):
    """A stand-in 3D VAE whose reconstruction is its input and whose latents are the input
    averaged over each level's cells: what stitching must give back exactly."""

    def __init__(self, z_strides=(1, 2)):
        super().__init__()
        self.config = ModelConfig(dims=3, levels=2, z_strides=list(z_strides), tile_depth=8)
        self.n_latent_levels = 2
        self.p = nn.Parameter(torch.zeros(()))

    def reconstruct(self, x, **_):
        return x

    def encode(self, x, **_):
        out = []
        for level in (2, 1):  # top first
            sz = int(np.prod([s[0] for s in self.config.strides()[:level]]))
            out.append(nn.functional.avg_pool3d(x, (sz, 2**level, 2**level)))
        return out

    def reconstruct_and_encode(self, x, **kw):
        return self.reconstruct(x), self.encode(x)


def _run(vae, volume, **kw):
    got, lat = {}, {}
    for _, _, finished in iter_volume(
        vae, iter(volume), len(volume), volume.shape[1:], TileOptions(batch_size=3), **kw
    ):
        for f in finished:
            assert f.k not in got  # each plane once
            got[f.k] = f.reconstruction
            lat[f.k] = f.latents
    return got, lat


@pytest.mark.parametrize("n", [1, 5, 8, 21])
@pytest.mark.parametrize("depth,overlap_z", [(8, 0), (8, 2), (8, 4), (4, 2)])
def test_stitching_gives_the_volume_back(n, depth, overlap_z):
    rng = np.random.default_rng(n)
    volume = rng.random((n, 20, 27)).astype(np.float32)
    got, _ = _run(
        _Identity(),
        volume,
        tile=8,
        overlap=4,
        depth=depth,
        overlap_z=overlap_z,
        latents=False,
    )
    assert sorted(got) == list(range(n))
    np.testing.assert_allclose(np.stack([got[k] for k in range(n)]), volume, atol=1e-6)


def test_latent_planes_are_the_stitched_cells_that_cover_each_plane():
    rng = np.random.default_rng(0)
    volume = rng.random((16, 32, 32)).astype(np.float32)
    vae = _Identity(z_strides=(1, 2))
    _, lat = _run(vae, volume, tile=16, overlap=0, depth=8, overlap_z=0, latents=True)
    x = torch.from_numpy(volume)[None, None]
    top, fine = vae.encode(x)  # the whole volume at once: (1, 1, 8, 8, 8) and (1, 1, 16, 16, 16)
    for k in range(16):
        np.testing.assert_allclose(lat[k][0], top[0, :, k // 2].numpy(), atol=1e-6)
        np.testing.assert_allclose(lat[k][1], fine[0, :, k].numpy(), atol=1e-6)


def test_memory_holds_a_few_slabs_whatever_the_depth():
    """Planes are read as the slabs need them: never more than about two tiles' depth ahead
    of the last finished plane, on a volume of 200 planes."""
    n, depth = 200, 8
    taken = []

    def planes():
        for k in range(n):
            taken.append(k)
            yield np.full((16, 16), k, np.float32)

    finished, ahead = 0, []
    steps = iter_volume(
        _Identity(),
        planes(),
        n,
        (16, 16),
        TileOptions(batch_size=4),
        tile=16,
        overlap=0,
        depth=depth,
        overlap_z=2,
    )
    for _, _, done in steps:
        finished += len(done)
        ahead.append(len(taken) - finished)
    assert finished == n
    assert max(ahead) <= 2 * depth


def test_wanted_planes_only_run_their_slabs():
    volume = np.arange(40 * 8 * 8, dtype=np.float32).reshape(40, 8, 8)
    got, _ = _run(_Identity(), volume, tile=8, overlap=0, depth=8, overlap_z=2, wanted={20, 21, 22})
    assert sorted(got) == [20, 21, 22]
    np.testing.assert_allclose(got[21], volume[21])


def test_z_grid_reflects_as_numpy_does():
    for n in (1, 2, 3, 7):
        g = ZGrid.plan(n, depth=4, overlap=2, multiple=2)
        index = np.pad(np.arange(n), g.pad, mode="reflect" if n > 1 else "edge")
        assert [g.source(p) for p in range(g.padded)] == index.tolist()
        assert (g.weights()[g.pad[0] : g.pad[0] + n] > 0).all()
    with pytest.raises(ValueError, match="not a multiple of 4"):
        ZGrid.plan(10, depth=6, overlap=2, multiple=4)


def _peak_planes(n: int, side: int, wanted: set[int] | None) -> tuple[float, dict]:
    """Peak traced memory of running a volume of ``n`` planes of side x side, in planes of
    float32, and the finished planes."""
    got = {}
    tracemalloc.start()
    try:
        steps = iter_volume(
            _Identity(),
            (np.full((side, side), k, np.float32) for k in range(n)),
            n,
            (side, side),
            TileOptions(batch_size=4),
            tile=side,
            overlap=0,
            depth=8,
            overlap_z=2,
            wanted=wanted,
        )
        for _, _, done in steps:
            got.update((f.k, f.reconstruction) for f in done)
        return tracemalloc.get_traced_memory()[1] / (side * side * 4), got
    finally:
        tracemalloc.stop()


def test_planes_before_the_wanted_ones_are_read_and_dropped():
    """A block of planes at the end of a deep volume (a Dask worker's block) reads the planes
    before it, in order, without keeping them: memory as for a thin volume run whole."""
    thin, _ = _peak_planes(20, 64, None)
    deep, got = _peak_planes(300, 64, set(range(290, 300)))
    assert sorted(got) == list(range(290, 300))
    np.testing.assert_allclose(got[295], 295, rtol=1e-6)
    assert deep < thin + 4, (thin, deep)  # keeping the 290 planes passed would add 290
