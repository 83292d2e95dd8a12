"""Write BENCHMARKS.md from benchmarks/results/*.json: one command, no numbers typed by hand.

python benchmarks/report.py [--out BENCHMARKS.md]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
OUT = HERE.parent / "BENCHMARKS.md"


def _load(name: str) -> dict | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _cell(v) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.2f}" if abs(v) >= 10 else f"{v:.3g}"
    return str(v)


def _table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(v) for v in r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def _samples_rows(pred: dict) -> list[list[str]]:
    """predict_speed.py's posterior-samples row: time and memory with N draws against one."""
    x = pred.get("samples")
    if not x:
        return []
    n = x["samples"]
    time_ok = "met" if x["time_ratio"] <= n else "**missed**"
    mem_ok = "met" if x["memory_ratio"] is not None and x["memory_ratio"] <= 1.1 else "**missed**"
    return [
        [
            f"predict --samples {n} against one pass ({x['planes']} planes of {x['side']}^2)",
            f"time x{x['time_ratio']} ({x['seconds_1']} s -> {x[f'seconds_{n}']} s; target <= "
            f"{n}: {time_ok}); peak memory {x[f'peak_rss_above_start_mb_{n}']} MB against "
            f"{x['peak_rss_above_start_mb_1']} MB (target: the same: {mem_ok})",
        ]
    ]


def _predict_3d_rows(pred: dict) -> list[list[str]]:
    """predict_speed.py's 3D rows: a 3D model's efficiency and its memory on the OME-Zarr
    stack (the first and last blocks of planes finished, every plane read)."""
    rows = []
    e = pred.get("efficiency_3d")
    if e:
        tile = "x".join(map(str, e["tile"]))
        rows += [
            [
                f"3D predict ({pred.get('config3d', '3D config')}, tiles {tile})",
                f"{e['predict_mvox_per_s']} Mvoxel/s",
            ],
            ["3D bare forward over the same tiles", f"{e['bare_forward_mvox_per_s']} Mvoxel/s"],
            [
                "3D ratio (target >= 0.85)",
                f"{e['ratio']} ({'met' if e['ratio'] >= 0.85 else '**missed**'})",
            ],
        ]
    z = pred.get("memory_ome_zarr_3d")
    if z:
        rows.append(
            [
                "peak memory of 3D predict, OME-Zarr in and out",
                f"{z['peak_rss_above_start_mb']} MB above the start on a {z['stack_gb']} GB "
                f"stack of {z['planes']} planes ({z['planes_finished']} finished, every plane "
                f"read), against {z['thin_stack_peak_rss_above_start_mb']} MB on a stack of "
                f"{z['thin_stack_planes']} such planes: it does not grow with the stack "
                f"({z['model']}; the network's own working memory dominates)",
            ]
        )
    return rows


# results without _results.CAMERA_ESTIMATE's key predate metrics.estimate_camera's second
# differences: their noise-split figures used gains read partly from structure
SPLIT_KEYS = ("split_noise", "split_psnr", "calibration_split")


def _machine(r: dict) -> str:
    m = r["machine"]
    where = m.get("gpu") or f"{m['cpu']}, {m['cores']} cores, {m['torch_threads']} torch threads"
    text = f"*{r['date']}, {where}, torch {m['torch']}.*\n"
    if "camera_estimate" not in r and any(k in json.dumps(r) for k in SPLIT_KEYS):
        text += (
            "*Its noise-split figures predate the camera estimate of 2026-12-07: the 2x2 Haar "
            "details used before it read structure as noise (gains up to 1.2x the true one on "
            "synthetic images, 2.8x the new estimate's on hela-cells_mito_ch1). Rerun to update "
            "them.*\n"
        )
    return text


def _fidelity_args(r: dict) -> str:
    """The command-line arguments that made a fidelity result."""
    args = " --quick" if r["mode"] == "quick" else ""
    if r["steps"] != (800 if r["mode"] == "quick" else 20000):
        args += f" --steps {r['steps']}"
    if r["benchmark"] not in ("fidelity", "fidelity_cuda", "fidelity_quick"):
        args += f" --name {r['benchmark']}"
    return args


def fidelity_section(r: dict) -> str:
    out = [
        f"## Fine-structure fidelity ({r['mode']} mode)\n",
        f"`benchmarks/fidelity.py{_fidelity_args(r)}`: {len(r['models'])} models trained "
        f"{r['steps']} steps each ({r['config']}) on {r['train_images']} synthetic "
        f"images of {r['image_shape'][0]}x{r['image_shape'][1]}, evaluated on "
        f"{r['held_out_images']} held-out images. " + _machine(r),
        "Against the clean ground truth (full posterior reconstruction; the best mode in the "
        "last column):\n",
    ]
    rows = []
    any_model = next(iter(r["models"].values()))
    noisy = any_model["noisy_input_vs_ground_truth"]
    rows.append(
        [
            "noisy input",
            noisy["psnr_db"],
            noisy["ssim"],
            noisy["frc_resolution_px"],
            noisy["hf_ratio"],
            noisy["ratio_total_length_px"],
            noisy["ratio_n_junctions"],
            "",
            "",
            "",
            "",
        ]
    )
    for name, m in r["models"].items():
        f = m["modes"]["full"]["vs_ground_truth"]
        best = m["modes"][m["best_mode"]]["vs_ground_truth"]
        bpd = f"{m['bits_per_dim']}" + ("" if m["bound_is_valid"] else " (not a bound)")
        rows.append(
            [
                name,
                f["psnr_db"],
                f["ssim"],
                f["frc_resolution_px"],
                f["hf_ratio"],
                f["ratio_total_length_px"],
                f["ratio_n_junctions"],
                bpd,
                m["active_units"],
                m["verdict"],
                f"{m['best_mode']}: {best['psnr_db']} dB",
            ]
        )
    out.append(
        _table(
            [
                "model",
                "PSNR dB",
                "SSIM",
                "FRC px",
                "HF ratio",
                "length ratio",
                "junctions ratio",
                "bits/dim",
                "active units",
                "verdict",
                "best mode",
            ],
            rows,
        )
    )
    real = [(n, m.get("real_vs_input", {})) for n, m in r["models"].items()]
    files = sorted({f for _, d in real for f in d})
    if files:
        out.append(
            "\nOn the real images of `../shared/data/real`, against the input (the models "
            "were trained on synthetic data only):\n"
        )
        rows = []
        for n, d in real:
            for f in files:
                v = d.get(f)
                if v:
                    rows.append(
                        [
                            n,
                            f,
                            v["psnr_db"],
                            v["ssim"],
                            v["frc_resolution_px"],
                            v["hf_ratio"],
                            v["ratio_total_length_px"],
                        ]
                    )
        out.append(
            _table(
                ["model", "image", "PSNR dB", "SSIM", "FRC px", "HF ratio", "length ratio"], rows
            )
        )
    if r.get("targets"):
        out.append("\nTargets of the issue:\n")
        out.append(
            _table(
                ["target", "measured", "met"],
                [
                    [t["target"], t["measured"], "yes" if t["met"] else "**no**"]
                    for t in r["targets"]
                ],
            )
        )
        if any("bits/dim" in t["target"] and not t["met"] for t in r["targets"]):
            out.append(
                "\nWhy the bits/dim target is missed, measured: *Bits/dim: the noise floor and "
                "the likelihoods* below.\n"
            )
    return "\n".join(out)


def _runs(prefix: str) -> list[dict]:
    """Every results/PREFIX*.json, main runs (the shortest names) first."""
    paths = sorted(RESULTS.glob(f"{prefix}*.json"), key=lambda p: (len(p.stem), p.stem))
    return [json.loads(p.read_text()) for p in paths]


def _overrides(r: dict) -> list[str]:
    return list(r.get("synth_overrides") or [])


def _pair_gap(runs: list[dict], a: str, b: str) -> list[str]:
    """'x at N steps (reconstruction terms y)': bits/dim of model a minus model b, per run
    that holds both."""
    out = []
    for r in runs:
        ma, mb = r["models"].get(a), r["models"].get(b)
        if not (ma and mb):
            continue
        text = f"{ma['bits_per_dim'] - mb['bits_per_dim']:+.4f} at {r['steps']} steps"
        if "recon_bits_per_dim" in ma and "recon_bits_per_dim" in mb:
            recon = ma["recon_bits_per_dim"] - mb["recon_bits_per_dim"]
            text += f" (reconstruction terms {recon:+.4f})"
        out.append(text)
    return out


def noise_floor_section(floors: list[dict], fidelities: list[dict]) -> str:
    """Per camera: the oracle bits/dim of its noise, and each model's two terms beside it."""
    out = [
        "## Bits/dim: the noise floor and the likelihoods\n",
        "`benchmarks/noise_floor.py`: the negative log-likelihood of the held-out tiles' noisy "
        "levels given their clean ground truth, under the camera model itself and under oracle "
        "likelihoods of each family (microvae's discretisation; the tiles fidelity.py scores). "
        "The camera model's number is the entropy of the noise: no valid bound (-ELBO) can go "
        "below it, and a reconstruction term only by spending KL on encoding the noise. Below "
        "each oracle table, every fidelity run on the same images: -ELBO = reconstruction "
        "term + KL. How to read it: where the noise is close to Gaussian (the default camera, "
        "whose read noise is wider than one photon's step in ADU), no family can beat the "
        "Gaussian by much even knowing the clean image, so a trained comparison is decided by "
        "how fast each decoder fits; with little read noise (photon counting) the noise is "
        "skewed and lumpy, and the mixture's flexibility counts.\n",
    ]
    for floor in floors:
        synth = _overrides(floor)
        base = floor["bits_per_dim"]["camera model (exact)"]
        cam = floor["camera"]
        out.append(
            f"### Camera: {cam['gain_adu_per_photon']} ADU per photon, read noise "
            f"{cam['read_noise_adu']} ADU"
            + (f" (`--synth {' '.join(synth)}`)" if synth else "")
            + "\n"
        )
        out.append(f"`{floor['benchmark']}`: " + _machine(floor))
        out.append(
            _table(
                ["oracle likelihood", "bits/dim", "above the camera model"],
                [[n, f"{v:.4f}", f"{v - base:+.4f}"] for n, v in floor["bits_per_dim"].items()],
            )
        )
        runs = [r for r in fidelities if r["mode"] == floor["mode"] and _overrides(r) == synth]
        rows = []
        for r in runs:
            for name, m in r["models"].items():
                full = m["modes"]["full"]["vs_ground_truth"]
                rows.append(
                    [
                        f"`{r['benchmark']}`",
                        r["steps"],
                        name,
                        f"{m['bits_per_dim']:.4f}"
                        + ("" if m["bound_is_valid"] else " (not a bound)"),
                        f"{m['recon_bits_per_dim']:.4f}" if "recon_bits_per_dim" in m else "n/a",
                        f"{m['kl_bits_per_dim']:.4f}" if "kl_bits_per_dim" in m else "n/a",
                        f"{m['recon_bits_per_dim'] - base:+.4f}"
                        if "recon_bits_per_dim" in m
                        else "n/a",
                        full["psnr_db"],
                        full["hf_ratio"],
                    ]
                )
        if rows:
            out.append("")
            out.append(
                _table(
                    [
                        "run",
                        "steps",
                        "model",
                        "bits/dim",
                        "reconstruction",
                        "KL",
                        "reconstruction above the floor",
                        "PSNR dB vs truth (full)",
                        "HF ratio (full)",
                    ],
                    rows,
                )
            )
        oracle = floor["bits_per_dim"]
        mix = next(v for n, v in oracle.items() if n.startswith("mixture"))
        gaps = _pair_gap(runs, "ladder+dmol", "ladder+gaussian")
        edge = mix - oracle["gaussian, true mean and variance"]
        out.append(
            f"\nThe likelihood family alone: the best mixture of logistics is {edge:+.4f} "
            "bits/dim from the Gaussian at the oracle (negative: the mixture is better). "
            + (
                f"Trained, ladder+dmol minus ladder+gaussian: {'; '.join(gaps)}.\n"
                if gaps
                else "\n"
            )
        )
    return "\n".join(out)


def speed_section() -> str:
    out = ["## Speed and memory\n"]
    train = _load("train_speed")
    if train:
        out.append("`benchmarks/train_speed.py`: " + _machine(train))
        out.append(
            _table(
                [
                    "config",
                    "s/step (pipeline)",
                    "tiles/s (pipeline)",
                    "s/step (in memory)",
                    "pipeline overhead %",
                    "target <= 10%",
                ],
                [
                    [
                        r["config"],
                        r["s_per_step_with_pipeline"],
                        r["tiles_per_s_with_pipeline"],
                        r["s_per_step_data_in_memory"],
                        r["pipeline_overhead_percent"],
                        "yes" if r["pipeline_overhead_percent"] <= 10 else "**no**",
                    ]
                    for r in train["runs"]
                ],
            )
        )
    pred = _load("predict_speed")
    if pred:
        e, m = pred["efficiency"], pred.get("memory", {})
        out.append("\n`benchmarks/predict_speed.py`: " + _machine(pred))
        out.append(
            _table(
                ["what", "value"],
                [
                    ["predict", f"{e['predict_mpx_per_s']} Mpx/s"],
                    ["bare forward over the same tiles", f"{e['bare_forward_mpx_per_s']} Mpx/s"],
                    [
                        "ratio (target >= 0.85)",
                        f"{e['ratio']} ({'met' if e['ratio'] >= 0.85 else '**missed**'})",
                    ],
                    [
                        "peak memory of predict",
                        f"{m.get('peak_rss_above_start_mb')} MB above the start on a "
                        f"{m.get('stack_gb')} GB stack of {m.get('planes')} planes",
                    ],
                ]
                + [
                    [
                        "peak memory of predict, OME-Zarr in and out",
                        f"{z['peak_rss_above_start_mb']} MB above the start "
                        f"({z['peak_rss_in_planes']} planes) on a {z['stack_gb']} GB stack of "
                        f"{z['planes']} planes (target: a few planes, whatever the size)",
                    ]
                    for z in [pred.get("memory_ome_zarr")]
                    if z
                ]
                + _predict_3d_rows(pred)
                + _samples_rows(pred),
            )
        )
        dates = sorted({v["date"] for v in pred.values() if isinstance(v, dict) and "date" in v})
        if len(dates) > 1:
            out.append(
                f"\nThe rows were measured on {', '.join(dates)} (each part's date in the JSON)."
            )
    speed = _load("speed")
    if speed:
        s, c = speed["training_step"], speed["conv_microbenchmark"]
        ratio = speed["training_over_conv"]
        out.append("\n`benchmarks/speed.py`: " + _machine(speed))
        out.append(
            _table(
                ["what", "GFLOP/step", "s/step", "GFLOP/s"],
                [
                    [
                        f"training step, {s['config']} ({s['precision']})",
                        s["gflop_per_step"],
                        s["s_per_step"],
                        s["gflop_per_s"],
                    ],
                    [c["shape"], c["gflop_per_step"], c["s_per_step"], c["gflop_per_s"]],
                ],
            )
        )
        out.append(
            f"\nTraining step / convolution microbenchmark: {ratio} (target >= 0.5: "
            f"{'met' if ratio >= 0.5 else '**missed**'}).\n"
        )
    for name, what in (
        ("model_step", "one training step per skip_mode x likelihood"),
        ("io_read", "reading stacks plane by plane"),
        ("embedding_separation", "phenotypes in the embeddings"),
    ):
        if _load(name):
            out.append(f"- `{name}.json`: {what} (see `benchmarks/README.md`).")
    return "\n".join(out) + "\n"


def _split_psnr(row: dict) -> float | None:
    vals = [s["psnr_db"] for s in row["split_noise"] if s.get("psnr_db") is not None]
    return round(sum(vals) / len(vals), 2) if vals else None


PEER = "careamics-lvae"


def _off(m: dict) -> float:
    """How far the length and junction ratios lie from 1 (the larger of the two), over those
    the input has (a ratio is NaN where the input's skeleton has no junction)."""
    ratios = [m["ratio_total_length_px"], m["ratio_n_junctions"]]
    return max(abs(r - 1) for r in ratios if r == r)


def _drawn(key: str) -> str:
    """A realism key: "aggregate prior, T = 1" and the like; results from before the
    aggregate prior was fitted keyed by the temperature alone, from the learned prior."""
    return key if "prior" in key else f"learned prior, T = {key}"


def _command(r: dict, name: str) -> str:
    """The real_data.py command line of a result (its models and name where it predates
    recording its arguments)."""
    if r.get("args"):
        return " ".join(r["args"])
    models = sorted({x["model"] for x in r["rows"]})
    return f"--models {' '.join(models)} --no-peer --name {name}"


def _spread_reading(fitted: list[dict]) -> str:
    """What the spreads say, per model: about the same as the prior's (within 10%), or
    wider by how much."""
    ratios: dict[str, list[float]] = {}
    for x in fitted:
        t = x["top_prior"]
        ratios.setdefault(x["model"], []).append(t["aggregate_sd"] / t["prior_sd"])
    same = [m for m, v in ratios.items() if all(abs(r - 1) <= 0.1 for r in v)]
    other = {m: v for m, v in ratios.items() if m not in same}
    text = ""
    if same:
        text += (
            f" For {', '.join(same)} they are about the same (within 10%), so what the fit adds "
            "is the latents' correlations across positions and channels (a shrinkage towards "
            "the diagonal well below 1 says they are far above chance) and their mean, which "
            "the learned prior, independent per latent, lacks."
        )
    for m, v in other.items():
        text += (
            f" {m}'s aggregate posterior spreads {min(v):.2f}-{max(v):.2f}x its prior's: "
            "its prior does not match what its encoder uses."
        )
    return text


def realism_section(r: dict, source: str) -> str:
    """The samples' morphology realism per set and way of drawing them; ``source`` says
    which runs measured it."""
    real = [x for x in r["rows"] if x.get("realism")]
    if not real:
        return ""
    fitted = [x for x in real if x.get("top_prior")]
    spread = [
        f"{x['set']} {x['model']} {x['top_prior']['aggregate_sd']:.2f} against "
        f"{x['top_prior']['prior_sd']:.2f} (covariance shrinkage {x['top_prior']['shrinkage']:.2f})"
        for x in fitted
    ]
    text = (
        f"Samples against the file's tiles ({source}; `microvae.metrics.realism`, as "
        "`microvae evaluate` reports it): per statistic the Wasserstein-1 distance over the "
        "data's mean, the score their mean over skeleton length per area, junction density "
        "and branch lengths (0: the same distributions); two random halves of the data "
        'tiles score the reference. "aggregate prior": the top latent level drawn from the '
        "Gaussian fitted to its aggregate posterior at the end of training (what "
        '`microvae.latent.samples` draws by default); "learned prior": every level from the '
        "model's own priors."
    )
    if spread:
        text += (
            " The top level's spread (mean standard deviation per latent) of the fitted "
            "aggregate posterior against the learned prior's: "
            + "; ".join(spread)
            + "."
            + _spread_reading(fitted)
        )
    table = []
    for x in real:
        for t, q in x["realism"].items():
            d = q["distances"]
            table.append(
                [
                    x["set"],
                    x["model"],
                    _drawn(t),
                    q["samples_kept"],
                    d["length_density"],
                    d["junction_density"],
                    d["branch_length"],
                    q["score"],
                    q["reference_score"],
                ]
            )
    header = [
        "image set",
        "model",
        "samples drawn",
        "samples with signal",
        "length",
        "junctions",
        "branch lengths",
        "score",
        "data halves",
    ]
    return text + "\n\n" + _table(header, table)


def content_section(r: dict, source: str) -> str:
    """SSIM and RMSE on the image content, off the blanked regions of the files; ``source``
    says which runs measured it."""
    rows = [x for x in r["rows"] if "content_ssim" in x["metrics"]]
    if not rows:
        return ""
    text = (
        f"Blanked regions ({source}): "
        "`cell.tif` and `123002002001.tif` are blanked outside the cell, and "
        "`hela-cells_mito_ch1.tif`'s removed scale bar (rows 476-509) lies in its held-out "
        "rows, so no training tile holds it. SSIM over the whole plane counts these "
        "constant regions; here also SSIM (the mean of its map) and RMSE on the image content "
        "alone (regions of 256 px or more at exactly the plane's minimum left out), and the "
        "RMSE within 32 px of a blanked region."
    )
    table = [
        [
            x["set"],
            x["model"],
            x["metrics"]["content_blanked_fraction"],
            x["metrics"]["ssim"],
            x["metrics"]["content_ssim"],
            x["metrics"]["content_rmse"],
            x["metrics"]["content_rmse_near_blank"],
        ]
        for x in rows
    ]
    header = [
        "image set",
        "model",
        "blanked share",
        "SSIM",
        "SSIM on content",
        "RMSE on content",
        "RMSE near blank",
    ]
    return text + "\n\n" + _table(header, table)


def real_data_section(r: dict, samples_run: dict | None = None) -> str:
    """Models trained and scored on the real images of ../shared/data/real; the samples'
    realism (and the content metrics) from ``samples_run`` where given, a later run of the
    same training."""
    rows = r["rows"]
    peer = next((x["peer"] for x in rows if x["model"] == PEER), None)
    peer_text = (
        f" `{PEER}`: careamics {peer['careamics']}'s LVAE (HDN; {len(peer['z_dims'])} levels of "
        f"{peer['z_dims'][0]} latent channels, {peer['filters']} filters, "
        f"{peer['parameters'] / 1e6:.2f} M parameters, Gaussian likelihood with per-pixel "
        "variance, torch's Adam, careamics' defaults otherwise) trained by "
        "`benchmarks/careamics/runner.py` in its own environment for the wall-clock time of "
        "the ladder+dmol run on the same set, on tiles from microvae's tile sampler over the "
        "same training planes; its best validated weights, posterior means at every level, "
        "the same overlapping tiles and blending. "
        if peer
        else ""
    )
    out = [
        "## Real images (trained on them)\n",
        f"`benchmarks/real_data.py --steps {r['steps']}`: each image set of "
        f"`../shared/data/real` trained on its own with `{r['config']}` ({r['steps']} steps), "
        "split within the file (planes spread over a stack, the bottom rows of a 2D image, "
        "held out); scored on the held-out planes with most signal against the input, and "
        "without ground truth by noise splitting (binomial thinning; PSNR of the half-dose "
        "reconstruction against the noise-free signal, over the input's 0.1-99.9 percentile "
        "range). Bits/dim: every validation of the run; best, the saved model's and the last "
        "step's." + peer_text + " " + _machine(r),
        _table(
            [
                "image set",
                "model",
                "train s",
                "steps",
                "best bits/dim",
                "saved",
                "last",
                "HF ratio",
                "SSIM",
                "FRC px",
                "length ratio",
                "junctions ratio",
                "noise-split PSNR dB",
                "verdict",
            ],
            [
                [
                    x["set"],
                    x["model"],
                    x["train_seconds"],
                    x.get("peer_steps", x.get("steps")),
                    x.get("best_val"),
                    x.get("saved_val"),
                    x.get("last_val"),
                    x["metrics"]["hf_ratio"],
                    x["metrics"]["ssim"],
                    x["metrics"]["frc_resolution_px"],
                    x["metrics"]["ratio_total_length_px"],
                    x["metrics"]["ratio_n_junctions"],
                    _split_psnr(x),
                    x.get("verdict"),
                ]
                for x in rows
            ],
        ),
    ]
    if samples_run:
        cmd = _command(samples_run, "real_data_samples")
        later = f"`benchmarks/real_data.py {cmd}`: the same training as above, run again later"
        have = {(x["set"], x["model"]) for x in samples_run["rows"]}
        earlier = [x for x in r["rows"] if (x["set"], x["model"]) not in have]
        if earlier:
            later += "; the other models' rows from the runs above"
        order = list(dict.fromkeys(x["set"] for x in r["rows"]))
        merged = sorted(
            samples_run["rows"] + earlier,
            key=lambda x: order.index(x["set"]) if x["set"] in order else len(order),
        )
        out.append(realism_section({**samples_run, "rows": merged}, later))
        out.append(content_section(samples_run, f"`benchmarks/real_data.py {cmd}`"))
    else:
        out.append(realism_section(r, "the runs above"))
        out.append(content_section(r, "the runs above"))
    targets = []
    by_set: dict[str, dict[str, dict]] = {}
    for x in rows:
        by_set.setdefault(x["set"], {})[x["model"]] = x
    for name, models in by_set.items():
        lad, base, ca = (models.get(k) for k in ("ladder+dmol", "none+gaussian", PEER))
        if lad is None:
            continue
        m = lad["metrics"]
        checks = [
            (
                "saved model within 0.05 bits/dim of the run's best",
                f"{lad['saved_val'] - lad['best_val']:.3f} (last step {lad['last_val']:.3f})",
                lad["saved_val"] - lad["best_val"] <= 0.05,
            ),
            ("HF ratio >= 0.85", f"{m['hf_ratio']:.3f}", m["hf_ratio"] >= 0.85),
            (
                "length and junctions ratios within 10%",
                f"{m['ratio_total_length_px']:.2f}, "
                + (
                    f"{m['ratio_n_junctions']:.2f}"
                    if m["ratio_n_junctions"] == m["ratio_n_junctions"]
                    else "n/a (no junction in the input)"
                ),
                _off(m) <= 0.1,
            ),
            (
                "training <= 10 min on 2 cores",
                f"{lad['train_seconds']:.0f} s",
                lad["train_seconds"] <= 600,
            ),
        ]
        if base is not None:
            gap = m["ssim"] - base["metrics"]["ssim"]
            checks.append(
                (
                    "SSIM >= baseline + 0.02",
                    f"{m['ssim']:.3f} vs {base['metrics']['ssim']:.3f}",
                    gap >= 0.02,
                )
            )
        if ca is not None:
            c = ca["metrics"]
            checks += [
                (
                    f"HF ratio ahead of {PEER}",
                    f"{m['hf_ratio']:.3f} vs {c['hf_ratio']:.3f}",
                    m["hf_ratio"] > c["hf_ratio"],
                ),
                (
                    f"SSIM ahead of {PEER}",
                    f"{m['ssim']:.3f} vs {c['ssim']:.3f}",
                    m["ssim"] > c["ssim"],
                ),
                (
                    f"length and junctions ratios closer to 1 than {PEER}'s",
                    f"off by {_off(m):.2f} vs {_off(c):.2f}",
                    _off(m) < _off(c),
                ),
            ]
        targets += [[name, what, got, "yes" if ok else "**no**"] for what, got, ok in checks]
    who = f"; {PEER} at equal wall-clock" if any(PEER in v for v in by_set.values()) else ""
    out.append(f"Targets of issue 13 for ladder+dmol{who}:\n")
    out.append(_table(["image set", "target", "measured", "met"], targets))
    return "\n".join(out) + "\n"


def real_variants_section(r: dict) -> str:
    """Variants of the ladder on one real image set: what the CPU config keeps."""
    rows = r["rows"]
    base = {x["steps"]: x for x in rows if x["model"] == "ladder+dmol"}
    table = []
    for x in rows:
        b = base.get(x["steps"])
        extra = [
            o for o in x["overrides"] if o not in ("model.skip_mode=ladder", "likelihood.name=dmol")
        ]
        table.append(
            [
                x["set"],
                x["model"],
                ", ".join(extra) or "(config as is)",
                x["steps"],
                x["train_seconds"],
                x["best_val"],
                x["metrics"]["hf_ratio"],
                None
                if b is None or b is x
                else x["metrics"]["hf_ratio"] - b["metrics"]["hf_ratio"],
                x["metrics"]["ssim"],
                x["metrics"]["ratio_n_junctions"],
                _split_psnr(x),
            ]
        )
    return "\n".join(
        [
            "### Variants on real images: what the CPU config keeps\n",
            f"`benchmarks/real_data.py --config {r['config']} --models ...` (commands in "
            "`results/real_data_variants.json`), scored as above, one seed each. Kept in "
            "`configs/cpu.yaml`: the latent level at full resolution "
            "(`model.full_resolution_latent: 4`) and 1,600 steps, each of which raised the HF "
            "ratio (the full-resolution level by little: the HF column against ladder+dmol); "
            "not kept: a wider 1/2 level with 5 mixture components, which lowered it. "
            + _machine(r),
            _table(
                [
                    "image set",
                    "model",
                    "overrides",
                    "steps",
                    "train s",
                    "best bits/dim",
                    "HF ratio",
                    "HF vs ladder+dmol",
                    "SSIM",
                    "junctions ratio",
                    "noise-split PSNR dB",
                ],
                table,
            ),
        ]
    )


def gui_stall_section(r: dict) -> str:
    """The napari viewer's longest stalls while the Train widget trains."""
    idle, train = r["idle"], r["training"]
    rows = [
        [what, x["seconds"], x["longest_ms"], x["p99_ms"], x["median_ms"], x["over_100ms"]]
        for what, x in (("idle viewer", idle), ("training from the widget", train))
    ]
    return "\n".join(
        [
            "## napari: the viewer while training\n",
            f"`xvfb-run -a benchmarks/gui_stall.py --steps {r['steps']}`: the Train widget trains "
            f"{r['config']} on a layer of {r['image']} ({r['image_shape'][0]}x"
            f"{r['image_shape'][1]}) for {r['steps_done']} steps, {r['validations']} "
            f"validations, {r['training_seconds']} s; a {r['tick_ms']:g} ms timer on the GUI "
            "thread measures how long the event loop was busy elsewhere (a stall). " + _machine(r),
            _table(
                ["", "seconds", "longest stall ms", "p99 ms", "median ms", "stalls > 100 ms"],
                rows,
            ),
            _stall_causes(r.get("gui_calls_over_20ms", [])),
        ]
    )


def _stall_causes(calls: list) -> str:
    """What the GUI thread did for the widget in its calls over 20 ms, longest per kind."""
    if not calls:
        return ""
    longest: dict[str, float] = {}
    for what, _, ms in calls:
        longest[what] = max(longest.get(what, 0.0), ms)
    parts = [f"{what} up to {ms:.0f} ms" for what, ms in sorted(longest.items())]
    return (
        f"The GUI thread's own work for the widget over 20 ms ({len(calls)} calls): "
        + ", ".join(parts)
        + "; the longest stalls fall at validations, where the plots are drawn again and the "
        "preview layer is updated (the first time, added).\n"
    )


PEERS_3D = {"careamics-n2v2-3d": "N2V2", "careamics-lvae-3d": "LVAE (HDN)"}


def stacks3d_peer_section(r: dict) -> str:
    """careamics' N2V2 and LVAE in 3D against microvae's 2D and 3D models on the real
    Z-stacks, at the 2D model's training time (benchmarks/stacks3d.py --peer / --lvae)."""
    rows, about = [], {}
    for name, x in r["sets"].items():
        a, b = x["2d"], x["3d"]
        for key, label in PEERS_3D.items():
            if key not in x:
                continue
            n = x[key]
            about[label] = n["peer"]
            gain = n["gain_db_3d_over_peer"]
            rows.append(
                [
                    name,
                    f"careamics {label} 3D",
                    f"{n['split_psnr_db']:.2f} ({n['peer']['steps']} steps, {n['seconds']:.0f} s)",
                    f"{a['split_psnr_db']:.2f} / {b['split_psnr_db']:.2f}",
                    f"{a['split_psnr_db'] - n['split_psnr_db']:+.2f}",
                    "-" if gain is None else f"{gain:+.2f}" + ("" if gain > 0 else " (missed)"),
                    f"{n['net3d_total_length']:.2f} / {n['net3d_n_junctions']:.2f}",
                    f"{n['hf_ratio']:.2f}",
                ]
            )
    source = f" (the VAEs' rows from results/{r['vaes_from']}.json)" if r.get("vaes_from") else ""
    peers = []
    if "N2V2" in about:
        m = about["N2V2"]
        peers.append(
            f"N2V2 through its public API, with its defaults (UNet of {m['parameters']:,} "
            f"parameters, patches {'x'.join(map(str, m['patch']))}, batch {m['batch']})"
        )
    if "LVAE (HDN)" in about:
        m = about["LVAE (HDN)"]
        peers.append(
            f"the LVAE built in 3D by its factories ({m['parameters']:,} parameters, tiles "
            f"{'x'.join(map(str, m['tile']))} from microvae's 3D sampler, levels halving Y and "
            "X, trained by careamics/runner.py's loop)"
        )
    version = next(iter(about.values()))["careamics"] if about else "?"
    flags = " ".join(f for f, k in (("--peer", "N2V2"), ("--lvae", "LVAE (HDN)")) if k in about)
    return (
        f"## careamics' {' and '.join(about)} in 3D on the real Z-stacks\n\n"
        + _machine(r)
        + f"\n`benchmarks/stacks3d.py {flags}`: careamics {version}: "
        + "; ".join(peers)
        + f"; each trained on the same planes for the 2D model's training time and scored as "
        f"the VAEs on the held-out block{source}. Noise-split PSNR (dB); the peer's 3D network "
        "length / junction ratios and its per-plane HF ratio against the input. Targets "
        "(issue 24): the 3D VAE ahead of N2V2, and compared with the LVAE in 3D.\n\n"
        + _table(
            [
                "stack",
                "peer",
                "peer PSNR",
                "2D / 3D VAE PSNR",
                "2D VAE - peer",
                "3D VAE - peer",
                "peer 3D length / junction ratio",
                "peer HF ratio",
            ],
            rows,
        )
    )


def stacks3d_section(r: dict) -> str:
    """3D against 2D on the real Z-stacks at equal wall-clock (benchmarks/stacks3d.py)."""
    if r.get("vaes_from"):  # the peer's run: the VAEs' rows are those of another section
        return stacks3d_peer_section(r)
    rows = []
    for name, x in r["sets"].items():
        a, b = x["2d"], x["3d"]
        rows.append(
            [
                f"{name} {'x'.join(map(str, x['shape']))}, planes "
                f"{x['held_out_planes'][0]}-{x['held_out_planes'][1]} held out",
                f"{a['split_psnr_db']:.2f} ({a['steps']} steps, {a['seconds']:.0f} s)",
                f"{b['split_psnr_db']:.2f} ({b['steps']} steps, {b['seconds']:.0f} s)",
                f"{x['gain_db']:+.2f}" + ("" if x["target_met"] else " (missed)"),
                f"{a['hf_ratio']:.2f} / {b['hf_ratio']:.2f}",
                f"{a['ratio_total_length_px']:.2f} / {b['ratio_total_length_px']:.2f}",
                f"{a['ratio_n_junctions']:.2f} / {b['ratio_n_junctions']:.2f}",
                f"{a['net3d_total_length']:.2f} / {b['net3d_total_length']:.2f}",
                f"{a['net3d_n_junctions']:.2f} / {b['net3d_n_junctions']:.2f}",
                f"{_fmt_num(a['hf_ratio_z'])} / {_fmt_num(b['hf_ratio_z'])}"
                if "hf_ratio_z" in b
                else "-",
                f"{b['z_strides']}, {b['verdict']}",
            ]
        )
    overrides = next(iter(r["sets"].values()))["3d"].get("overrides") or []
    title = "## 3D against 2D on the real Z-stacks" + (
        f" (3D with {', '.join(overrides)})" if overrides else ""
    )
    return (
        title + "\n\n" + _machine(r) + "\n`benchmarks/stacks3d.py`: per stack, the central block "
        "of planes held out, the planes above and below it training both models; "
        f"`configs/cpu.yaml` ({r['steps_2d']} steps) against `configs/cpu3d.yaml` given the "
        "same training time (steps from a pilot run's seconds per step). Noise-split PSNR "
        "(dB) on the held-out block, one split shared by both models (the 2D model "
        "reconstructs it plane by plane, the 3D model as a volume); HF ratio, network "
        "length and junction ratios per plane against the input, and the 3D network's "
        "length and junction ratios against the input's, and the HF ratio along Z "
        "(`metrics.axial_hf_ratio`; runs before it existed show '-', n/a where the block's "
        "few planes show no signal band along Z) (2D model / 3D model; 1 is a match). "
        f"Targets: 3D >= 2D + {r['target_gain_db']} dB on every set; 3D ratios within 10% "
        "of 1.\n\n"
        + _table(
            [
                "stack",
                "2D PSNR",
                "3D PSNR",
                "3D - 2D (dB)",
                "HF ratio",
                "length ratio",
                "junction ratio",
                "3D length ratio",
                "3D junction ratio",
                "HF ratio along Z",
                "3D z_strides, verdict",
            ],
            rows,
        )
    )


def _coverage_rows(label: str, c: dict) -> list[list[str]]:
    """Coverage rows of one state of the spread (before or after a calibration)."""
    cs, cb = c["coverage_structure"], c["coverage_background"]
    out = []
    for key, what in (("gauss90", "MMSE +- 1.645 sd"), ("cover90", "draws' 5-95% quantiles")):
        if key not in cs:
            continue
        ok = all(0.85 <= x[key] <= 0.95 for x in (cs, cb))
        out.append(
            [
                f"{label}: 90% interval ({what}) covers the truth, structure / background",
                f"{cs[key]:.3f} / {cb[key]:.3f}",
                "0.85-0.95: " + ("met" if ok else "**missed**"),
            ]
        )
    out.append(
        [
            f"{label}: slope of squared error over predicted variance, with the truth",
            f"{c['calibration_truth']['slope']:.2f}",
            "1",
        ]
    )
    return out


def _calibrate_row(label: str, c: dict) -> list[str]:
    b, a = c["before"], c["after"]
    slopes = " / ".join(f"{k:.2f}" for k in b["slopes"])
    return [
        f"`microvae calibrate` on {label}: slopes at dose {' / '.join(map(str, b['fractions']))}"
        " -> full dose; after (fresh split, scale applied)",
        f"{slopes} -> {b['slope']:.2f} +- {b['slope_stderr']:.2f}; after "
        f"{a['slope']:.2f} +- {a['slope_stderr']:.2f}; std x {c['scale']:.3f} "
        f"({c['seconds']:.0f} s)",
        "-",
    ]


def _presence_rows(p: dict, draws: str = "the draws' own") -> list[list[str]]:
    """Branch presence by bucket against the truth, and the intervals holding it, for draws
    ``draws`` (own, or widened by the calibrated scale)."""
    rows = []
    for k in ("high", "middle", "low"):
        x = p[k]
        lo, hi = x["presence"]
        share = "n/a" if x["on_truth"] is None else f"{x['on_truth']:.2f}"
        by_len = "n/a" if x["on_truth_by_length"] is None else f"{x['on_truth_by_length']:.2f}"
        target = {"high": ">= 0.9", "low": "below the high bucket's", "middle": "-"}[k]
        if k == "high" and x["on_truth"] is not None:
            target += ": " + ("met" if x["on_truth"] >= 0.9 else "**missed**")
        if k == "low" and x["on_truth"] is not None and p["high"]["on_truth"] is not None:
            target += ": " + ("met" if x["on_truth"] < p["high"]["on_truth"] else "**missed**")
        rows.append(
            [
                f"{draws}: branches with presence in "
                f"[{lo:g}, {min(hi, 1):g}{']' if hi > 1 else ')'}: "
                "share on the truth's centre lines (by count / by length)",
                f"{share} / {by_len} ({x['branches']} branches)",
                target,
            ]
        )
    held = p["interval_holds_truth"]
    rows.append(
        [
            f"{draws}: 90% interval of network length / junctions holds the truth's",
            f"{held['total_length_px']:.2f} / {held['n_junctions']:.2f} of the images",
            "-",
        ]
    )
    return rows


def calibration_section(r: dict) -> str:
    """Coverage and calibration of posterior samples on synthetic images with ground truth,
    the ground-truth-free calibration against the truth's, microvae calibrate before and
    after, and branch presence against the truth (benchmarks/calibration.py)."""
    h, sp = r["calibration_truth_half_dose"], r["calibration_split"]
    ratio = r["split_over_truth_slope"]
    rows = [
        *_coverage_rows("the model's own spread", r),
        [
            "half-dose reconstruction: slope by the noise split / with the ground truth",
            f"{sp['slope']:.2f} / {h['slope']:.2f} (ratio {ratio:.2f})",
            "ratio within 10% of 1: " + ("met" if abs(ratio - 1) <= 0.1 else "**missed**"),
        ],
        [
            "estimated gain / the generator's, per image",
            ", ".join(map(str, r["estimated_gain_over_true"])),
            "-",
        ],
        [
            "PSNR against the truth: MMSE / single reconstruction (dB)",
            f"{r['psnr_mmse_db']:.2f} / {r['psnr_single_db']:.2f}",
            "-",
        ],
    ]
    if "calibrate" in r:
        rows += [
            _calibrate_row(f"{r['calibrate']['images']} other images", r["calibrate"]),
            *_coverage_rows("calibrated on other images", r["calibrated"]),
            _calibrate_row(f"the {r['images']} held-out images", r["calibrate_self"]),
            *_coverage_rows("calibrated on the held-out images", r["calibrated_self"]),
        ]
    if "presence" in r:
        rows += _presence_rows(r["presence"])
    if "presence_calibrated" in r:
        scale = r["calibrate"]["scale"]
        rows += _presence_rows(r["presence_calibrated"], f"draws widened x {scale:.3f}")
    trained = (
        f"`configs/demo.yaml` trained for {r['steps']} steps on six synthetic 256 x 256 images"
    )
    return (
        "## Posterior samples: coverage and calibration on synthetic images\n\n"
        + _machine(r)
        + f"\n`benchmarks/calibration.py`: {trained}; {r['images']} held-out images of "
        f"{r['side']} x {r['side']} from the same generator, {r['samples']} posterior draws "
        "per tile (`model.posterior`), pixels pooled. The noise split's calibration "
        "(`metrics.split_calibration`, no ground truth) scores the reconstruction of half a "
        "split, so the truth's slope beside it is that of the same half-dose "
        "reconstruction. `microvae calibrate` fits the full-dose scale without ground truth, "
        "on other images of the generator or on the held-out images themselves; the truth "
        "then scores the calibrated spread. The draws' own 5-95% quantiles of 16 draws "
        "cannot cover 90% even for a perfect posterior (they hold a further draw with odds "
        "0.9 x 15/17 = 0.79), hence the Gaussian interval of the calibrated standard "
        "deviation beside them.\n\n" + _table(["what", "value", "target"], rows)
    )


def _mean_db(values: list) -> float:
    """The mean of the planes' dB values that exist (a plane's PSNR is None where the error
    estimate was not positive)."""
    kept = [v for v in values if v is not None]
    return float(np.mean(kept)) if kept else float("nan")


def real_calibration_section(r: dict) -> str:
    """Posterior samples on the real sets without ground truth: MMSE against single, the
    calibration before and after microvae calibrate, N2V2 (benchmarks/real_calibration.py)."""
    rows = []
    for x in r["rows"]:
        single, mmse = (_mean_db(x[k]) for k in ("psnr_single_db", "psnr_mmse_db"))
        c = x["calibrate"]
        b, a = c["before"], c["after"]
        half = b["fractions"].index(0.5)
        after_ok = 0.8 <= a["slope"] <= 1.25
        n2v2 = x.get("n2v2")
        peer = _mean_db(n2v2["psnr_db"]) if n2v2 else None
        rows.append(
            [
                x["set"],
                f"{x['train_seconds']:.0f}",
                f"{single:.2f}",
                f"{mmse:.2f} ({mmse - single:+.2f})",
                "n/a" if peer is None else f"{peer:.2f} ({mmse - peer:+.2f})",
                f"{b['slopes'][half]:.2f}",
                f"{b['slope']:.2f} +- {b['slope_stderr']:.2f}",
                f"{c['scale']:.2f}",
                f"{a['slope']:.2f} +- {a['slope_stderr']:.2f}"
                + ("" if after_ok else " **missed**"),
                f"{x['seconds_per_draw_per_megapixel']:.2f}",
            ]
        )
    header = [
        "set",
        "train s",
        "single dB",
        "MMSE dB (vs single)",
        "N2V2 dB (MMSE ahead)",
        "slope at half dose",
        "slope at full dose",
        "std x",
        "after (target 0.8-1.25)",
        "s per draw per Mpx",
    ]
    return (
        "## Posterior samples on the real images: calibration, MMSE and N2V2\n\n"
        + _machine(r)
        + f"\n`benchmarks/real_calibration.py`: per set, `configs/cpu.yaml` ({r['steps']} "
        "steps, the split within each file) as in the real-data section, scored on the "
        "held-out planes with most signal without ground truth. Noise-split PSNR (dB, one split "
        f"per plane, mean over planes) of the single reconstruction and of the MMSE of "
        f"{r['samples']} draws (targets: MMSE >= single + 0.5 dB; MMSE ahead of N2V2 by >= 1 "
        "dB); careamics 0.3.5's N2V2 (its defaults, 64 x 64 patches) trained on the same "
        "training planes for the seconds microvae's training took. `microvae calibrate` "
        "(`report.calibrate_arrays`) on the scored planes: the slope of squared error over "
        "predicted variance at 0.25, 0.35 and 0.5 of the dose extrapolated to the full dose "
        "(with its standard error), and after, on a fresh split with the fitted scale "
        "(target 0.8-1.25).\n\n" + _table(header, rows)
    )


def synthetic3d_section(r: dict) -> str:
    """3D against 2D on synthetic stacks against the ground truth (benchmarks/synthetic3d.py)."""
    rows = []
    for name, x in (("input", r["input"]), ("2D", r["2d"]), ("3D", r["3d"])):
        psnr = r["input_psnr_db"] if name == "input" else x["psnr_db"]
        how = "" if name == "input" else f"{x['steps']} steps, {x['seconds']:.0f} s"
        rows.append(
            [
                name,
                how,
                f"{psnr:.2f}",
                f"{x['net3d_total_length']:.2f}",
                f"{x['net3d_n_junctions']:.2f}",
                f"{x['net3d_volume']:.2f}",
                _fmt_num(x["hf_ratio_z"]),
            ]
        )
    missed = "" if r["target_met"] else " (missed)"
    return (
        "## 3D against 2D on synthetic Z-stacks, against the ground truth\n\n"
        + _machine(r)
        + "\n`benchmarks/synthetic3d.py`: the generator's optics and camera, "
        f"{' x '.join(map(str, r['shape']))} stacks at {r['voxel_um']['Z']} um steps and "
        f"{r['voxel_um']['X'] * 1000:.0f} nm pixels; {len(r['train_seeds'])} stacks train "
        "both models, another is the test. `configs/cpu.yaml` against `configs/cpu3d.yaml` "
        "given the same training time. PSNR (dB) against the ground truth over the test stack; "
        "the 3D network's length, junction and volume ratios and the HF ratio along Z "
        f"against the truth's (1 = same). Target: 3D >= 2D + {r['target_gain_db']} dB, "
        f"ratios within 10% of 1. Measured: {r['gain_db']:+.2f} dB{missed}.\n\n"
        + _table(
            ["", "training", "PSNR", "3D length", "3D junctions", "3D volume", "HF ratio Z"],
            rows,
        )
        + "\n"
    )


def _fmt_num(v) -> str:
    return "n/a" if v is None or v != v else f"{v:.2f}"


def z_diagnosis_section(r: dict) -> str:
    """What Z can give, and how fast 3D variants learn (benchmarks/z_diagnosis.py)."""
    wiener = [
        [
            f"{w['z_step_um']} um, seed {w['seed']}",
            f"{w['input_db']:.2f}",
            f"{w['wiener_2d_db']:.2f}",
            f"{w['wiener_3d_db']:.2f}",
            f"{w['wiener_3d_db'] - w['wiener_2d_db']:+.2f}",
        ]
        for w in r["wiener"]
    ]
    text = (
        "## Why 3D trails 2D: what Z can give, and how fast 3D variants learn\n\n"
        + _machine(r)
        + "\n`benchmarks/z_diagnosis.py`. Synthetic ZYX stacks (32 x 192 x 192, the "
        "generator's optics: axial PSF sigma about one 0.2 um plane), PSNR (dB) against the "
        "ground truth of the oracle Wiener filter (gains from the true spectra) per plane and "
        "over the volume: the share of the error that pooling planes can remove, for a linear "
        "estimate.\n\n"
        + _table(["Z step, stack", "input", "Wiener per plane", "Wiener 3D", "3D - 2D"], wiener)
    )
    if "gaussian" in r:
        rows = [
            [
                name,
                f"{g['best_xy_db']:.2f} (sigma {g['best_xy_sigma_z_xy'][1]})",
                f"{g['best_xyz_db']:.2f} (sigma Z {g['best_xyz_sigma_z_xy'][0]}, "
                f"XY {g['best_xyz_sigma_z_xy'][1]})",
            ]
            for name, g in r["gaussian"].items()
        ]
        text += (
            "\n\nThe real stacks' held-out blocks (as in stacks3d.py), the best Gaussian blur "
            "by noise-split PSNR (dB), in XY alone and in XY and Z (sigmas in pixels and "
            "planes):\n\n" + _table(["stack", "best XY blur", "best XYZ blur"], rows)
        )
    if "variants" in r:
        rows = [
            [
                name,
                f"{v['split_psnr_db']:.2f}",
                f"{v['rmse_to_input']:.1f}",
                f"{v['hf_ratio']:.2f}",
                f"{v['seconds']:.0f}",
                str(v["verdict"]),
            ]
            for name, v in r["variants"].items()
        ]
        text += (
            f"\n\nMitoGraphTest001, every variant trained for {r['steps']} steps (one seed "
            "each: a rerun repeats the numbers, but the spread between seeds was not measured, "
            "so a difference of a dB or two may not hold), "
            "scored on the held-out block: noise-split PSNR (dB), RMSE to the noisy input "
            "(ADU), HF ratio, training seconds (data preparation and validation included).\n\n"
            + _table(
                ["variant", "split PSNR", "RMSE to input", "HF ratio", "seconds", "verdict"], rows
            )
        )
    return text + "\n"


def _if_run(name: str, section) -> list[str]:
    """``section`` of results/NAME.json, where that run exists."""
    r = _load(name)
    return [section(r)] if r else []


def render() -> str:
    """BENCHMARKS.md's text from the results now in results/."""
    parts = [
        "# Benchmarks\n",
        "Generated by `python benchmarks/report.py` from `benchmarks/results/*.json`; each "
        "section names the script that measured it and the machine it ran on. Targets that "
        "are missed say so.\n",
    ]
    for name in ("fidelity", "fidelity_cuda", "fidelity_quick"):
        r = _load(name)
        if r:
            parts.append(fidelity_section(r))
    real = _load("real_data")
    if real:
        parts.append(real_data_section(real, _load("real_data_samples")))
    parts += _if_run("real_data_variants", real_variants_section)
    parts += _if_run("real_calibration", real_calibration_section)
    parts += [stacks3d_section(stacks) for stacks in _runs("stacks3d")]
    parts += _if_run("synthetic3d", synthetic3d_section)
    parts += _if_run("z_diagnosis", z_diagnosis_section)
    parts += _if_run("calibration", calibration_section)
    floors = _runs("noise_floor")
    if floors:
        parts.append(noise_floor_section(floors, _runs("fidelity")))
    parts.append(speed_section())
    stall = _load("gui_stall")
    if stall:
        parts.append(gui_stall_section(stall))
    return "\n".join(parts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    args.out.write_text(render())
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()
