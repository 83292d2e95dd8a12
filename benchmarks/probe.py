"""Probe microvae as a careless user and as an attacker would: bad input, misleading situations,
interrupted and tampered runs. Each case runs the command line (a fresh process, as a user
would) and prints one line: whether microvae did the right thing, its exit status and what it
said. Results: results/probe.json; ``--docs`` rewrites the reliability table of the docs
(docs/reliability.md, which the README links) from them, between its ``probe:start`` and
``probe:end`` markers.

    python benchmarks/probe.py             # ~3 min on 2 CPU cores (two tiny models trained)
    python benchmarks/probe.py --docs

The right thing is, per case: ``refused`` (a non-zero exit with one line that names the file
and the fix), ``runs`` (exit 0, the result correct, anything odd said), or ``said`` (exit 0 and
the situation said in the summary or a note).
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psutil
import tifffile
import yaml
from _results import RESULTS, machine, write_result

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "reliability.md"
START, END = "<!-- probe:start -->", "<!-- probe:end -->"
_NOISE = re.compile(r"trained on uint16|the training data's reached|^\s*$|it/s\]|\d+%\|")


@dataclass
class Outcome:
    status: int
    text: str


def cli(*args, cwd: Path, timeout: float = 300) -> Outcome:
    """``microvae ARGS`` in a fresh process: its exit status and what it printed."""
    cmd = [sys.executable, "-m", "microvae.cli.main", *map(str, args)]
    p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    return Outcome(p.returncode, p.stdout + p.stderr)


def said(text: str, work: Path, limit: int = 2) -> str:
    """The lines that matter of what a command printed (errors first, else the last ones),
    with the probe's own folder left out of paths."""
    text = text.replace(f"{work}/", "").replace(str(work), ".")
    lines = [ln.strip() for ln in text.splitlines() if not _NOISE.search(ln)]
    lines = [ln for ln in lines if not ln.startswith(("Traceback", "File ", "metrics: "))]
    errors = [ln for ln in lines if "error" in ln.lower()]
    picked = errors[:limit] if errors else lines[-limit:]
    return " / ".join(picked)[:400]


@dataclass
class Case:
    group: str
    name: str
    expect: str  # refused | runs | said
    run: Callable[[], Outcome]
    check: Callable[[Outcome], bool] = lambda o: True  # besides the exit status


def _stack(path: Path, shape=(2, 48, 48), seed=0) -> Path:
    from microvae.io import write_image
    from microvae.synthetic import generate

    write_image(
        path, generate(shape=shape, seed=seed).image, axes="ZYX" if len(shape) == 3 else "YX"
    )
    return path


def _train(work: Path, name: str, extra: list[str]) -> Path:
    sys.path.insert(0, str(ROOT))
    try:
        from conftest import TINY  # the test suite's tiny model: seconds on a CPU
    finally:
        sys.path.remove(str(ROOT))
    out = cli(
        "train",
        ROOT / "configs" / "demo.yaml",
        "--data",
        work / "synth",
        "--out",
        work / name,
        "--no-progress",
        *[a for s in TINY + extra for a in ("--set", s)],
        cwd=work,
    )
    if out.status:
        raise SystemExit(f"probe: training the tiny model failed:\n{out.text}")
    return work / name / "model.pt"


def cases(work: Path) -> list[Case]:
    from microvae.io import ZarrPlaneWriter, write_image
    from microvae.synthetic import SynthParams, write_synthetic_set

    write_synthetic_set(work / "synth", SynthParams(shape=(96, 96)), n=3, seed=0, progress=False)
    model = _train(work, "run", [])
    other = _train(work, "other", ["train.seed=1"])
    bad = work / "bad"
    bad.mkdir()
    rng = np.random.default_rng(0)

    def image(name: str, data) -> Path:
        tifffile.imwrite(bad / name, data)
        return bad / name

    def predict(path, *extra, out="out") -> Callable[[], Outcome]:
        return lambda: cli(
            "predict", model, path, "--out", work / out, "--no-progress", *extra, cwd=work
        )

    def train(config, data, *extra) -> Callable[[], Outcome]:
        return lambda: cli(
            "train", config, "--data", data, *extra, "--out", work / "t", "--no-progress", cwd=work
        )

    nan = rng.normal(100, 10, (48, 48)).astype(np.float32)
    nan[3, 4] = np.nan
    good = _stack(work / "good.tif")
    cut = bad / "cut.tif"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    (work / "typo.yaml").write_text("data:\n  tile_sise: 32\n")
    (work / "broken.yaml").write_text("model: [unclosed\n")
    flat = work / "flat"
    flat.mkdir()
    for i in range(3):  # large enough to split: the constancy is what is refused
        write_image(flat / f"f{i}.tif", np.full((256, 256), 300, np.uint16), axes="YX")
    demo = ROOT / "configs" / "demo.yaml"
    ok_run = lambda o: o.status == 0 and "1 processed" in o.text  # noqa: E731
    earlier = [
        Case("bad input", "NaN values", "refused", predict(image("nan.tif", nan))),
        Case(
            "bad input",
            "complex values",
            "refused",
            predict(image("complex.tif", np.ones((48, 48), np.complex64))),
        ),
        Case(
            "bad input",
            "bool values",
            "refused",
            predict(image("bool.tif", np.ones((48, 48), bool))),
        ),
        Case(
            "bad input",
            "RGB without --channel",
            "refused",
            predict(image("rgb.tif", rng.integers(0, 255, (48, 48, 3), dtype=np.uint8))),
        ),
        Case(
            "bad input",
            "5x5 image",
            "runs",
            predict(
                image("small.tif", rng.integers(100, 3000, (5, 5)).astype(np.uint16)),
                out="out_small",
            ),
            ok_run,
        ),
        Case(
            "bad input",
            "constant image",
            "runs",
            predict(image("const.tif", np.full((48, 48), 500, np.uint16)), out="out_const"),
            lambda o: ok_run(o) and "no data range" in o.text,
        ),
        Case(
            "bad input",
            "negative floats",
            "runs",
            predict(
                image("neg.tif", rng.normal(-50, 10, (48, 48)).astype(np.float32)), out="out_neg"
            ),
            ok_run,
        ),
        Case(
            "bad input",
            "huge uint32",
            "runs",
            predict(
                image("u32.tif", rng.integers(0, 2**32 - 1, (48, 48), dtype=np.uint32)),
                out="out_u32",
            ),
            ok_run,
        ),
        Case(
            "bad input",
            "config typo",
            "refused",
            train(work / "typo.yaml", work / "synth"),
            lambda o: "did you mean data.tile_size" in o.text,
        ),
        Case(
            "bad input",
            "--set typo",
            "refused",
            train(demo, work / "synth", "--set", "objective.bta=2"),
            lambda o: "did you mean objective.beta" in o.text,
        ),
        Case(
            "bad input",
            "tile not divisible",
            "refused",
            train(demo, work / "synth", "--set", "data.tile_size=36"),
        ),
        Case("bad input", "broken YAML", "refused", train(work / "broken.yaml", work / "synth")),
        Case("bad input", "missing config", "refused", train(work / "none.yaml", work / "synth")),
        Case(
            "bad input",
            "constant training data",
            "refused",
            train(demo, flat),
            lambda o: "every training image is constant" in o.text,
        ),
        Case("bad input", "truncated file", "refused", predict(cut)),
    ]

    # -- issue 22 ------------------------------------------------------------------------
    beside = work / "beside"
    beside.mkdir()
    for i in range(3):
        _stack(beside / f"s{i}.tif", seed=i)

    def outputs_beside() -> Outcome:
        cli("predict", model, beside, "--out", beside, "--no-progress", cwd=work)
        return cli("predict", model, beside, "--out", beside, "--no-progress", cwd=work)

    resumed = work / "resumed"
    resumed.mkdir()
    _stack(resumed / "r.tif")

    def resume(*extra, touch=False) -> Callable[[], Outcome]:
        def run() -> Outcome:
            cli("predict", model, resumed, "--out", work / "r_out", "--no-progress", cwd=work)
            if touch:
                os.utime(resumed / "r.tif", ns=(1, 1))
            return cli(
                "predict",
                *extra,
                resumed,
                "--out",
                work / "r_out",
                "--resume",
                "--no-progress",
                cwd=work,
            )

        return run

    zarr_in = work / "lost.ome.zarr"
    w = ZarrPlaneWriter(zarr_in, shape=(3, 48, 48), dtype=np.uint16, axes="ZYX")
    for k in range(3):
        w.write(k, rng.integers(100, 3000, (48, 48)).astype(np.uint16))
    w.close()
    (zarr_in / "0" / "c" / "1" / "0" / "0").unlink()

    png = work / "image.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))

    def unused_level() -> Outcome:
        code = (
            "import torch\n"
            "from microvae.model import LikelihoodConfig, ModelConfig, build_vae\n"
            "from microvae.model.collapse import collapse_report\n"
            "torch.manual_seed(0)\n"
            "vae = build_vae(ModelConfig(levels=2, base_channels=4, max_channels=16, "
            "latent_channels=3, tile_size=32, full_resolution_latent=2), "
            "LikelihoodConfig(name='laplace'), bit_depth=8)\n"
            "last = vae.td[-1].posterior[-1]\n"
            "torch.nn.init.zeros_(last.weight); torch.nn.init.zeros_(last.bias)\n"
            "g = torch.Generator().manual_seed(0)\n"
            "x = [torch.rand(4, 1, 32, 32, generator=g) * 2 - 1 for _ in range(2)]\n"
            "print('latent space', collapse_report(vae, x).summary())\n"
        )
        p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        return Outcome(p.returncode, p.stdout + p.stderr)

    package = work / "pkg.zip"
    cli("export", model, "--bioimageio", package, cwd=work)

    def altered() -> Outcome:
        out = work / "altered.zip"
        with zipfile.ZipFile(package) as src, zipfile.ZipFile(out, "w") as dst:
            for n in src.namelist():
                data = src.read(n)
                dst.writestr(n, data[:-8] + bytes(8) if n == "weights.pt" else data)
        return cli("info", out, cwd=work)

    def escaping() -> Outcome:
        folder = work / "pkgdir"
        with zipfile.ZipFile(package) as z:
            z.extractall(folder)
        rdf = yaml.safe_load((folder / "rdf.yaml").read_text())
        rdf["weights"]["pytorch_state_dict"]["source"] = "/etc/passwd"
        (folder / "rdf.yaml").write_text(yaml.safe_dump(rdf))
        return cli("info", folder, cwd=work)

    def stale() -> Outcome:
        from microvae.io.atomic import _host

        gone = subprocess.run(
            [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
        )
        (work / "st_out").mkdir()
        (work / "st_out" / f".good_recon.tif.{gone.stdout.strip()}@{_host()}.x1.part").write_bytes(
            b"x"
        )
        return cli("predict", model, good, "--out", work / "st_out", "--no-progress", cwd=work)

    def worker_lost() -> Outcome:
        data = work / "long"
        data.mkdir()
        for i in range(2):
            _stack(data / f"l{i}.tif", shape=(60, 64, 64), seed=i)
        out = work / "dask_out"
        cmd = [
            sys.executable,
            "-m",
            "microvae.cli.main",
            "predict",
            str(model),
            str(data),
            "--out",
            str(out),
            "--no-progress",
            "--dask",
            "local:2",
        ]
        p = subprocess.Popen(
            cmd, cwd=work, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        deadline = time.time() + 120
        while not list((out / ".microvae-tasks").glob("*")) and time.time() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)  # the workers are in their first files
        workers = [
            c for c in psutil.Process(p.pid).children() if "spawn_main" in " ".join(c.cmdline())
        ]
        if workers:
            os.kill(workers[0].pid, signal.SIGKILL)
        text, _ = p.communicate(timeout=300)
        return Outcome(p.returncode, text)

    def unfinished() -> Outcome:
        path = work / "part_recon.ome.zarr"
        w = ZarrPlaneWriter(path, shape=(4, 32, 32), dtype=np.uint16, axes="ZYX")
        w.write(0, np.ones((32, 32), np.uint16))
        w.abort()
        return cli("inspect", path, cwd=work)

    issue = [
        Case(
            "issue 22",
            "1. --out beside the inputs, run twice",
            "said",
            outputs_beside,
            lambda o: "3 processed" in o.text and "left out of the inputs" in o.text,
        ),
        Case(
            "issue 22",
            "2. --resume with another model",
            "refused",
            resume(other),
            lambda o: "another model" in o.text and "--overwrite" in o.text,
        ),
        Case(
            "issue 22",
            "2. --resume with other settings",
            "refused",
            resume(model, "--tile-size", "16"),
            lambda o: "tile_size" in o.text,
        ),
        Case(
            "issue 22",
            "2. --resume after the input changed",
            "refused",
            resume(model, touch=True),
            lambda o: "input file was changed" in o.text,
        ),
        Case(
            "issue 22",
            "3. OME-Zarr chunk missing",
            "refused",
            lambda: cli(
                "predict", model, zarr_in, "--out", work / "z_out", "--no-progress", cwd=work
            ),
            lambda o: "has no chunk 0/c/1/0/0" in o.text,
        ),
        Case(
            "issue 22",
            "6. a TIFF where the model goes (info)",
            "refused",
            lambda: cli("info", good, cwd=work),
            lambda o: "a TIFF image, not a microvae model" in o.text,
        ),
        Case(
            "issue 22",
            "6. a PNG where the model goes (predict)",
            "refused",
            lambda: cli("predict", png, good, "--out", work / "p_out", cwd=work),
            lambda o: "a PNG image" in o.text,
        ),
        Case(
            "issue 22",
            "7. typo in the file, with --set flags",
            "refused",
            train(work / "typo.yaml", work / "synth", "--set", "train.lr=1e-3"),
            lambda o: "typo.yaml: data.tile_sise" in o.text,
        ),
        Case(
            "issue 22",
            "8. unused full-resolution level",
            "said",
            unused_level,
            lambda o: "healthy" in o.text and "full-resolution level is unused" in o.text,
        ),
        Case(
            "issue 22",
            "9. bioimage.io weights altered",
            "refused",
            altered,
            lambda o: "weights.pt does not match its sha256" in o.text,
        ),
        Case(
            "issue 22",
            "9. package pointing outside itself",
            "refused",
            escaping,
            lambda o: "outside the package" in o.text,
        ),
        Case(
            "issue 22",
            "10. temporaries of a killed run",
            "said",
            stale,
            lambda o: "1 temporary of a stopped run removed" in o.text,
        ),
        Case(
            "issue 22",
            "11. a Dask worker killed mid-run",
            "said",
            worker_lost,
            # said once, and not followed by the resource tracker's warning at exit
            lambda o: "worker lost" in o.text and "leaked semaphore" not in o.text,
        ),
        Case(
            "issue 22",
            "12. an unfinished OME-Zarr output",
            "said",
            unfinished,
            lambda o: "UNFINISHED" in o.text,
        ),
    ]
    return earlier + issue


def right(case: Case, out: Outcome) -> bool:
    status_ok = out.status != 0 if case.expect == "refused" else out.status == 0
    return status_ok and case.check(out)


def table(rows: list[dict]) -> str:
    lines = ["| case | microvae | exit | what it says |", "| --- | --- | --- | --- |"]
    for r in rows:
        text = r["message"].replace("|", "\\|")
        mark = r["expect"] if r["right"] else f"**WRONG** (expected: {r['expect']})"
        lines.append(f"| {r['name']} | {mark} | {r['status']} | {text} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--docs", action="store_true", help="rewrite the table of docs/reliability.md")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="microvae-probe-") as tmp:
        work = Path(tmp)
        for case in cases(work):
            out = case.run()
            ok = right(case, out)
            message = said(out.text, work)
            rows.append(
                {
                    "group": case.group,
                    "name": case.name,
                    "expect": case.expect,
                    "status": out.status,
                    "right": ok,
                    "message": message,
                }
            )
            print(
                f"[{'ok' if ok else 'WRONG'}] {case.name}: exit {out.status}: {message}",
                flush=True,
            )
    n = sum(r["right"] for r in rows)
    print(f"{n} of {len(rows)} cases handled right")
    write_result("probe", {"machine": machine(), "cases": rows, "right": n, "total": len(rows)})
    if args.docs:
        text = PAGE.read_text()
        head, rest = text.split(START, 1)
        _, tail = rest.split(END, 1)
        PAGE.write_text(f"{head}{START}\n{table(rows)}\n{END}{tail}")
        print(f"{PAGE}: reliability table rewritten ({RESULTS / 'probe.json'})")


if __name__ == "__main__":
    main()
