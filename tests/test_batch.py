"""Batch processing of stacks: outputs per file, failures, interruption and resume, memory."""

from __future__ import annotations

import csv
import os
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import tifffile

from microvae.api import process_stacks
from microvae.cli.main import main
from microvae.errors import MicrovaeError
from microvae.inference import TrainedModel, load_model
from microvae.io import ZarrPlaneWriter, read_image, write_image
from microvae.synthetic import generate


@pytest.fixture(scope="module")
def model_path(tiny_model_path) -> Path:
    return tiny_model_path


def _inputs(folder: Path) -> dict[str, tuple]:
    """Files of every kind predict must take: name -> (axes, shape, dtype, options)."""
    s = generate(shape=(3, 40, 52), seed=1)
    px = {"Z": 0.2, "Y": 0.065, "X": 0.065}
    write_image(folder / "zyx16.tif", s.image, axes="ZYX", pixel_size=px)
    rgb = np.stack([s.image[0], s.image[1], s.image[2]], axis=-1)
    tifffile.imwrite(folder / "rgb16.tif", rgb, photometric="rgb")
    write_image(folder / "yx8.tif", (s.image[0] // 16).astype(np.uint8), axes="YX")
    write_image(folder / "float.tif", s.image[1].astype(np.float32), axes="YX")
    return {
        "zyx16": ("ZYX", (3, 40, 52), np.uint16),
        "yx8": ("YX", (40, 52), np.uint8),
        "float": ("YX", (40, 52), np.float32),
    }


def test_outputs_for_every_kind_of_file(tmp_path, model_path):
    data, out = tmp_path / "in", tmp_path / "out"
    data.mkdir()
    expected = _inputs(data)
    model = load_model(model_path)
    summary = process_stacks(
        model,
        data,
        out,
        outputs=["reconstruction", "embedding", "error", "latents"],
        progress=False,
    )
    # the RGB file needs a channel: it fails alone, clearly
    assert [r.path.name for r in summary.failed] == ["rgb16.tif"]
    assert "3 samples; pass channel=0..2" in summary.failed[0].message
    for stem, (axes, shape, dtype) in expected.items():
        rec = read_image(out / f"{stem}_recon.tif")
        assert (rec.axes, rec.shape, rec.dtype) == (axes, shape, np.dtype(dtype)), stem
        err = read_image(out / f"{stem}_error.tif")
        assert err.shape == shape and err.dtype == np.float32
        src = read_image(data / f"{stem}.tif").data.astype(np.float32)
        np.testing.assert_allclose(err.data, np.abs(src - rec.data.astype(np.float32)))
        emb = np.load(out / f"{stem}_embedding.npz")
        planes = shape[0] if axes == "ZYX" else 1
        levels = sorted(out.glob(f"{stem}_latents_level*.npy"))
        maps = [np.load(f) for f in levels]
        assert maps[0].shape[:2] == (planes, model.config.model.latents_per_level()[-1])
        width = 2 * sum(m.shape[1] for m in maps)
        assert emb["embedding"].shape == (planes, width) and str(emb["plane_axes"]) == axes[:-2]
        # per level: the spatial mean, then the spatial standard deviation of every channel
        expected = np.concatenate([f(m, axis=(2, 3)) for m in maps for f in (np.mean, np.std)], 1)
        np.testing.assert_allclose(emb["embedding"], expected, rtol=1e-4, atol=1e-6)
    assert read_image(out / "zyx16_recon.tif").pixel_size == pytest.approx(
        {"Z": 0.2, "Y": 0.065, "X": 0.065}
    )
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    assert {r["file"] for r in rows} == {"zyx16.tif", "yx8.tif", "float.tif"}
    assert [r["plane"] for r in rows if r["file"] == "zyx16.tif"] == ["0", "1", "2", "all"]
    # the numbers, recomputed from the files written
    src = read_image(data / "zyx16.tif").data.astype(float)
    rec = read_image(out / "zyx16_recon.tif").data.astype(float)
    for z, row in enumerate(r for r in rows if r["file"] == "zyx16.tif" and r["plane"] != "all"):
        mse = np.mean((src[z] - rec[z]) ** 2)
        rng = src[z].max() - src[z].min()
        assert float(row["mse"]) == pytest.approx(mse)
        assert float(row["psnr_db"]) == pytest.approx(10 * np.log10(rng**2 / mse))
        assert -1 <= float(row["ssim"]) <= 1
    # the RGB file with a channel chosen
    s2 = process_stacks(model, data / "rgb16.tif", out, channel=2, progress=False)
    assert not s2.failed and read_image(out / "rgb16_recon.tif").axes == "YX"
    assert not [p for p in os.listdir(out) if p.startswith(".")]  # no scratch or temp files


def test_cli_reports_failures_and_exit_status(tmp_path, model_path, capsys):
    data = tmp_path / "in"
    data.mkdir()
    write_image(data / "good.tif", generate(shape=(48, 48), seed=0).image, axes="YX")
    (data / "broken.tif").write_bytes(b"II*\x00" + b"\x00" * 20)
    good = (data / "good.tif").read_bytes()
    (data / "cut.tif").write_bytes(good[: len(good) // 2])
    code = main(
        ["predict", str(model_path), str(data), "--out", str(tmp_path / "out"), "--no-progress"]
    )
    out = capsys.readouterr()
    assert code == 1
    assert "1 processed, 0 already complete (skipped), 2 failed" in out.out
    assert "broken.tif" in out.out and "cut.tif" in out.out
    assert (tmp_path / "out" / "good_recon.tif").is_file()
    assert not (tmp_path / "out" / "cut_recon.tif").exists()


def test_unwritable_output_folder(tmp_path, model_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(MicrovaeError, match="cannot write there"):
        process_stacks(load_model(model_path), tmp_path, blocker / "out", progress=False)


def test_interrupt_then_resume(tmp_path, model_path, monkeypatch):
    data, out = tmp_path / "in", tmp_path / "out"
    data.mkdir()
    for i in range(3):
        write_image(data / f"s{i}.tif", generate(shape=(4, 40, 40), seed=i).image, axes="ZYX")
    model = load_model(model_path)
    calls = {"n": 0}
    original = TrainedModel.plane_steps

    def interrupted(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 6:  # the second plane of the second file
            raise KeyboardInterrupt
        return (yield from original(self, *args, **kwargs))

    monkeypatch.setattr(TrainedModel, "plane_steps", interrupted)
    with pytest.raises(KeyboardInterrupt):
        process_stacks(model, data, out, progress=False)
    left = sorted(os.listdir(out))
    # nothing partial; the record of the run is written before any output
    assert left == ["microvae-predict.json", "s0_embedding.npz", "s0_metrics.csv", "s0_recon.tif"]
    monkeypatch.setattr(TrainedModel, "plane_steps", original)
    summary = process_stacks(model, data, out, resume=True, progress=False)
    assert [r.status for r in summary.results] == ["skipped", "done", "done"]
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    assert [r["file"] for r in rows].count("s0.tif") == 5  # 4 planes + "all", kept on resume
    assert all((out / f"s{i}_recon.tif").is_file() for i in range(3))


def _peak_predict(tmp_path, model, planes, side=256, fmt="tiff"):
    rng = np.random.default_rng(0)
    planes_in = (rng.integers(100, 3000, (side, side), dtype=np.uint16) for _ in range(planes))
    shape = (planes, side, side)
    if fmt == "tiff":
        stack = tmp_path / f"big{planes}.tif"
        write_image(stack, planes_in, axes="ZYX", shape=shape, dtype=np.uint16)
    else:  # OME-Zarr in and out
        stack = tmp_path / f"big{planes}.ome.zarr"
        w = ZarrPlaneWriter(stack, shape=shape, dtype=np.uint16, axes="ZYX")
        for k, plane in enumerate(planes_in):
            w.write(k, plane)
        w.close()
    tracemalloc.start()
    try:
        process_stacks(
            model,
            stack,
            tmp_path / "out",
            outputs=["reconstruction", "embedding"],
            tile_size=128,
            progress=False,
            format=fmt,
        )
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("fmt", ["tiff", "ome-zarr"])
def test_memory_does_not_grow_with_the_stack(tmp_path, model_path, fmt):
    model = load_model(model_path)
    short = _peak_predict(tmp_path, model, 20, fmt=fmt)
    long = _peak_predict(tmp_path, model, 80, fmt=fmt)
    plane64 = 256 * 256 * 8  # SSIM works on float64 copies of a plane
    assert long < 1.15 * short + plane64, (short, long)
    assert long < 24 * plane64  # the 80-plane stack alone would be 20 such planes of uint16
    name = "big80_recon.tif" if fmt == "tiff" else "big80_recon.ome.zarr"
    assert read_image(tmp_path / "out" / name).shape == (80, 256, 256)


@pytest.mark.real_data
def test_real_files(tmp_path, model_path, real_data):
    model = load_model(model_path)
    out = tmp_path / "out"
    s = process_stacks(model, real_data / "hela-cells.tif", out, channel=1, progress=False)
    assert not s.failed
    rec = read_image(out / "hela-cells_recon.tif")
    assert rec.shape == (512, 672) and rec.dtype == np.uint16
    assert rec.pixel_size == pytest.approx({"X": 0.0515, "Y": 0.0515}, rel=2e-3)
    s = process_stacks(model, real_data / "123002002001.tif", out, progress=False)
    rec = read_image(out / "123002002001_recon.tif")
    assert rec.axes == "ZYX" and rec.shape == (33, 157, 115) and rec.dtype == np.uint8


def test_unnamed_stack_axis_is_processed_with_a_warning(tmp_path, model_path, caplog):
    data = tmp_path / "pages.tif"
    with tifffile.TiffWriter(data) as tw:  # bare pages: the file does not say Z, T or C
        for z in range(2):
            tw.write(generate(shape=(40, 40), seed=z).image, metadata=None)
    with caplog.at_level("WARNING", logger="microvae"):
        summary = process_stacks(load_model(model_path), data, tmp_path / "out", progress=False)
    assert not summary.failed
    assert "does not name its stack axis (axes QYX)" in caplog.text and "--axes" in caplog.text
    assert read_image(tmp_path / "out" / "pages_recon.tif").axes == "QYX"
    summary = process_stacks(
        load_model(model_path), data, tmp_path / "out2", axes="ZYX", progress=False
    )
    assert read_image(tmp_path / "out2" / "pages_recon.tif").axes == "ZYX"


@pytest.mark.parametrize("shape", [(600, 333), (40, 52), (7, 9)])
def test_metrics_by_strips_equal_scikit_image(shape):
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    from microvae.metrics import fidelity as image_metrics

    rng = np.random.default_rng(0)
    ref = rng.integers(100, 4000, shape).astype(np.uint16)
    test = np.clip(ref + rng.normal(0, 80, shape), 0, 4095).astype(np.uint16)
    got = image_metrics(ref, test)
    r = float(ref.max() - ref.min())
    a, b = ref.astype(float), test.astype(float)
    assert got["psnr_db"] == pytest.approx(peak_signal_noise_ratio(a, b, data_range=r), rel=1e-9)
    assert got["ssim"] == pytest.approx(structural_similarity(a, b, data_range=r), rel=1e-9)


def test_images_smaller_than_a_tile_run_padded_with_finite_outputs(tmp_path, model_path, caplog):
    """A 5x5 and a 2x2 image: reconstructed whole, embeddings finite (the coarsest latent
    level keeps the pixel that covers the image), metrics finite or NaN with the reason."""
    import warnings

    data, out = tmp_path / "in", tmp_path / "out"
    data.mkdir()
    rng = np.random.default_rng(0)
    for side in (5, 2):
        write_image(
            data / f"s{side}.tif",
            rng.integers(100, 3000, (side, side)).astype(np.uint16),
            axes="YX",
        )
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no numpy warnings on empty maps
        summary = process_stacks(load_model(model_path), data, out, progress=False, metrics="basic")
    assert [r.status for r in summary.results] == ["done", "done"]
    for side in (5, 2):
        assert read_image(out / f"s{side}_recon.tif").data.shape == (side, side)
        assert np.isfinite(np.load(out / f"s{side}_embedding.npz")["embedding"]).all()
    rows = {r["file"]: r for r in csv.DictReader(open(out / "metrics.csv"))}
    assert np.isfinite(float(rows["s5.tif"]["ssim"])) and np.isfinite(
        float(rows["s5.tif"]["psnr_db"])
    )
    assert rows["s2.tif"]["ssim"] == "nan" and "no SSIM window fits" in rows["s2.tif"]["note"]


def test_a_constant_image_gets_no_psnr_and_the_reason(tmp_path, model_path, caplog):
    data, out = tmp_path / "in", tmp_path / "out"
    data.mkdir()
    write_image(data / "flat.tif", np.full((2, 40, 40), 500, np.uint16), axes="ZYX")
    process_stacks(load_model(model_path), data, out, progress=False, metrics="basic")
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    assert [r["plane"] for r in rows] == ["0", "1", "all"]
    for r in rows:
        assert r["psnr_db"] == "nan" and r["data_range"] == "nan", r
    assert rows[0]["note"].startswith("the reference is constant: it has no data range")
    assert "flat.tif, plane 0: the reference is constant" in caplog.text


# -- the run record: own outputs, resume only what the same run made, stale temporaries ------


def _stacks(folder: Path, n: int = 3, planes: int = 2) -> None:
    folder.mkdir(exist_ok=True)
    for i in range(n):
        s = generate(shape=(planes, 40, 40), seed=i).image
        write_image(folder / f"s{i}.tif", s, axes="ZYX")


def test_outputs_beside_the_inputs_are_never_inputs_and_inputs_never_dropped(
    tmp_path, model_path, capsys
):
    data = tmp_path / "images"
    _stacks(data)
    model = load_model(model_path)
    first = process_stacks(model, data, data, progress=False)  # --out = the input folder
    assert [r.path.name for r in first.results] == ["s0.tif", "s1.tif", "s2.tif"]
    assert [r.status for r in first.results] == ["done"] * 3
    # again: the same three inputs, not their reconstructions, whether resumed or not
    again = process_stacks(model, data, data, progress=False)
    assert [r.path.name for r in again.results] == ["s0.tif", "s1.tif", "s2.tif"]
    assert again.own_outputs == 3 and "3 outputs of earlier runs left out" in again.line()
    assert not list(data.glob("*_recon_recon.tif"))
    resumed = process_stacks(model, data, data, resume=True, progress=False)
    assert [r.status for r in resumed.results] == ["skipped"] * 3
    # into another folder: the input folder's record still says which files are outputs
    other = process_stacks(model, data, tmp_path / "other", progress=False)
    assert [r.path.name for r in other.results] == ["s0.tif", "s1.tif", "s2.tif"]
    # an output named as an input is an input: only folders and globs are sorted out
    named = process_stacks(model, data / "s0_recon.tif", tmp_path / "named", progress=False)
    assert [(r.path.name, r.status) for r in named.results] == [("s0_recon.tif", "done")]
    # the CLI says the same
    assert main(["predict", str(model_path), str(data), "--out", str(data), "--no-progress"]) == 0
    assert "3 processed, 0 already complete (skipped), 0 failed" in capsys.readouterr().out


def test_resume_keeps_only_what_the_same_model_settings_and_input_made(
    tmp_path, model_path, tiny_deterministic_path, capsys
):
    data, out = tmp_path / "in", tmp_path / "out"
    _stacks(data)
    model = load_model(model_path)
    process_stacks(model, data, out, progress=False)

    def refused(match, model=model, **kwargs):
        before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
        with pytest.raises(MicrovaeError, match=match) as info:
            process_stacks(model, data, out, resume=True, progress=False, **kwargs)
        assert "pass --overwrite to replace them" in str(info.value)
        assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before  # untouched

    refused(
        r"s0\.tif \(another model\); s1\.tif \(another model\)", load_model(tiny_deterministic_path)
    )
    refused(r"s0\.tif \(tile_size default -> 16\)", tile_size=16)
    refused(r"\(output 'mean' -> 'sample', seed default -> 3\)", output="sample", seed=3)
    refused(r"\(metrics 'basic_metrics' -> 'fine_structure_metrics'\)", metrics="fine")
    os.utime(data / "s1.tif", ns=(1, 1))  # the input rewritten since
    refused(r"^\S+: --resume would keep outputs that another run made: s1\.tif \(the input fil")
    # --overwrite: what differs is done anew, what matches is kept
    summary = process_stacks(model, data, out, resume=True, overwrite=True, progress=False)
    assert [r.status for r in summary.results] == ["skipped", "done", "skipped"]
    # the same model loaded again (another object, same weights) resumes
    again = process_stacks(load_model(model_path), data, out, resume=True, progress=False)
    assert [r.status for r in again.results] == ["skipped"] * 3
    # outputs without a record (an older microvae, or the record removed) are not trusted
    (out / "microvae-predict.json").unlink()
    refused(r"no record of the run that wrote them")
    # the CLI: one line, exit status 2
    args = ["predict", str(tiny_deterministic_path), str(data), "--out", str(out), "--resume"]
    assert main([*args, "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "another run made" in err and "--overwrite" in err and len(err.strip().splitlines()) == 1


def test_an_unfinished_ome_zarr_output_resumes_only_with_its_own_model(
    tmp_path, model_path, tiny_deterministic_path, monkeypatch
):
    data, out = tmp_path / "in", tmp_path / "out"
    _stacks(data, n=1, planes=4)
    model = load_model(model_path)
    calls = {"n": 0}
    original = TrainedModel.plane_steps

    def interrupted(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return (yield from original(self, *args, **kwargs))

    monkeypatch.setattr(TrainedModel, "plane_steps", interrupted)
    with pytest.raises(KeyboardInterrupt):
        process_stacks(model, data, out, format="ome-zarr", progress=False)
    monkeypatch.setattr(TrainedModel, "plane_steps", original)
    other = load_model(tiny_deterministic_path)
    with pytest.raises(MicrovaeError, match=r"s0\.tif \(another model\)"):
        process_stacks(other, data, out, format="ome-zarr", resume=True, progress=False)
    done = process_stacks(other, data, out, format="ome-zarr", resume=True, overwrite=True)
    assert [r.status for r in done.results] == ["done"]
    # made anew by the other model, not continued from the first model's planes
    fresh = process_stacks(other, data, tmp_path / "fresh", format="ome-zarr", progress=False)
    assert fresh.results[0].status == "done"
    np.testing.assert_array_equal(
        read_image(out / "s0_recon.ome.zarr").data,
        read_image(tmp_path / "fresh" / "s0_recon.ome.zarr").data,
    )


def test_a_killed_runs_temporaries_are_removed_and_counted(tmp_path, model_path):
    import subprocess
    import sys
    import time

    from microvae.io.atomic import _host

    data, out = tmp_path / "in", tmp_path / "out"
    _stacks(data, n=1)
    out.mkdir()
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True
    )
    dead_pid = int(gone.stdout)
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        host = _host()
        stale = [
            out / f".s0_recon.tif.{dead_pid}@{host}.abc123.part",  # its writer's process is gone
            out / ".s0_embedding.npz.k2j4h5g6.part",  # an older name, untouched for 2 hours
            out / f".metrics.csv.{dead_pid}@{host}.zz.part",
        ]
        kept = [
            out / f".s0_recon.tif.{live.pid}@{host}.abc124.part",  # a live writer's
            out / ".s0_recon.tif.9@elsewhere.abc125.part",  # another machine's, recent
            out / ".s0_embedding.npz.j3k4l5m6.part",  # an older name, recent
            out / f".other_recon.tif.{dead_pid}@{host}.abc126.part",  # not this run's output
        ]
        for p in stale + kept:
            p.write_bytes(b"x")
        old = time.time() - 7200
        os.utime(stale[1], (old, old))
        summary = process_stacks(load_model(model_path), data, out, progress=False)
        assert summary.stale_removed == 3
        assert "3 temporaries of a stopped run removed" in summary.line()
        assert not any(p.exists() for p in stale)
        assert all(p.exists() for p in kept)
    finally:
        live.kill()
        live.wait()


def test_predict_samples_writes_the_mmse_and_std_and_resumes(tmp_path, model_path, monkeypatch):
    """predict --samples 3 --quantiles: the reconstruction is the draws' mean, NAME_std the
    spread and NAME_q10/NAME_q90 the quantiles, all as model.posterior gives them; a stopped
    OME-Zarr run resumes to the same outputs (the draws are seeded per plane)."""
    data, out = tmp_path / "in", tmp_path / "out"
    data.mkdir()
    stack = generate(shape=(3, 40, 40), seed=4).image
    write_image(data / "s.tif", stack, axes="ZYX")
    args = ["predict", str(model_path), str(data), "--out", str(out), "--no-progress"]
    args += ["--samples", "3", "--format", "ome-zarr", "--seed", "5", "--quantiles", "0.1", "0.9"]
    calls = {"n": 0}
    original = TrainedModel.plane_steps

    def interrupted(self, *a, **kw):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return (yield from original(self, *a, **kw))

    monkeypatch.setattr(TrainedModel, "plane_steps", interrupted)
    assert main(args) == 130  # Ctrl-C: the command stops and says so
    monkeypatch.setattr(TrainedModel, "plane_steps", original)
    assert main([*args, "--resume"]) == 0
    model = load_model(model_path)
    recon = read_image(out / "s_recon.ome.zarr").data
    std = read_image(out / "s_std.ome.zarr").data
    q10, q90 = (read_image(out / f"s_q{p}.ome.zarr").data for p in (10, 90))
    post = model.posterior(stack, "ZYX", samples=3, seed=5, quantiles=(0.1, 0.9))
    np.testing.assert_array_equal(recon, post.mmse)
    np.testing.assert_array_equal(std, post.std)
    np.testing.assert_array_equal(np.stack([q10, q90]), post.quantiles)
    assert std.dtype == np.float32 and std.shape == stack.shape and std.max() > 0
    assert (q10 <= q90).all() and (q90 > q10).mean() > 0.5
    assert not np.array_equal(recon, model.reconstruct(stack, "ZYX"))


def test_bad_samples_are_refused_in_one_line(tmp_path, model_path, capsys):
    image = tmp_path / "a.tif"
    write_image(image, generate(shape=(40, 40), seed=0).image, axes="YX")
    with pytest.raises(SystemExit):
        main(
            ["predict", str(model_path), str(image), "--out", str(tmp_path / "o"), "--samples", "0"]
        )
    assert "--samples: must be a whole number >= 1, got '0'" in capsys.readouterr().err
    model = load_model(model_path)
    with pytest.raises(MicrovaeError, match="samples must be a whole number"):
        process_stacks(model, image, tmp_path / "o", samples=0, progress=False)
    with pytest.raises(MicrovaeError, match="std output needs posterior samples"):
        process_stacks(model, image, tmp_path / "o", outputs=["std"], progress=False)
    with pytest.raises(MicrovaeError, match="quantiles need samples >= 2"):
        process_stacks(model, image, tmp_path / "o", quantiles=(0.1,), progress=False)
    with pytest.raises(SystemExit):
        main(["predict", str(model_path), str(image), "--out", "o", "--quantiles", "1.5"])
    assert "--quantiles: must lie strictly between 0 and 1, got '1.5'" in capsys.readouterr().err
