"""report.md: the evaluation's numbers and figures in one readable page."""

from __future__ import annotations

import math
from pathlib import Path

from ..inference import TrainedModel
from ..io import atomic_path

__all__ = ["write_report"]

# (column, header, format) of the summary table
SUMMARY = [
    ("psnr_db", "PSNR (dB)", "{:.2f}"),
    ("ssim", "SSIM", "{:.3f}"),
    ("frc_resolution_px", "FRC res. (px)", "{:.2f}"),
    ("hf_ratio", "HF ratio", "{:.2f}"),
    ("blur_test", "blur", "{:.3f}"),
    ("ratio_total_length_px", "length ratio", "{:.2f}"),
    ("ratio_n_branches", "branches ratio", "{:.2f}"),
    ("ratio_n_junctions", "junctions ratio", "{:.2f}"),
    ("ratio_n_end_points", "end points ratio", "{:.2f}"),
    ("ratio_mean_branch_length_px", "mean branch ratio", "{:.2f}"),
]


def _fmt(fmt: str, v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    if isinstance(v, float) and math.isinf(v):
        return "inf"
    return fmt.format(v)


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _figure(out: Path, path: Path | None, caption: str) -> str:
    if path is None:
        return ""
    return f"![{caption}]({path.relative_to(out).as_posix()})\n\n*{caption}*\n"


def _realism_section(realism: dict) -> str:
    """The samples' morphology against the data's (microvae.metrics.realism)."""
    if not realism:
        return ""
    first = next(iter(realism.values()))
    d = first["data"]
    head = (
        "### Do the samples look like the data?\n\n"
        f"Morphology of {first['samples'].get('tiles', 0)} of the samples (those with at "
        f"least {first['min_foreground']:.0%} foreground, at the data's threshold "
        f"{first['threshold']:.4g}) against {d['tiles']} data tiles: the distance of each "
        "distribution is the Wasserstein-1 distance over the data's mean (0: the same), the "
        "score their mean over length, junctions and branch lengths; two random halves of the "
        f"data score **{first['reference_score']:.2f}** (what a perfect generator would).\n"
    )
    rows = [
        [
            "data",
            "",
            f"{d['length_density']:.1f}",
            f"{d['junction_density']:.2f}",
            f"{d['branch_length_px']:.1f}",
            "",
            "",
        ]
    ]
    for t, r in realism.items():
        g, dist = r["samples"], r["distances"]
        rows.append(
            [
                f"samples, {t}",
                f"{r['samples_kept']:.0%}",
                _fmt("{:.1f}", g.get("length_density")),
                _fmt("{:.2f}", g.get("junction_density")),
                _fmt("{:.1f}", g.get("branch_length_px")),
                ", ".join(
                    _fmt("{:.2f}", dist[k])
                    for k in ("length_density", "junction_density", "branch_length")
                ),
                _fmt("{:.2f}", r["score"]),
            ]
        )
    header = [
        "",
        "with signal",
        "skeleton px / 1000 px",
        "junctions / 10^4 px",
        "mean branch px",
        "distances (length, junctions, branches)",
        "score",
    ]
    return head + "\n" + _table(header, rows) + "\n"


def write_report(result, model: TrainedModel) -> Path:
    """Write ``report.md`` beside the figures, section by section; returns its path."""
    info = model.describe()
    if model.dims == 3:
        latent = [
            "## Latent space\n\nA 3D model: the latent diagnostics, likelihood bounds, "
            "embeddings and generation figures take 2D models for now.\n"
        ]
    else:
        latent = [
            *_collapse_section(result),
            *_bounds_section(result.diagnostics.get("bounds")),
            *_embedding_section(result),
            *(_generation_section(result) if model.vae.can_generate else _no_generation(info)),
        ]
    parts = [
        *_header(result, info, model.config.model.tile_shape()),
        *_fidelity_section(result),
        *_volume_section(result),
        *_uncertainty_section(result),
        *latent,
    ]
    path = result.out_dir / "report.md"
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(p for p in parts if p))
    return path


def _header(result, info: dict, tile: tuple[int, ...]) -> list[str]:
    return [
        "# microvae evaluation\n",
        f"Model `{info['file']}`: {info['skip_mode']} skips, {info['likelihood']} likelihood, "
        f"{info['levels']} levels, {info['parameters']:,} parameters, trained on "
        f"{'x'.join(map(str, tile))} tiles of {info['bit_depth']}-bit data. "
        f"Inputs: {len(result.files)} file(s): {', '.join(result.files[:8])}"
        f"{' ...' if len(result.files) > 8 else ''}.\n",
    ]


def _fidelity_section(result) -> list[str]:
    """The means over planes, the noise-split estimate, the gain over the input, the crops
    and the FRC curves."""
    out = result.out_dir
    means = [r for r in result.rows if r["file"] == "all"]
    parts = [
        "## Fidelity and fine structure\n",
        "Means over all planes (per plane in `metrics.csv`). PSNR and SSIM use the reference's "
        "max - min as data range; FRC resolution is where the Fourier ring correlation falls "
        "to 1/7 (2 px = agreement up to Nyquist); the HF ratio is the compared image's power "
        "over the reference's in the upper half of the reference's signal band (1 = as sharp; "
        "well below 1 = blurred); blur is scikit-image's blur effect (0 sharp, 1 blurred); "
        "network ratios compare MiNA-style skeleton counts at the reference's threshold "
        "(1 = same).\n",
        _table(
            ["reference", "compared"] + [h for _, h, _ in SUMMARY],
            [
                [r["reference"], r["compared"]] + [_fmt(f, r.get(c)) for c, _, f in SUMMARY]
                for r in means
            ],
        )
        + "\n",
    ]
    split = [
        r for r in means if r.get("split_mse") is not None and r["compared"] == "reconstruction"
    ]
    if split and not math.isnan(split[0]["split_mse"]):
        r = split[0]
        parts.append(
            "Without ground truth, by noise splitting (binomial thinning of the photo-electrons; "
            f"gain {r['split_gain']:.3g} ADU per electron from the images' mean-variance): the "
            f"reconstruction of half the dose is {r['split_rmse']:.4g} RMS from the noise-free "
            f"signal, {_fmt('{:.2f}', r['split_psnr_db'])} dB over the inputs' 0.1-99.9 "
            "percentile range (mean over planes).\n"
        )
    gt_rows = [r for r in means if r["reference"] == "ground truth"]
    if len(gt_rows) == 2:
        rec = next(r for r in gt_rows if r["compared"] == "reconstruction")
        inp = next(r for r in gt_rows if r["compared"] == "input")
        gain = rec["psnr_db"] - inp["psnr_db"]
        parts.append(
            f"Against the ground truth the reconstruction scores {rec['psnr_db']:.2f} dB, the "
            f"noisy input {inp['psnr_db']:.2f} dB: {gain:+.2f} dB "
            f"({'the model denoises' if gain > 0 else 'no better than the input'}).\n"
        )
    parts.append(
        _figure(
            out,
            result.figures.get("crops"),
            "Crops at full resolution where the input has most fine detail: input, "
            "reconstruction (and ground truth), |reconstruction - input|.",
        )
    )
    parts.append(_figure(out, result.figures.get("frc"), "Fourier ring correlation curves."))
    return parts


VOLUME_SUMMARY = [
    ("net3d_total_length", "3D length"),
    ("net3d_n_junctions", "3D junctions"),
    ("net3d_n_end_points", "3D end points"),
    ("net3d_volume", "3D volume"),
    ("net3d_n_components", "3D components"),
    ("hf_ratio_z", "HF ratio along Z"),
    ("frc_z_planes", "FRC along Z (planes)"),
]


# the network statistics shown with their intervals over the draws
INTERVALS = (
    ("total_length_px", "length"),
    ("n_junctions", "junctions"),
    ("n_branches", "branches"),
    ("mean_branch_length_px", "mean branch length"),
)
# and those of a 3D model's volume (metrics.network_3d's)
INTERVALS_3D = (
    ("total_length", "3D length"),
    ("n_junctions", "3D junctions"),
    ("n_branches", "3D branches"),
    ("volume", "3D volume"),
)


def _interval(v: list[float]) -> str:
    """value [low, high]"""
    value, low, high = (_fmt("{:.2f}", x) for x in v)
    return f"{value} [{low}, {high}]"


def _scale_note(scale: float) -> str:
    """What the draws were widened by, where the model is calibrated."""
    if scale == 1.0:
        return " The draws are the model's own (not calibrated: `microvae calibrate`)."
    return (
        f" Each draw's distance from the MMSE is widened by the model's calibrated spread "
        f"scale, {scale:.3g} (`microvae calibrate`)."
    )


def _uncertainty_section(result) -> list[str]:
    """How sure of each structure: intervals over the draws, branch presence and, with the
    noise split, the draws' calibration."""
    u = result.uncertainty
    if not u:
        return []
    volume = any("volume" in plane["intervals"] for plane in u["planes"])
    shown = INTERVALS_3D if volume else INTERVALS
    rows = []
    for plane in u["planes"]:
        iv = plane["intervals"]
        share = plane["length_share_presence_0.9"]
        rows.append(
            [plane["file"]]
            + [_interval(iv[f]) for f, _ in shown]
            + [str(plane["branches"]), _fmt("{:.0%}", share)]
        )
    what = "first volume (3D network)" if volume else "first plane"
    parts = [
        "## How sure of each structure\n",
        f"{u['samples']} posterior draws of the {what} of each file (every latent level "
        "drawn from q(z|x)). Network statistics of the draws' mean (MMSE) over the input's, "
        "with the central 90% interval of the draws'; branches: those of the MMSE's skeleton, "
        "and the share of their length present (within 2 px) in at least 90% of the draws."
        + _scale_note(u.get("spread_scale", 1.0))
        + "\n",
        _table(
            ["file"] + [h for _, h in shown] + ["branches", "length with presence >= 0.9"],
            rows,
        ),
        "",
    ]
    for plane in u["planes"]:
        path = result.out_dir / plane["figure"]
        parts.append(_figure(result.out_dir, path, f"{plane['file']}: branch presence"))
    if "calibration" in u:
        c = u["calibration"]
        parts += [
            "Is the draws' spread right? Without ground truth (the noise split: the model "
            "reconstructs half of each image's photo-electrons, the other half scores it), "
            "binned by predicted variance: the slope of error over prediction is "
            f"{c['slope']:.2f} +- {c['slope_stderr']:.2f} (1: calibrated; above 1 "
            "overconfident). It measures the model at half the dose; `microvae calibrate` "
            "fits the full-dose scale and stores it.\n",
            _figure(
                result.out_dir,
                result.out_dir / u["calibration_figure"],
                "calibration of the draws' spread (noise split)",
            ),
        ]
    return parts


def _volume_section(result) -> list[str]:
    """A 3D model's volume metrics: the means over volumes, ratios compared / reference."""
    means = [r for r in result.rows if r["file"] == "all" and "hf_ratio_z" in r]
    if not means:
        return []
    return [
        "## Volumes\n",
        "Means over volumes (per volume in `metrics.csv`, plane `volume`): the 3D network "
        "(MitoGraph-style skeleton at the reference's threshold, in the files' voxel size) as "
        "ratios compared / reference (1 = same); the HF ratio along Z (power in the upper half "
        "of the reference's Z signal band, 1 = as sharp between planes); the Fourier "
        "correlation along Z, where it falls to 1/7 (2 planes = agreement up to Nyquist). The "
        "noise-split estimate above is over whole volumes.\n",
        _table(
            ["reference", "compared"] + [h for _, h in VOLUME_SUMMARY],
            [
                [r["reference"], r["compared"]]
                + [_fmt("{:.3g}", r.get(c)) for c, _ in VOLUME_SUMMARY]
                for r in means
            ],
        )
        + "\n",
    ]


def _collapse_section(result) -> list[str]:
    """The verdict and the numbers behind it, per level; the KL figure."""
    d = result.diagnostics
    reasons = "; ".join(d.get("reasons") or [])
    notes = "".join(f" Note: {n}." for n in d.get("notes") or [])
    parts = [
        "## Latent space use (posterior collapse)\n",
        f"Verdict: **{d.get('verdict')}**{f' ({reasons})' if reasons else ''}.{notes} Measured on "
        f"{d.get('n_tiles')} tiles. Active latent channels (KL where used, the mean over "
        f"their top decile of elements, > {d.get('threshold_nats')} nats): "
        f"{d.get('active_units')} of {d.get('total_units')}. Sensitivity of the reconstruction "
        f"to replacing z by prior noise: {_fmt('{:.3g}', d.get('sensitivity'))} (mean |change| "
        "in the data's normalised units, where the training data's percentiles lie 2 apart).\n",
    ]
    if d.get("kl_per_level_nats"):
        sens = d.get("sensitivity_per_level") or []
        per_ch = (
            d.get("kl_used_per_channel_nats_per_element") or d["kl_per_channel_nats_per_element"]
        )
        active = [f"{sum(v > d['threshold_nats'] for v in c)}/{len(c)}" for c in per_ch]
        parts.append(
            _table(
                ["level", "KL (nats/tile)", "active channels", "z-reader norm", "sensitivity"],
                [
                    [
                        str(i),
                        f"{kl:.4g}",
                        active[i],
                        f"{d['z_weight_norms'][i]:.3g}",
                        _fmt("{:.3g}", sens[i] if i < len(sens) else None),
                    ]
                    for i, kl in enumerate(d["kl_per_level_nats"])
                ],
            )
            + "\n"
        )
    parts.append(
        _figure(result.out_dir, result.figures.get("kl"), "KL per level and per latent channel.")
    )
    return parts


def _bounds_section(b: dict | None) -> list[str]:
    """ELBO and IWAE_K (``evaluate --iwae K``), where computed."""
    if not b:
        return []
    caveat = (
        ""
        if b["is_bound"]
        else " Deterministic skips carry x past the latents: neither number is a bound."
    )
    return [
        "## Likelihood bounds\n",
        f"On {b['n_tiles']} tiles: ELBO {b['elbo_bits_per_dim']:.4f} bits/dim, "
        f"importance-weighted bound IWAE_{b['k']} {b['iwae_bits_per_dim']:.4f} bits/dim "
        f"(tighter by {b['gap_nats']:.3g} nats per tile; IWAE_K >= ELBO, and it approaches "
        f"log p(x) as K grows).{caveat}\n",
    ]


def _embedding_section(result) -> list[str]:
    emb = result.latent.get("embedding", {})
    parts = [
        "## Embeddings\n",
        f"{emb.get('n_tiles')} tiles, pooled embeddings of {emb.get('dimension')} values "
        "(per latent level and channel: the spatial mean and standard deviation of the "
        "posterior mean), first two principal components.\n",
    ]
    if emb.get("probe_accuracy") is not None:
        n_train, n_test = emb["probe_tiles"]
        parts.append(
            f"A linear probe (logistic regression) fitted on the embeddings of {n_train} tiles "
            f"tells the labels of {n_test} tiles from other files with accuracy "
            f"**{emb['probe_accuracy']:.2f}**.\n"
        )
    parts.append(
        _figure(result.out_dir, result.figures.get("embedding"), "PCA map of the embeddings.")
    )
    return parts


def _generation_section(result) -> list[str]:
    """Prototype, samples, interpolation, traversals, the samples' realism and the holes."""
    out = result.out_dir
    parts = ["## Generation\n"]
    for key, caption in (
        ("prototype", "Prototype: every latent at its prior mean."),
        ("samples", "Samples from the prior at temperatures 1, 0.7, 0.4."),
        ("interpolation", "Interpolation between the two most different tiles."),
        (
            "traversal",
            "Traversals of the top-level channels with most KL (-2 to +2 "
            "prior sd), from the posterior of one tile.",
        ),
    ):
        parts.append(_figure(out, result.figures.get(key), caption))
    parts.append(_realism_section(result.latent.get("realism", {})))
    dens = result.latent.get("density", {})
    holes = result.latent.get("holes", [])
    parts.append("## Holes of the aggregate posterior\n")
    if not holes:
        parts.append("Too few tiles, or a single group of embeddings: no hole was sought.\n")
    else:
        parts.append(
            f"k-NN density (k = {dens.get('k')}) of the flat top-level embeddings "
            f"({dens.get('embedding_dimension')} values, intrinsic dimension "
            f"{_fmt('{:.1f}', dens.get('intrinsic_dimension'))}) between "
            f"{result.latent.get('hole_groups')}; the lowest point of each path between two "
            "groups' medoids, in log density relative to a typical tile:\n"
        )
        rows = [
            [h["groups"][0], h["groups"][1], f"{h['t']:.2f}", f"{h['log_density']:.2f}"]
            for h in holes
        ]
        parts.append(_table(["from", "to", "position", "log density"], rows) + "\n")
    parts.append(_figure(out, result.figures.get("holes"), "Decoded paths and holes."))
    parts.append(_figure(out, result.figures.get("density"), "Density along the paths."))
    return parts


def _no_generation(info: dict) -> list[str]:
    return [
        "## Generation\n\nThis model's skips hand encoder features to the decoder "
        f"(skip_mode {info['skip_mode']}): it cannot generate, so there is no prototype, "
        "sample, interpolation, traversal or hole.\n"
    ]
