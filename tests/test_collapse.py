"""Collapse diagnostics on models whose latent use is known by construction."""

from __future__ import annotations

import torch

from microvae.model import LikelihoodConfig, ModelConfig, build_vae
from microvae.model.collapse import collapse_report, z_weight_norms

SMALL = dict(base_channels=4, max_channels=16, latent_channels=3, tile_size=32, levels=2)


def _batches(n=2):
    g = torch.Generator().manual_seed(0)
    return [torch.rand(4, 1, 32, 32, generator=g) * 2 - 1 for _ in range(n)]


def _vae(mode):
    torch.manual_seed(0)
    return build_vae(
        ModelConfig(skip_mode=mode, **SMALL), LikelihoodConfig(name="laplace"), bit_depth=8
    )


def _posterior_equals_prior(layer: torch.nn.Module) -> None:
    # the last conv of a posterior head outputs (mean, raw std) = (0, 0): q = N(0, I)
    last = layer[-1] if isinstance(layer, torch.nn.Sequential) else layer
    torch.nn.init.zeros_(last.weight)
    torch.nn.init.zeros_(last.bias)


def test_fresh_ladder_is_healthy():
    report = collapse_report(_vae("ladder"), _batches())
    assert report.verdict == "healthy", report.summary()
    assert report.total_units == 6 and len(report.kl_per_level) == 2
    assert report.sensitivity > 0.01


def test_a_level_without_information_is_partly_collapsed():
    vae = _vae("ladder")
    _posterior_equals_prior(vae.td[0].posterior)  # the top level: q = p = N(0, I)
    report = collapse_report(vae, _batches())
    assert report.kl_per_level[0] < 1e-6 and report.kl_per_level[1] > 0.1
    assert report.active[0] == [False] * 3
    assert report.verdict == "partly collapsed"
    # named by its resolution (2 levels on 16x16 tiles: the top at 1/4, then 1/2)
    assert report.level_scales == [4, 2]
    assert "the level at 1/4 has no active channel" in report.summary()


def test_an_unused_full_resolution_level_is_a_note_not_collapse():
    # cpu.yaml's shape: a ladder with an optional level at full resolution, which a model
    # whose likelihood models pixel-scale detail leaves unused
    torch.manual_seed(0)
    vae = build_vae(
        ModelConfig(skip_mode="ladder", full_resolution_latent=2, **SMALL),
        LikelihoodConfig(name="laplace"),
        bit_depth=8,
    )
    _posterior_equals_prior(vae.td[-1].posterior)  # the full-resolution level: q = p
    report = collapse_report(vae, _batches())
    assert report.level_scales == [4, 2, 1] and report.active[-1] == [False, False]
    assert report.verdict == "healthy", report.summary()
    assert report.reasons == []
    assert report.notes == [
        "the full-resolution level is unused: the likelihood models pixel-scale detail "
        "itself; the level can be removed (model.full_resolution_latent: 0)"
    ]
    assert "note: the full-resolution level is unused" in report.summary()
    assert report.to_dict()["notes"] == report.notes
    # the same model with its top level unused as well: that level is partial collapse
    _posterior_equals_prior(vae.td[0].posterior)
    report = collapse_report(vae, _batches())
    assert report.verdict == "partly collapsed"
    assert report.reasons == ["the level at 1/4 has no active channel"]


def test_deterministic_unet_with_an_unused_latent_is_collapsed():
    vae = _vae("deterministic")
    _posterior_equals_prior(vae.posterior)
    report = collapse_report(vae, _batches())
    assert report.active_units == 0 and report.verdict == "collapsed"
    assert report.to_dict()["verdict"] == "collapsed"


def test_decoder_that_ignores_z_is_collapsed():
    vae = _vae("deterministic")
    torch.nn.init.zeros_(vae.read_z.weight)  # KL may be > 0, but nothing reads z
    torch.nn.init.zeros_(vae.read_z.bias)
    report = collapse_report(vae, _batches())
    assert report.z_weight_norms == [0.0]
    assert report.sensitivity < 1e-6 and report.verdict == "collapsed"
    assert "changes the reconstruction by" in report.reasons[0]


def test_weight_norms_are_frobenius_norms():
    vae = _vae("ladder")
    expected = [float(m.weight.detach().pow(2).sum().sqrt()) for m in vae.z_readers()]
    assert z_weight_norms(vae) == expected


def test_sensitivity_per_level_finds_the_level_the_decoder_ignores():
    vae = _vae("ladder")
    torch.nn.init.zeros_(vae.td[1].read_z.weight)  # the finest level's z is never read
    torch.nn.init.zeros_(vae.td[1].read_z.bias)
    report = collapse_report(vae, _batches(), generator=torch.Generator().manual_seed(0))
    top, fine = report.sensitivity_per_level
    assert fine == 0.0 and top > 0.01
    assert report.to_dict()["sensitivity_per_level"] == [top, fine]


def test_a_channel_used_on_few_positions_is_active():
    # sparse images: a channel that encodes the structure carries its KL on a tenth of the
    # positions, and its mean over all positions lies under the threshold
    from microvae.model.collapse import _used

    kl = torch.zeros(2, 1000)
    kl[0, :80] = 0.1  # mean 0.008 < 0.01, but 0.1 nats where used
    kl[1] = 0.004  # spread thinly everywhere: not used anywhere
    used = _used(kl)
    assert kl[0].mean() < 0.01 and used[0] > 0.01
    assert used[1] < 0.01


def test_sensitivity_is_in_the_data_units():
    # the same images stored on 1/8 of the level range (14-bit data with an offset fill a
    # sliver of [-1, 1]) and the same network, normalised to them: the same sensitivity,
    # where a change measured in [-1, 1] units would be 8 times smaller
    vae = _vae("ladder")
    batches = _batches()
    base = collapse_report(vae, batches, generator=torch.Generator().manual_seed(0))
    vae.set_input_normalisation(8.0, 0.0)  # the encoder sees x * 8, the decoder reads x * 8
    narrow = [b / 8 for b in batches]
    scaled = collapse_report(vae, narrow, generator=torch.Generator().manual_seed(0))
    assert base.sensitivity > 0.01
    # (not exactly: means are clamped to [-1, 1], which the narrow data never reach)
    assert abs(scaled.sensitivity - base.sensitivity) < 0.02 * base.sensitivity
