"""The VAE variants: shapes, generation, coarse-to-fine reconstruction, gradients."""

from __future__ import annotations

import pytest
import torch

from microvae.errors import NotGenerativeError, ShapeError
from microvae.model import LikelihoodConfig, ModelConfig, build_vae

SMALL = dict(base_channels=4, max_channels=16, latent_channels=2)


def _vae(mode="ladder", lik="dmol", **kw):
    cfg = ModelConfig(skip_mode=mode, **{**SMALL, **kw})
    return build_vae(cfg, LikelihoodConfig(name=lik, components=2), bit_depth=8)


@pytest.mark.parametrize(
    "mode,extra",
    [
        ("ladder", {}),
        ("deterministic", {}),
        ("none", {"latent": "map"}),
    ],
)
@pytest.mark.parametrize("side", [32, 64, 96, 256])
@pytest.mark.parametrize("channels", [1, 3])
def test_shapes(mode, extra, side, channels):
    vae = _vae(mode, in_channels=channels, levels=3 if side < 256 else 4, **extra)
    x = torch.rand(2, channels, side, side // 2 if side >= 64 else side) * 2 - 1
    out = vae(x)
    assert out.params.shape == (2, vae.likelihood.n_params, *x.shape[2:])
    assert out.log_px.shape == out.log_qz.shape == out.log_pz.shape == (2,)
    assert len(out.kl) == vae.n_latent_levels
    assert vae.reconstruct(x).shape == x.shape
    assert torch.isfinite(out.elbo).all()


def test_global_latent_classic_vae():
    vae = _vae("none", tile_size=32, global_latent_dim=6)
    x = torch.rand(3, 1, 32, 32) * 2 - 1
    out = vae(x)
    assert out.kl[0].shape == (3, 6)
    assert vae.sample(2).shape == (2, 1, 32, 32)
    with pytest.raises(ShapeError, match="built for 32x32 tiles"):
        vae(torch.zeros(1, 1, 64, 64))


def test_tile_not_divisible_is_explained():
    vae = _vae(levels=3)
    with pytest.raises(
        ShapeError,
        match=r"tile 100x96 is not divisible by 2\*\*levels = 8 "
        r"\(levels=3\).*e.g. 96 or 104",
    ):
        vae(torch.zeros(1, 1, 100, 96))
    with pytest.raises(ValueError, match="tile_size 100 .* is not divisible by 2\\*\\*levels = 8"):
        ModelConfig(tile_size=100, levels=3)


@pytest.mark.parametrize("mode", ["ladder", "none"])
def test_generates_without_input(mode):
    vae = _vae(mode, tile_size=32, levels=2)
    gen = torch.Generator().manual_seed(0)
    s = vae.sample(3, generator=gen, output="sample")
    assert s.shape == (3, 1, 32, 32) and s.min() >= -1 and s.max() <= 1
    assert not torch.equal(s[0], s[1])
    proto = vae.prototype()
    assert proto.shape == (1, 1, 32, 32)
    assert torch.equal(proto, vae.prototype())  # deterministic
    assert torch.allclose(vae.sample(1, temperature=0.0), proto)


def test_deterministic_cannot_generate():
    vae = _vae("deterministic", tile_size=32, levels=2)
    for call in (
        lambda: vae.sample(1),
        vae.prototype,
        lambda: vae.decode([None], shape=(1, 32, 32)),
    ):
        with pytest.raises(
            NotGenerativeError, match="skip_mode 'deterministic' cannot .* needs one"
        ):
            call()
    assert not vae.elbo_is_bound and vae.can_generate is False


def test_ladder_priors_start_as_standard_normal():
    vae = _vae(levels=3)
    out = vae(torch.rand(2, 1, 32, 32) * 2 - 1)
    for lat in out.latents:
        assert torch.allclose(lat.prior.mean, torch.zeros(1))
        assert torch.allclose(lat.prior.std, torch.ones(1))


def test_coarse_to_fine_reconstruction():
    torch.manual_seed(0)
    vae = _vae(levels=3)
    a, b = torch.rand(2, 1, 1, 32, 32) * 2 - 1
    # no posterior level: the input is ignored, as for the prototype
    assert torch.allclose(
        vae.reconstruct(a, posterior_levels=0), vae.reconstruct(b, posterior_levels=0)
    )
    assert torch.allclose(vae.reconstruct(a, posterior_levels=0), vae.prototype(size=(32, 32)))
    outs = [vae.reconstruct(a, posterior_levels=k) for k in range(4)]
    for k in range(1, 4):
        assert not torch.allclose(outs[k], outs[k - 1])
    assert torch.allclose(outs[3], vae.reconstruct(a))
    with pytest.raises(ValueError, match="posterior_levels must be 0..3"):
        vae.reconstruct(a, posterior_levels=4)


def test_encode_then_decode_is_reconstruct():
    vae = _vae(levels=2)
    x = torch.rand(2, 1, 32, 32) * 2 - 1
    z = vae.encode(x)
    assert [t.shape for t in z] == [(2, 2, 8, 8), (2, 2, 16, 16)]
    assert torch.allclose(vae.decode(z, shape=(2, 32, 32)), vae.reconstruct(x), atol=1e-6)


def test_full_resolution_latent_is_one_more_level_below_the_others():
    torch.manual_seed(0)
    vae = _vae(levels=2, full_resolution_latent=3, tile_size=32)
    x = torch.rand(2, 1, 32, 32) * 2 - 1
    assert vae.n_latent_levels == 3 and len(vae.z_readers()) == 3
    z = vae.encode(x)
    assert [t.shape for t in z] == [(2, 2, 8, 8), (2, 2, 16, 16), (2, 3, 32, 32)]
    out = vae(x)
    assert len(out.kl) == 3 and out.kl[-1].shape == (2, 3, 32, 32)
    assert torch.allclose(vae.decode(z, shape=(2, 32, 32)), vae.reconstruct(x), atol=1e-6)
    # the full-resolution latent reaches the output: changing it alone changes the image
    other = [z[0], z[1], z[2] + 1.0]
    assert not torch.allclose(vae.decode(other, shape=(2, 32, 32)), vae.reconstruct(x))
    # coarse-to-fine: all but the full-resolution level from the posterior
    assert not torch.allclose(vae.reconstruct(x, posterior_levels=2), vae.reconstruct(x))
    assert vae.sample(2, size=(32, 32)).shape == (2, 1, 32, 32)
    with pytest.raises(ValueError, match="full_resolution_latent is a ladder level"):
        ModelConfig(skip_mode="deterministic", full_resolution_latent=4)


@pytest.mark.parametrize("mode", ["ladder", "deterministic", "none"])
def test_every_parameter_gets_a_gradient(mode):
    extra = {"full_resolution_latent": 2} if mode == "ladder" else {}
    vae = _vae(mode, tile_size=32, levels=2, lik="gaussian", **extra)
    out = vae(torch.rand(2, 1, 32, 32) * 2 - 1)
    (-(out.elbo.mean())).backward()
    missing = [n for n, p in vae.named_parameters() if p.grad is None]
    assert missing == []
    assert len(vae.z_readers()) == vae.n_latent_levels


def test_default_configuration_trains_on_cpu():
    """The default model (ladder + dmol) does a forward/backward pass on 16 tiles of 64x64,
    and a few Adam steps on one synthetic image lower its loss."""
    from microvae.model.discretize import to_unit
    from microvae.synthetic import generate

    torch.manual_seed(0)
    vae = build_vae(ModelConfig(), LikelihoodConfig(), bit_depth=12)
    img = generate(shape=(256, 256), seed=0).image
    tiles = torch.from_numpy(img.astype("int64")).unfold(0, 64, 64).unfold(1, 64, 64)
    x = to_unit(tiles.reshape(16, 1, 64, 64), 12)
    opt = torch.optim.Adam(vae.parameters(), lr=1e-3)
    losses = []
    for step in range(10):  # as training runs: KL warm-up and gradient clipping
        opt.zero_grad()
        out = vae(x)
        beta = min(1.0, step / 10)
        loss = -(out.log_px - beta * out.kl_per_level.sum(1)).mean() / out.n_dims
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 50.0)
        opt.step()
        losses.append(loss.item())
    assert all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < losses[0] - 0.4  # seen: about 0.8 nats/dim over 10 steps


def test_ladder_posterior_blocks_follow_norm_and_activation():
    from torch import nn

    cfg = ModelConfig(levels=2, base_channels=8, max_channels=16, latent_channels=4)
    for norm, act, act_type in (("none", "gelu", nn.GELU), ("group", "silu", nn.SiLU)):
        vae = build_vae(
            cfg.model_copy(update={"norm": norm, "activation": act}),
            LikelihoodConfig(),
            bit_depth=8,
        )
        for level in vae.td:
            kinds = {type(m) for m in level.posterior.modules()}
            assert (nn.GroupNorm in kinds) == (norm == "group")
            assert act_type in kinds and ({nn.GELU, nn.SiLU} - {act_type}).isdisjoint(kinds)


def test_format_2_ladder_files_keep_their_groupnorm_posterior_blocks():
    """Files before format 3 built the posterior blocks with GroupNorm and SiLU whatever the
    config said: rebuilt so, their weights load and give the same output."""
    from torch import nn

    cfg = ModelConfig(levels=2, base_channels=8, max_channels=16, latent_channels=4, norm="none")
    old = build_vae(cfg, LikelihoodConfig(), bit_depth=8)
    old.use_format2_posterior_blocks()  # what a format-2 file held
    assert any(isinstance(m, nn.GroupNorm) for m in old.td[0].posterior.modules())
    new = build_vae(cfg, LikelihoodConfig(), bit_depth=8)
    with pytest.raises(RuntimeError):
        new.load_state_dict(old.state_dict())
    new.use_format2_posterior_blocks()
    new.load_state_dict(old.state_dict())
    x = torch.rand(2, 1, 16, 16) * 2 - 1
    torch.testing.assert_close(new.eval().reconstruct(x), old.eval().reconstruct(x))
