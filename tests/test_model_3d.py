"""The 3D model is the 2D model with one more axis: the same variants, likelihoods, objective
and diagnostics, with Z halved only at the levels that ``z_strides`` (or the voxel size)
choose."""

from __future__ import annotations

import math

import pytest
import torch
from pydantic import ValidationError

from microvae.errors import ShapeError
from microvae.model import LikelihoodConfig, ModelConfig, build_vae, collapse_report
from microvae.model.config import z_kernels_for, z_strides_for
from microvae.model.discretize import to_unit
from microvae.objective import ObjectiveConfig, compute_loss, iwae_bound

SMALL = dict(base_channels=4, max_channels=16, latent_channels=2, tile_size=16, levels=2)


def _vae3d(mode="ladder", lik="dmol", z_strides=(1, 2), depth=4, **kw):
    extra = {"latent": "map"} if mode == "none" else {}
    cfg = ModelConfig(
        skip_mode=mode,
        dims=3,
        z_strides=list(z_strides),
        tile_depth=depth,
        **{**SMALL, **extra, **kw},
    )
    return build_vae(cfg, LikelihoodConfig(name=lik, components=2), bit_depth=8)


@pytest.mark.parametrize("mode", ["ladder", "deterministic", "none"])
@pytest.mark.parametrize("lik", ["dmol", "laplace", "gaussian"])
def test_every_variant_and_likelihood_runs_on_volumes(mode, lik):
    vae = _vae3d(mode, lik)
    x = torch.rand(2, 1, 4, 16, 24) * 2 - 1  # any multiple in Y and X, not only the tile
    out = vae(x)
    assert out.params.shape == (2, vae.likelihood.n_params, 4, 16, 24)
    assert out.n_dims == 4 * 16 * 24
    assert vae.reconstruct(x).shape == x.shape
    assert torch.isfinite(out.elbo).all()
    out.log_px.mean().backward()  # gradients flow through the 3D convolutions
    assert all(p.grad is not None for p in vae.stem.parameters())


def test_z_halves_only_where_z_strides_say():
    vae = _vae3d("ladder", z_strides=(1, 2), depth=4, latent_channels=[3, 5])
    z = vae.encode(torch.zeros(1, 1, 4, 16, 16))
    # top level first: level 2 (Z halved once, at level 2), then level 1 (Z kept)
    assert [tuple(t.shape) for t in z] == [(1, 5, 2, 4, 4), (1, 3, 4, 8, 8)]
    iso = _vae3d("ladder", z_strides=(2, 2), depth=4)
    assert [tuple(t.shape[2:]) for t in iso.encode(torch.zeros(1, 1, 4, 16, 16))] == [
        (1, 4, 4),
        (2, 8, 8),
    ]


def test_z_strides_follow_the_voxel_size():
    assert z_strides_for(4, 1.0) == [2, 2, 2, 2]  # isotropic: halve every axis
    assert z_strides_for(4, 4.0) == [1, 1, 2, 2]  # Z 4x coarser: wait until XY catches up
    for ratio in (1.0, 2.0, 3.0, 5.0, 10.0):
        strides = z_strides_for(5, ratio)
        z = ratio * math.prod(strides)
        xy = 2**5
        # at the coarsest level the voxels are nearer cubes than at the input, never flatter
        assert max(z, xy) / min(z, xy) <= max(ratio, 1 / ratio)
        assert z <= 1.5 * xy
    with pytest.raises(ValueError, match="z_over_xy"):
        z_strides_for(3, 0)


def test_z_kernels_see_one_plane_where_the_voxel_is_deep():
    assert z_kernels_for(3, 1.0) == [3, 3, 3, 3]  # isotropic: 3x3x3 everywhere
    assert z_kernels_for(3, 3.6) == [1, 3, 3, 3]  # 0.2 um over 0.056 um: full resolution only
    assert z_kernels_for(3, 10.0) == [1, 1, 1, 3]
    for ratio in (1.0, 2.0, 3.0, 5.0, 10.0):
        strides, kernels = z_strides_for(4, ratio), z_kernels_for(4, ratio)
        for level, k in enumerate(kernels):  # the voxel's depth over width at that level
            depth = ratio * math.prod(strides[:level]) / 2**level
            assert k == (1 if depth > 2 else 3)


def test_one_plane_kernels_keep_planes_apart():
    """With z_kernels 1 at every resolution and no Z stride, no layer mixes planes: a change
    in one plane leaves every other plane's output unchanged (an independent check that the
    kernels are (1, 3, 3) in every block, the upsampling and the head). Without GroupNorm,
    whose statistics span the tile."""
    for mode in ("ladder", "deterministic", "none"):
        vae = _vae3d(mode, z_strides=(1, 1), depth=4, z_kernels=[1, 1, 1], norm="none").eval()
        x = torch.rand(1, 1, 4, 16, 16) * 2 - 1
        y = x.clone()
        y[:, :, 2] = -y[:, :, 2]
        with torch.no_grad():
            a, b = vae.reconstruct(x), vae.reconstruct(y)
        changed = (a - b).abs().amax(dim=(0, 1, 3, 4))
        assert changed[2] > 0 and changed[[0, 1, 3]].max() == 0, mode
    # and with 3-wide kernels at the coarsest level, planes do meet
    vae = _vae3d("ladder", z_strides=(1, 1), depth=4, z_kernels=[1, 1, 3], norm="none").eval()
    with torch.no_grad():
        a, b = vae.reconstruct(x), vae.reconstruct(y)
    assert (a - b)[:, :, [0, 1, 3]].abs().max() > 0


def test_bad_3d_configs_are_explained():
    with pytest.raises(ValidationError, match="z_strides and z_kernels are for 3D models"):
        ModelConfig(z_strides=[1, 2, 2])
    with pytest.raises(ValidationError, match="z_strides and z_kernels are for 3D models"):
        ModelConfig(z_kernels=[1, 3, 3, 3])
    with pytest.raises(ValidationError, match="z_kernels must list 4 numbers.*each 1 or 3"):
        ModelConfig(dims=3, z_kernels=[1, 3, 3])
    with pytest.raises(ValidationError, match="each 1 or 3"):
        ModelConfig(dims=3, z_kernels=[1, 2, 3, 3])
    with pytest.raises(ValidationError, match="must list 3 numbers"):
        ModelConfig(dims=3, z_strides=[1, 2])
    with pytest.raises(ValidationError, match="each 1 or 2"):
        ModelConfig(dims=3, z_strides=[1, 3, 2])
    with pytest.raises(ValidationError, match="tile_depth 6 .* not divisible by 4"):
        ModelConfig(dims=3, z_strides=[1, 2, 2], tile_depth=6)
    with pytest.raises(ValidationError, match="global latent vector is for 2D"):
        ModelConfig(dims=3, skip_mode="none")


def test_volume_shapes_are_checked_per_axis():
    vae = _vae3d("ladder", z_strides=(1, 2))
    with pytest.raises(ShapeError, match=r"tile 3x16x16 .* product of z_strides = 2"):
        vae(torch.zeros(1, 1, 3, 16, 16))
    with pytest.raises(ShapeError, match=r"expected images \(B, 1, D, H, W\)"):
        vae(torch.zeros(1, 1, 16, 16))


def test_voxel_masses_sum_to_one_through_the_3d_model():
    """The decoder's dmol per voxel is a distribution over the 2**bit_depth levels: summed
    over every level, each voxel's mass is 1 (an independent check of the 3D params' layout)."""
    vae = build_vae(
        ModelConfig(dims=3, z_strides=[1, 2], tile_depth=2, **SMALL),
        LikelihoodConfig(name="dmol", components=3),
        bit_depth=4,
    )
    with torch.no_grad():
        params = vae(torch.rand(1, 1, 2, 16, 16) * 2 - 1).params[:, :, :, :4, :4]
    levels = to_unit(torch.arange(16), 4).view(16, 1, 1, 1, 1).expand(16, 1, 2, 4, 4)
    logp = vae.likelihood.log_prob(params.expand(16, -1, -1, -1, -1), levels)
    total = torch.exp(logp.double()).sum(0)
    assert torch.allclose(total, torch.ones_like(total), atol=1e-5)


def test_kl_terms_match_their_monte_carlo_estimate_in_3d():
    """E_q[log q(z) - log p(z)] over many posterior draws equals the analytic KL summed over
    levels (the ladder's priors depend on the draws above, so both are averaged)."""
    torch.manual_seed(0)
    vae = _vae3d("ladder", "laplace")
    x = (torch.rand(1, 1, 4, 16, 16) * 2 - 1).expand(400, -1, -1, -1, -1)
    with torch.no_grad():
        out = vae(x)
    mc = (out.log_qz - out.log_pz).mean()
    analytic = out.kl_per_level.sum(dim=1).mean()
    se = (out.log_qz - out.log_pz).std() / math.sqrt(len(x))
    assert abs(float(mc - analytic)) < 4 * float(se) + 1e-3


def test_objective_iwae_and_collapse_report_take_volumes():
    torch.manual_seed(0)
    vae = _vae3d("ladder", "dmol")
    x = torch.rand(3, 1, 4, 16, 16) * 2 - 1
    terms = compute_loss(vae(x), ObjectiveConfig(), 0)
    assert torch.isfinite(terms.loss)
    with torch.no_grad():
        iwae = iwae_bound(vae, x, 64)
        elbo = torch.stack([vae(x).elbo for _ in range(64)]).mean(0)
    assert torch.isfinite(iwae).all() and iwae.shape == (3,)
    assert (iwae >= elbo).all()  # IWAE_64 >= E[ELBO]: by far more than the MC noise here
    report = collapse_report(vae, [x])
    assert report.verdict in ("healthy", "partly collapsed", "collapsed")
    assert len(report.kl_per_channel) == vae.n_latent_levels
    assert report.level_scales == [4, 2]  # in XY, as for 2D models


def test_a_3d_ladder_learns_a_volume():
    """A few steps of Adam on one small volume lower its negative ELBO clearly."""
    torch.manual_seed(0)
    vae = _vae3d("ladder", "dmol")
    zz, yy, xx = torch.meshgrid(torch.arange(4), torch.arange(16), torch.arange(16), indexing="ij")
    tube = torch.exp(-((yy - 8 - zz) ** 2) / 4.0).expand_as(xx)  # a tubule leaving the plane
    x = (tube * 1.6 - 0.8)[None, None].expand(4, -1, -1, -1, -1).contiguous()
    opt = torch.optim.Adam(vae.parameters(), lr=3e-3)
    first = None
    for _ in range(60):
        loss = compute_loss(vae(x), ObjectiveConfig(), 0).loss
        first = float(loss.detach()) if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss.detach()) < 0.7 * first
