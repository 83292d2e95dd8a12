"""Write BENCHMARKS.md from benchmarks/results/*.json: one command, no numbers typed by hand.

python benchmarks/report.py
"""

from __future__ import annotations

import json
from pathlib import Path

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


def _machine(r: dict) -> str:
    m = r["machine"]
    where = m.get("gpu") or f"{m['cpu']}, {m['cores']} cores, {m['torch_threads']} torch threads"
    return f"*{r['date']}, {where}, torch {m['torch']}.*\n"


def fidelity_section(r: dict) -> str:
    out = [
        f"## Fine-structure fidelity ({r['mode']} mode)\n",
        f"`benchmarks/fidelity.py{' --quick' if r['mode'] == 'quick' else ''}`: five models "
        f"trained {r['steps']} steps each ({r['config']}) on {r['train_images']} synthetic "
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
                ],
            )
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


def main() -> None:
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
    parts.append(speed_section())
    OUT.write_text("\n".join(parts))
    print(f"written: {OUT}")


if __name__ == "__main__":
    main()
