"""The noise floor under every model's bits/dim, and what each likelihood family costs on it.

The synthetic camera is known: given the clean ground truth, a pixel's level is
``round(offset + gain * Poisson(photons) + Normal(0, read_noise))`` clipped to 12 bits (about
31 ADU per photon and 49 ADU of read noise at the defaults). On the held-out tiles that
fidelity.py scores, this script computes the negative log-likelihood of the noisy levels, in
bits per pixel, under oracle conditionals that know the clean image:

- the exact camera model (Poisson-Gaussian, summed over photon counts);
- a discretised Gaussian with the true per-pixel mean and variance;
- a discretised logistic with the true mean and variance;
- a discretised logistic, and a mixture of K logistics, whose shape (offsets and scales in
  units of the true standard deviation, weights) is fitted by maximum likelihood.

All use microvae's own discretisation (``microvae.model.discretize.log_discrete_mass``), so the
numbers compare with a model's reconstruction term (``recon_bits_per_dim`` in fidelity.py's
results): what a model pays above the floor is its uncertainty about the clean image, and the
gap between the families is what the shape of the likelihood alone costs.

    python benchmarks/noise_floor.py [--quick] [--components 3]
"""

from __future__ import annotations

import argparse
import math

import numpy as np
import torch
from _results import write_result
from fidelity import ROOT, held_out, held_out_tiles

from microvae.config import load_config
from microvae.model.discretize import (
    bin_width,
    log_cdf_logistic,
    log_cdf_normal,
    log_discrete_mass,
    to_unit,
)
from microvae.synthetic import Camera

LN2 = math.log(2.0)


def _unit(adu: torch.Tensor, bit_depth: int) -> torch.Tensor:
    """ADU (float) -> [-1, 1] model units, the same affine map as the levels'."""
    return adu * bin_width(bit_depth) - 1.0


def camera_log_prob(levels: torch.Tensor, truth: torch.Tensor, camera: Camera) -> torch.Tensor:
    """log P(level | clean ADU) under the camera model, nats, float64, the shape of ``levels``.

    Sums over photon counts n: Poisson(n; lambda) x the mass of the level's bin under
    Normal(offset + gain n, read noise), lambda = (clean - offset) / gain.
    """
    b = camera.bit_depth
    lam = ((truth - camera.offset) / camera.gain).clamp(min=0.0).flatten()
    top = float(lam.max())
    n = torch.arange(0, math.ceil(top + 10 * math.sqrt(top) + 20), dtype=torch.float64)
    x = to_unit(levels.flatten(), b).double()
    out = torch.empty_like(lam)
    for a in range(0, len(lam), 4096):  # (pixels, counts) in chunks keeps memory small
        la = lam[a : a + 4096, None]
        log_pois = torch.xlogy(n, la) - la - torch.lgamma(n + 1)
        loc = _unit(camera.offset + camera.gain * n, b).expand(len(la), -1)
        scale = torch.full_like(loc, camera.read_noise_adu * bin_width(b))
        mass = log_discrete_mass(log_cdf_normal, x[a : a + 4096, None], loc, scale, b)
        out[a : a + 4096] = torch.logsumexp(log_pois + mass, dim=1)
    return out.view(levels.shape)


def fitted_logistic_mixture(
    levels: torch.Tensor, mean: torch.Tensor, sd: torch.Tensor, bit_depth: int, k: int
) -> tuple[float, dict]:
    """Mean log-likelihood (nats/pixel) of the best mixture of ``k`` discretised logistics
    ``sum_j w_j Logistic(mean + sd m_j, sd s_j)`` (one shape for all pixels, fitted by
    maximum likelihood), and that shape. mean and sd in [-1, 1] units."""
    x = to_unit(levels, bit_depth).double()
    # start: the logistic of the same variance; components spread across one sd
    offsets = torch.linspace(-0.5, 0.5, k, dtype=torch.float64) if k > 1 else torch.zeros(1)
    shape = {
        "logits": torch.zeros(k, dtype=torch.float64, requires_grad=True),
        "offsets": offsets.double().clone().requires_grad_(),
        "log_scales": torch.full((k,), math.log(math.sqrt(3) / math.pi), dtype=torch.float64)
        .clone()
        .requires_grad_(),
    }
    opt = torch.optim.LBFGS(list(shape.values()), max_iter=200, line_search_fn="strong_wolfe")

    def nll() -> torch.Tensor:
        log_w = torch.log_softmax(shape["logits"], 0)
        loc = mean[..., None] + sd[..., None] * shape["offsets"]
        scale = sd[..., None] * torch.exp(shape["log_scales"])
        per = log_discrete_mass(log_cdf_logistic, x[..., None], loc, scale, bit_depth)
        return -torch.logsumexp(log_w + per, dim=-1).mean()

    def closure():
        opt.zero_grad()
        loss = nll()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        value = -float(nll())
    return value, {
        "weights": [round(v, 4) for v in torch.softmax(shape["logits"], 0).tolist()],
        "offsets_sd": [round(v, 4) for v in shape["offsets"].tolist()],
        "scales_sd": [round(v, 4) for v in torch.exp(shape["log_scales"]).tolist()],
    }


def noise_floor(quick: bool, components: int, synth: list[str] = ()) -> dict:
    config = load_config(ROOT / "configs" / ("demo.yaml" if quick else "mito2d.yaml"))
    _, held = held_out(quick, synth)
    camera = held[0].camera  # one camera for all: the same parameters
    b = camera.bit_depth
    noisy, truth = held_out_tiles(held, config.data.tile_size)
    levels = torch.from_numpy(noisy.astype(np.int64))
    clean = torch.from_numpy(truth.astype(np.float64))
    var_adu = camera.gain * (clean - camera.offset).clamp(min=0.0) + camera.read_noise_adu**2
    mean, sd = _unit(clean, b), var_adu.sqrt() * bin_width(b)
    x = to_unit(levels, b).double()

    def bits(log_p: float) -> float:
        return round(-log_p / LN2, 4)

    exact = float(camera_log_prob(levels, clean, camera).mean())
    gauss = float(log_discrete_mass(log_cdf_normal, x, mean, sd, b).mean())
    logistic = float(
        log_discrete_mass(log_cdf_logistic, x, mean, sd * math.sqrt(3) / math.pi, b).mean()
    )
    fit1, shape1 = fitted_logistic_mixture(levels, mean, sd, b, 1)
    fitk, shapek = fitted_logistic_mixture(levels, mean, sd, b, components)
    return {
        "mode": "quick" if quick else "full",
        "tiles": list(noisy.shape),
        "camera": {
            "offset_adu": camera.offset,
            "gain_adu_per_photon": camera.gain,
            "read_noise_adu": round(camera.read_noise_adu, 3),
        },
        "noise_sd_adu": {
            "min": round(float(var_adu.sqrt().min()), 1),
            "median": round(float(var_adu.sqrt().median()), 1),
            "max": round(float(var_adu.sqrt().max()), 1),
        },
        "bits_per_dim": {
            "camera model (exact)": bits(exact),
            "gaussian, true mean and variance": bits(gauss),
            "logistic, true mean and variance": bits(logistic),
            "logistic, shape fitted": bits(fit1),
            f"mixture of {components} logistics, shape fitted": bits(fitk),
        },
        "fitted_shapes": {"logistic": shape1, f"mixture of {components}": shapek},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="the held-out tiles of fidelity --quick")
    ap.add_argument("--components", type=int, default=3, help="logistics in the fitted mixture")
    ap.add_argument("--synth", nargs="*", default=[], metavar="KEY=VALUE", help="as in fidelity.py")
    ap.add_argument("--name", default=None, help="results/NAME.json")
    args = ap.parse_args()
    payload = noise_floor(args.quick, args.components, args.synth)
    payload["synth_overrides"] = args.synth
    for name, v in payload["bits_per_dim"].items():
        print(f"{v:8.4f} bits/dim  {name}")
    name = args.name or ("noise_floor_quick" if args.quick else "noise_floor")
    path = write_result(name, payload)
    print(f"written: {path}")


if __name__ == "__main__":
    main()
