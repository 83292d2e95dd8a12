"""Training runs end to end on tiny synthetic data: configs, resume, model files, failures."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import pytest
import tifffile
import torch

from microvae.cli.main import main
from microvae.config import ModelFileError
from microvae.errors import NonFiniteError
from microvae.inference import load_model
from microvae.training.session import RunDirError, fit

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
# the shared tiny model (conftest.py), smaller still: these tests time steps, not quality
SMALLER = [
    "model.base_channels=4",
    "model.max_channels=8",
    "model.latent_channels=2",
    "model.blocks_per_level=1",
    "train.max_steps=3",
    "train.batch_size=2",
    "train.val_every=3",
    "train.checkpoint_every=2",
    "data.max_val_tiles=2",
]


@pytest.fixture(scope="module")
def tiny(tiny_overrides) -> list[str]:
    return tiny_overrides + SMALLER


@pytest.fixture(scope="module")
def data_dir(synth_data) -> Path:
    return synth_data


def _inputs(data_dir):
    return [str(data_dir / "synth_00?.tif")]


@pytest.mark.parametrize(
    "name", ["demo", "mito2d", "baseline-gaussian", "unet-deterministic", "em2d"]
)
def test_each_config_trains_and_loads(tmp_path, data_dir, name, tiny):
    extra = ["model.global_latent_dim=4"] if name == "baseline-gaussian" else []
    run, summary = fit(
        CONFIGS / f"{name}.yaml",
        _inputs(data_dir),
        tmp_path / "run",
        overrides=tiny + extra,
        progress=False,
    )
    assert summary["steps"] == 3
    for f in (
        "config.yaml",
        "run.json",
        "model.pt",
        "diagnostics.json",
        "logs/metrics.csv",
        "checkpoints/last.ckpt",
        "checkpoints/best.ckpt",
    ):
        assert (run / f).is_file(), f
    assert list((run / "previews").glob("step_*.png"))
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    model = load_model(run / "model.pt")
    assert model.config.model.skip_mode == {
        "baseline-gaussian": "none",
        "unet-deterministic": "deterministic",
    }.get(name, "ladder")
    assert model.normalisation.bit_depth == (8 if name == "em2d" else 12)
    assert "val/bits_per_dim" in model.summary["validation"]
    assert model.summary["collapse"]["verdict"] in ("healthy", "partly collapsed", "collapsed")


class _InterruptAt(pl.Callback):
    def __init__(self, step):
        self.step = step

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        if trainer.global_step == self.step:
            raise KeyboardInterrupt


def test_interrupt_then_resume_continues_from_the_saved_step(tmp_path, data_dir, tiny):
    run = tmp_path / "run"
    over = tiny + ["train.max_steps=8", "train.checkpoint_every=100", "train.val_every=4"]
    with pytest.raises(KeyboardInterrupt, match=r"interrupted at step 5; .*last.ckpt is saved"):
        fit(
            CONFIGS / "demo.yaml",
            _inputs(data_dir),
            run,
            overrides=over,
            progress=False,
            callbacks=[_InterruptAt(5)],
        )
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["global_step"] == 5
    assert not (run / "model.pt").exists()
    first_log = (run / "logs" / "metrics.csv").read_text()
    _, summary = fit(None, _inputs(data_dir), run, resume=True, progress=False)
    assert summary["steps"] == 8
    assert load_model(run / "model.pt").summary["steps"] == 8
    # the first session's log is kept; the resumed one logs beside it, from step 5 on
    assert (run / "logs" / "metrics.csv").read_text() == first_log
    resumed = (run / "logs" / "resumed-at-step-5" / "metrics.csv").read_text().splitlines()
    header = resumed[0].split(",")
    logged = {int(float(row.split(",")[header.index("step")])) for row in resumed[1:]}
    assert min(logged) >= 5 and max(logged) >= 7
    with pytest.raises(RunDirError, match="already reached step 8"):
        fit(None, _inputs(data_dir), run, resume=True, progress=False)


def test_progress_bar_counts_steps_without_a_negative_epoch_total(tmp_path, data_dir, capsys, tiny):
    over = tiny + ["train.max_steps=4", "train.val_every=4"]
    fit(CONFIGS / "demo.yaml", _inputs(data_dir), tmp_path / "run", overrides=over)
    shown = capsys.readouterr().out
    assert "4/4" in shown  # the bar reached the last step
    assert "training" in shown and "Epoch 0/-" not in shown


def test_run_folder_rules(tmp_path, data_dir, tiny):
    run = tmp_path / "run"
    fit(CONFIGS / "demo.yaml", _inputs(data_dir), run, overrides=tiny, progress=False)
    with pytest.raises(RunDirError, match="run folder exists; pass --resume .* or --overwrite"):
        fit(CONFIGS / "demo.yaml", _inputs(data_dir), run, overrides=tiny, progress=False)
    fit(
        CONFIGS / "demo.yaml",
        _inputs(data_dir),
        run,
        overrides=tiny,
        overwrite=True,
        progress=False,
    )
    other = tmp_path / "mine"
    other.mkdir()
    (other / "thesis.docx").write_text("precious")
    with pytest.raises(RunDirError, match="not a microvae run folder .* will not delete it"):
        fit(
            CONFIGS / "demo.yaml",
            _inputs(data_dir),
            other,
            overrides=tiny,
            overwrite=True,
            progress=False,
        )
    assert (other / "thesis.docx").exists()
    with pytest.raises(RunDirError, match="nothing to resume"):
        fit(None, _inputs(data_dir), tmp_path / "new", resume=True, progress=False)
    with pytest.raises(RunDirError, match="given config differs in data, model"):
        fit(CONFIGS / "mito2d.yaml", _inputs(data_dir), run, resume=True, progress=False)


class _Poison(pl.Callback):
    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        if trainer.global_step >= 1:
            with torch.no_grad():
                next(module.vae.parameters()).fill_(float("nan"))


def test_non_finite_updates_are_skipped_then_stop_the_run(tmp_path, data_dir, tiny):
    over = tiny + ["train.max_steps=10", "train.max_skipped=3"]
    with pytest.raises(
        NonFiniteError,
        match=r"3 updates in a row skipped, the last at step 1: "
        r"loss is NaN",
    ):
        fit(
            CONFIGS / "demo.yaml",
            _inputs(data_dir),
            tmp_path / "run",
            overrides=over,
            progress=False,
            callbacks=[_Poison()],
        )


class _Payload:
    """Unpickling this would create a marker file: the attack a model file must not run."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_malicious_model_file_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "model.pt"
    torch.save({"format": "microvae-model", "state_dict": {}, "x": _Payload(marker)}, evil)
    with pytest.raises(ModelFileError, match="pickled Python objects, which microvae never loads"):
        load_model(evil)
    assert not marker.exists()
    # the same payload as a plain pickle
    with open(evil, "wb") as fh:
        pickle.dump(_Payload(marker), fh)
    with pytest.raises(ModelFileError, match="refused"):
        load_model(evil)
    assert not marker.exists()


def test_foreign_damaged_and_missing_model_files(tmp_path, data_dir, tiny):
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    with pytest.raises(ModelFileError, match="foreign.pt: not a microvae model file"):
        load_model(foreign)
    with pytest.raises(ModelFileError, match="model file not found"):
        load_model(tmp_path / "none.pt")
    # an image where the model goes is named for what it is, not called unsafe
    image = tmp_path / "image.tif"
    tifffile.imwrite(image, np.zeros((8, 8), np.uint16))
    png = tmp_path / "image.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    for path, kind in ((image, "a TIFF image"), (png, "a PNG image"), (tmp_path, "a folder")):
        with pytest.raises(ModelFileError) as info:
            load_model(path)
        assert str(info.value).startswith(f"{path.name}: {kind}, not a microvae model; MODEL ")
        assert "pickled" not in str(info.value)
    run, _ = fit(
        CONFIGS / "demo.yaml", _inputs(data_dir), tmp_path / "run", overrides=tiny, progress=False
    )
    data = (run / "model.pt").read_bytes()
    cut = tmp_path / "cut.pt"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="cut.pt: refused: it cannot be read"):
        load_model(cut)


def test_cli_train_and_info(tmp_path, data_dir, capsys, tiny):
    run = tmp_path / "run"
    args = [
        "train",
        str(CONFIGS / "demo.yaml"),
        "--data",
        *_inputs(data_dir),
        "--out",
        str(run),
        "--no-progress",
    ]
    for item in tiny:
        args += ["--set", item]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert f"model: {run / 'model.pt'}" in out and "latent space:" in out
    assert main(["info", str(run / "model.pt")]) == 0
    info = capsys.readouterr().out
    assert "ladder, 2 levels" in info and "bit depth 12" in info
    assert main(args) == 2
    assert "run folder exists" in capsys.readouterr().err
    assert (
        main(
            [
                "train",
                str(CONFIGS / "demo.yaml"),
                "--data",
                str(tmp_path / "nothing"),
                "--out",
                str(tmp_path / "r2"),
            ]
        )
        == 2
    )
    assert "no such file or folder" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "r2")


def test_demo_command_end_to_end(tmp_path, capsys, tiny):
    out = tmp_path / "demo"
    args = ["demo", "--out", str(out)]
    for item in tiny:
        args += ["--set", item]
    assert main(args) == 0
    printed = capsys.readouterr().out
    for name in (
        "side_by_side.png",
        "side_by_side_zoom.png",
        "heldout.tif",
        "heldout_gt.tif",
        "heldout_recon.tif",
        "metrics.json",
        "run/model.pt",
        "evaluation/report.md",
        "evaluation/metrics.csv",
        "evaluation/figures/crops.png",
    ):
        assert (out / name).is_file(), name
    assert "open in napari: napari" in printed and "against the noise-free ground truth" in printed
    from microvae.io import read_image

    recon, held = read_image(out / "heldout_recon.tif"), read_image(out / "heldout.tif")
    assert recon.shape == held.shape and recon.dtype == held.dtype
    assert recon.pixel_size == held.pixel_size


def test_sigterm_leaves_a_checkpoint_that_resumes(tmp_path, data_dir, tiny):
    import signal
    import subprocess
    import sys
    import time

    run = tmp_path / "run"
    over = [o for o in tiny if not o.startswith(("train.max_steps", "train.checkpoint_every"))]
    cmd = [
        sys.executable,
        "-m",
        "microvae.cli.main",
        "train",
        str(CONFIGS / "demo.yaml"),
        "--data",
        *_inputs(data_dir),
        "--out",
        str(run),
        "--no-progress",
        "--set",
        "train.max_steps=100000",
        "--set",
        "train.checkpoint_every=5",
    ]
    for item in over:
        cmd += ["--set", item]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while not (run / "checkpoints" / "last.ckpt").exists():
            assert proc.poll() is None and time.time() < deadline, proc.communicate()
            time.sleep(0.2)
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "training interrupted at step" in err and "continue with --resume" in err
    step = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)[
        "global_step"
    ]
    assert step >= 5
    _, summary = fit(
        None,
        _inputs(data_dir),
        run,
        resume=True,
        progress=False,
        overrides=[f"train.max_steps={step + 3}"],
    )
    assert summary["steps"] == step + 3


def test_model_file_holds_the_best_validated_weights(tmp_path, data_dir, caplog, tiny):
    # a learning rate far too high makes later validations worse than an early one; the last
    # step (11: not a multiple of val_every) is validated too
    over = tiny + [
        "train.max_steps=11",
        "train.val_every=2",
        "train.lr=0.5",
        "train.lr_schedule=constant",
        "train.grad_clip=1e9",
        "train.skip_spikes=0",
    ]
    with caplog.at_level("INFO", logger="microvae.training"):
        run, summary = fit(
            CONFIGS / "demo.yaml",
            _inputs(data_dir),
            tmp_path / "run",
            overrides=over,
            progress=False,
        )
    import csv

    rows = list(csv.DictReader(open(run / "logs" / "metrics.csv")))
    vals = [float(r["val/bits_per_dim"]) for r in rows if r.get("val/bits_per_dim")]
    assert len(vals) == 6  # steps 2, 4, 6, 8, 10 and the last, 11
    saved = summary["saved"]
    assert saved["weights"] == "best" and saved["last_step"] == 11
    assert saved["val_bits_per_dim"] == pytest.approx(min(vals), rel=1e-5)
    assert saved["last_val_bits_per_dim"] == pytest.approx(vals[-1], rel=1e-5)
    assert summary["validation"]["val/bits_per_dim"] == pytest.approx(min(vals), rel=1e-5)
    if saved["step"] != 11:
        assert "model.pt holds the best weights, from step" in caplog.text
    if max(vals) - min(vals) > 0.1 and vals.index(max(vals)) > vals.index(min(vals)):
        assert "the run is getting worse" in caplog.text
    assert load_model(run / "model.pt").summary["saved"]["step"] == saved["step"]
    assert "gradient norm median" in caplog.text


def test_format_1_model_files_load_as_they_were_trained(tmp_path, data_dir, tiny):
    # format 1 read the decoder's outputs in [-1, 1] units: without the data affine in its
    # weights it must load with the identity, so that its reconstructions are unchanged
    run, _ = fit(
        CONFIGS / "demo.yaml", _inputs(data_dir), tmp_path / "run", overrides=tiny, progress=False
    )
    model = load_model(run / "model.pt")
    x = torch.rand(1, 1, 32, 32) * 0.2 - 0.8
    new = model.vae.reconstruct(x)
    payload = torch.load(run / "model.pt", weights_only=True)
    scale = payload["state_dict"].pop("likelihood.data_scale")
    shift = payload["state_dict"].pop("likelihood.data_shift")
    assert float(scale) != 1.0  # the run's data fill part of [-1, 1]
    payload["format_version"] = 1
    torch.save(payload, tmp_path / "old.pt")
    old = load_model(tmp_path / "old.pt")
    assert float(old.vae.likelihood.data_scale) == 1.0
    assert float(old.vae.likelihood.data_shift) == 0.0
    # the same weights read in [-1, 1] units give another image: the affine is what differs
    assert not torch.allclose(old.vae.reconstruct(x), new)
    old.vae.likelihood.set_data_affine(float(scale), float(shift))
    torch.testing.assert_close(old.vae.reconstruct(x), new)
