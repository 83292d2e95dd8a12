"""Images from the latent space: prototype, samples, interpolation, traversals (one channel
at a time, or several moved at once), decoding.

Every function takes a :class:`~microvae.inference.TrainedModel` and returns images in the
training data's raw intensities and dtype, (N, H, W) (the prototype (H, W)), of the training
tile size unless ``size`` says otherwise. They need a generative model (``ladder`` or
``none``); the deterministic U-Net raises :class:`~microvae.errors.NotGenerativeError`.

Latents of a ladder are maps per level, top (coarsest) first. Where only the top level is
given (traversals, decoding embeddings), the levels below take their prior means given it: the
"most typical" fine detail for that coarse content.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from ..inference import TrainedModel

__all__ = [
    "PRIORS",
    "prototype",
    "samples",
    "interpolate",
    "traverse",
    "move_channels",
    "decode_top",
]


def _size(model: TrainedModel, size: int | tuple[int, int] | None) -> tuple[int, int]:
    if size is None:
        return (model.default_tile(),) * 2
    return (size, size) if isinstance(size, int) else tuple(size)


def prototype(model: TrainedModel, *, size: int | tuple[int, int] | None = None) -> np.ndarray:
    """The image decoded from every latent at its prior mean (z = 0 under N(0, I)): (H, W)."""
    model.require_2d("the latent tools")
    return model.to_raw(model.vae.prototype(size=_size(model, size)))[0]


PRIORS = ("auto", "aggregate", "learned")


def samples(
    model: TrainedModel,
    n: int,
    *,
    temperature: float = 1.0,
    size: int | tuple[int, int] | None = None,
    seed: int = 0,
    prior: str = "auto",
) -> np.ndarray:
    """``n`` images generated with latents drawn at ``temperature`` (the spreads scaled by
    it: below 1 gives more typical images), (n, H, W).

    ``prior``: ``aggregate`` draws the top level from the Gaussian fitted to its aggregate
    posterior at the end of training (``model.top_prior``, :mod:`microvae.model.top_prior`:
    samples with the data's layout), the levels below from the model's priors; ``learned``
    draws every level from the model's priors; ``auto`` (default) is ``aggregate`` where the
    model file has a fitted top prior and ``size`` is the training tile size (the top
    level's shape depends on it), else ``learned``."""
    model.require_2d("the latent tools")
    if n < 1 or temperature < 0:
        raise ValueError(f"need n >= 1 and temperature >= 0, got n={n}, temperature={temperature}")
    if prior not in PRIORS:
        raise ValueError(f"prior must be one of {', '.join(PRIORS)}, got {prior!r}")
    hw = _size(model, size)
    fitted = model.top_prior is not None and hw == (model.default_tile(),) * 2
    if prior == "aggregate" and not fitted:
        why = (
            "its model file has no fitted top prior (trained before microvae fitted one, or "
            "not generative): retrain, or pass prior='learned'"
            if model.top_prior is None
            else f"the fitted top prior is for {model.default_tile()}-pixel tiles, not {hw}: "
            "pass that size or prior='learned'"
        )
        raise ValueError(f"{_name(model)}: prior='aggregate' impossible: {why}")
    g = torch.Generator(device=model.device).manual_seed(seed)
    top = None
    if prior != "learned" and fitted:
        top = model.top_prior.sample(n, temperature=temperature, generator=g)
    x = model.vae.sample(n, size=hw, temperature=temperature, generator=g, top=top)
    return model.to_raw(x)


def _name(model: TrainedModel) -> str:
    return model.path.name if model.path is not None else "model"


@torch.no_grad()
def interpolate(model: TrainedModel, a: np.ndarray, b: np.ndarray, *, steps: int = 8) -> np.ndarray:
    """Decode the straight line between the posterior means of two tiles (H, W) of one shape,
    every latent level interpolated: (steps, H, W), the first near ``a``'s reconstruction
    and the last near ``b``'s."""
    model.require_2d("the latent tools")
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"interpolate needs two 2D tiles of one shape, got {a.shape}, {b.shape}")
    if steps < 2:
        raise ValueError(f"steps must be at least 2, got {steps}")
    model.vae._require_generative("interpolate")
    za = model.vae.encode(model.to_tensor(a))
    zb = model.vae.encode(model.to_tensor(b))
    t = torch.linspace(0, 1, steps, device=model.device)
    z = []
    for u, v in zip(za, zb):
        shape = (steps,) + (1,) * (u.ndim - 1)
        z.append(u + (v - u) * t.view(shape))
    x = model.vae.decode(z, shape=(steps, *a.shape))
    return model.to_raw(x)


def _top_start(
    model: TrainedModel,
    base: np.ndarray | None,
    z_top: np.ndarray | None,
    size: int | tuple[int, int] | None,
):
    """(prior of the top level, the top latent to start from (1, C, h, w), (H, W)): the
    prior mean, ``base``'s posterior mean (a raw tile), or ``z_top`` (flat or shaped)."""
    if base is not None and z_top is not None:
        raise ValueError("give base (a tile) or z_top (a latent), not both")
    if base is not None:
        base = np.asarray(base)
        if base.ndim != 2:
            raise ValueError(f"base must be a 2D tile, got shape {base.shape}")
        h, w = base.shape
    else:
        h, w = _size(model, size)
    prior = model.vae.priors(size=(h, w))[0]
    if base is not None:
        start = model.vae.encode_top(model.to_tensor(base))
    elif z_top is not None:
        z = np.asarray(z_top, np.float32)
        if z.size != prior.mean.numel():
            raise ValueError(
                f"z_top has {z.size} values; the top level of {h} x {w} tiles has "
                f"{prior.mean.numel()} {tuple(prior.mean.shape[1:])}"
            )
        start = torch.from_numpy(z.reshape(prior.mean.shape)).to(prior.mean)
    else:
        start = prior.mean
    return prior, start, (h, w)


def _check_channels(channels, n_ch: int) -> None:
    bad = [c for c in channels if not 0 <= c < n_ch]
    if bad:
        raise ValueError(f"top-level latent channels are 0..{n_ch - 1}, got {bad}")


@torch.no_grad()
def traverse(
    model: TrainedModel,
    *,
    channels: list[int] | None = None,
    values: tuple[float, ...] = (-2.0, -1.0, 0.0, 1.0, 2.0),
    base: np.ndarray | None = None,
    size: int | tuple[int, int] | None = None,
) -> np.ndarray:
    """Traversals of top-level latent channels: channel c moved by v prior standard
    deviations everywhere, for each v in ``values``, from the prior mean or, with ``base``
    (a raw tile (H, W)), from that tile's posterior mean; the levels below at their prior
    means given the top.

    Returns (len(channels), len(values), H, W); ``channels`` default to all of the top level.
    """
    model.require_2d("the latent tools")
    prior, start, (h, w) = _top_start(model, base, None, size)
    n_ch = start.shape[1]
    channels = list(range(n_ch)) if channels is None else list(channels)
    _check_channels(channels, n_ch)
    vals = torch.tensor(values, dtype=start.dtype, device=start.device)
    out = []
    for c in channels:
        z = start.repeat(len(values), *([1] * (start.ndim - 1)))
        z[:, c] = start[:, c] + vals.view((-1,) + (1,) * (z.ndim - 2)) * prior.std[:, c]
        out.append(model.to_raw(model.vae.decode([z], shape=(len(values), h, w))))
    return np.stack(out)


@torch.no_grad()
def move_channels(
    model: TrainedModel,
    offsets: Mapping[int, float],
    *,
    base: np.ndarray | None = None,
    z_top: np.ndarray | None = None,
    size: int | tuple[int, int] | None = None,
) -> np.ndarray:
    """One image (H, W) decoded with several top-level channels moved at once: channel c by
    ``offsets[c]`` prior standard deviations everywhere, from the prior mean, from ``base``'s
    posterior mean (a raw tile (H, W)) or from the top latent ``z_top`` (flat, as
    :func:`~microvae.latent.embed` ``how="flat"`` gives, or (C, h, w)); the levels below at
    their prior means given the top. The traversal sliders of the napari explorer."""
    model.require_2d("the latent tools")
    prior, start, (h, w) = _top_start(model, base, z_top, size)
    _check_channels(list(offsets), start.shape[1])
    z = start.clone()
    for c, v in offsets.items():
        z[:, c] = start[:, c] + float(v) * prior.std[:, c]
    return model.to_raw(model.vae.decode([z], shape=(1, h, w)))[0]


@torch.no_grad()
def decode_top(model: TrainedModel, z_top: np.ndarray, *, batch_size: int = 32) -> np.ndarray:
    """Decode top-level latents (N, C, h, w) (or (N, D) for a global latent; a flat
    embedding is reshaped to the model's top-level shape), the levels below at their prior
    means given it: (N, H, W) for tiles of the training size."""
    h, w = _size(model, None)
    shape = tuple(model.vae.priors(size=(h, w))[0].mean.shape[1:])
    z_top = np.asarray(z_top, np.float32).reshape(-1, *shape)
    out = []
    for a in range(0, len(z_top), batch_size):
        z = torch.from_numpy(z_top[a : a + batch_size]).to(model.device)
        out.append(model.to_raw(model.vae.decode([z], shape=(len(z), h, w))))
    return np.concatenate(out)
