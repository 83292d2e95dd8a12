"""The Train widget in a real viewer: the same model as the CLI, training off the GUI thread
while the viewer keeps processing events, Stop and Resume, and bad input said plainly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import microvae
from microvae.config import load_config, read_model_file, save_config
from microvae.synthetic import generate
from napari_microvae._train_process import read_frame
from napari_microvae._train_widget import PREVIEW, TrainWidget

ROOT = Path(__file__).resolve().parents[2]
WAIT_MS = 240_000


@pytest.fixture
def tiny_config(tmp_path, tiny_overrides) -> Path:
    """configs/demo.yaml made tiny (the shared TINY overrides), as a config file."""
    keep = [o for o in tiny_overrides if not o.startswith(("train.max_steps", "train.val_every"))]
    cfg = load_config(ROOT / "configs" / "demo.yaml", keep + ["train.val_every=50"])
    return save_config(cfg, tmp_path / "tiny.yaml")


def _widget(viewer, config: Path, out: Path) -> TrainWidget:
    widget = TrainWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget.config_file.value = config
    widget.out.value = out
    widget.device.value = "cpu"
    return widget


def _sample_layer(viewer):
    viewer.open_sample("napari-microvae", "synthetic_2d")
    return viewer.layers["synthetic mitochondria"]


def test_fields_follow_the_chosen_config(make_napari_viewer, tiny_config):
    widget = TrainWidget(make_napari_viewer())
    assert widget.config.value == "demo"  # the shipped configs, demo first
    assert widget.tile_size.value == 64 and widget.likelihood.value == "dmol"
    widget.config.value = "baseline-gaussian"
    assert widget.likelihood.value == "gaussian"
    widget.config_file.value = tiny_config
    assert widget.tile_size.value == 32 and widget.val_every.value == 50


def test_widget_trains_the_same_model_as_the_cli(
    make_napari_viewer, qtbot, tmp_path, tiny_config, errors
):
    """200 steps on the sample data, from the widget and from `microvae train`."""
    viewer = make_napari_viewer()
    layer = _sample_layer(viewer)
    widget = _widget(viewer, tiny_config, tmp_path / "widget")
    widget.layers.value = [layer]
    widget.steps.value = 200
    ticks = []  # GUI-thread timer ticks while training runs: the event loop is not blocked
    timer = widget.timer.__class__()
    timer.setInterval(20)
    timer.timeout.connect(lambda: ticks.append((widget.history.step, widget.status.value)))
    timer.start()
    worker = widget.train()
    assert worker is not None and not errors
    qtbot.waitUntil(lambda: widget.busy == 0, timeout=WAIT_MS)
    timer.stop()
    assert not errors, errors
    assert widget.job is None and widget.model_written == tmp_path / "widget" / "model.pt"
    # training ran in another process, and the GUI thread ran its timer all along, seeing
    # the steps advance (progress shown while training, not only at the end)
    assert widget.last_job.pid not in (None, os.getpid())
    assert len(ticks) > 20
    advancing = sorted(set(step for step, _ in ticks if 0 < step < 200))
    assert len(advancing) >= 3, advancing
    assert any(status.startswith("step ") for _, status in ticks)
    assert widget.history.val_steps == [50, 100, 150, 200]
    assert widget.verdict.value.startswith("latent space: ")
    # the plots hold the run's numbers: loss per logged step, KL per level per validation
    h = widget.history
    widget.plots.draw(h)
    np.testing.assert_array_equal(widget.plots.loss.get_xdata(), h.steps)
    np.testing.assert_array_equal(widget.plots.val_bpd.get_ydata(), h.val_bits_per_dim)
    assert len(widget.plots.kl) == len(h.val_kl_per_level[0]) >= 2
    for i, line in enumerate(widget.plots.kl):
        np.testing.assert_array_equal(line.get_ydata(), [v[i] for v in h.val_kl_per_level])
    preview = viewer.layers[PREVIEW].data
    assert preview.shape == (32, 66)
    # the CLI on the same data (the sample image, written by the test), config and seed
    data = tmp_path / "cli_data"
    data.mkdir()
    microvae.write_image(data / "sample.tif", np.asarray(layer.data), axes="YX")
    env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())}
    cli = [sys.executable, "-m", "microvae.cli.main", "train", str(tiny_config)]
    cli += ["--data", str(data), "--out", str(tmp_path / "cli"), "--no-progress"]
    cli += ["--set", "train.max_steps=200", "--set", "train.accelerator=cpu"]
    done = subprocess.run(cli, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    a = read_model_file(widget.model_written)
    b = read_model_file(tmp_path / "cli" / "model.pt")
    assert a["config"] == b["config"]
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for key, value in a["state_dict"].items():
        torch.testing.assert_close(value, b["state_dict"][key], rtol=1e-4, atol=1e-5)


def test_stop_mid_training_then_resume(make_napari_viewer, qtbot, tmp_path, tiny_config, errors):
    viewer = make_napari_viewer()
    widget = _widget(viewer, tiny_config, tmp_path / "out")
    widget.layers.value = [_sample_layer(viewer)]
    widget.steps.value = 5000
    worker = widget.train()
    assert widget.stop_button.enabled and not widget.train_button.enabled
    qtbot.waitUntil(lambda: widget.history.step >= 20, timeout=WAIT_MS)
    widget.stop()
    assert "stopping" in widget.status.value
    qtbot.waitUntil(lambda: widget.busy == 0, timeout=WAIT_MS)
    assert worker is not None and not errors, errors
    summary = read_model_file(tmp_path / "out" / "model.pt")["summary"]
    stopped = summary["stopped_at"]
    assert 20 <= stopped < 5000 and summary["steps"] == stopped
    assert f"stopped at step {stopped} of 5000" in widget.status.value
    assert widget.resume_button.enabled and widget.train_button.enabled
    # Resume continues to the steps now asked for
    widget.steps.value = stopped + 10
    widget.resume()
    qtbot.waitUntil(lambda: widget.busy == 0, timeout=WAIT_MS)
    assert not errors, errors
    summary = read_model_file(tmp_path / "out" / "model.pt")["summary"]
    assert summary["steps"] == stopped + 10 and summary["stopped_at"] is None
    assert widget.history.step == stopped + 10
    # and the model goes out as a bioimage.io package that microvae loads back
    worker = widget.export()
    assert worker is not None
    qtbot.waitUntil(lambda: widget.busy == 0, timeout=WAIT_MS)
    assert not errors, errors
    package = tmp_path / "out" / "bioimageio.zip"
    assert widget.status.value == f"bioimage.io package: {package}"
    loaded = microvae.load_model(package)
    assert loaded.summary["steps"] == stopped + 10


def test_bad_input_is_said_not_crashed(make_napari_viewer, qtbot, tmp_path, tiny_config, errors):
    viewer = make_napari_viewer()
    widget = _widget(viewer, tiny_config, tmp_path / "out")
    assert widget.train() is None
    assert "no training data" in errors[-1]
    viewer.add_image(np.zeros((64, 64, 3), np.uint8), name="rgb", rgb=True)
    widget.layers.value = [viewer.layers["rgb"]]
    assert widget.train() is None
    assert "RGB" in errors[-1]
    viewer.add_image(np.zeros((16, 16), np.uint16), name="small")
    widget.layers.value = [viewer.layers["small"]]
    assert widget.train() is None
    assert "smaller than the tile size 32" in errors[-1]
    widget.tile_size.value = 30  # not a multiple of 2**levels = 4
    viewer.add_image(np.zeros((64, 64), np.uint16), name="flat")
    widget.layers.value = [viewer.layers["flat"]]
    assert widget.train() is None
    assert "tile_size" in errors[-1]
    widget.tile_size.value = 32
    widget.out.line_edit.value = ""
    assert widget.train() is None
    assert "no output folder" in errors[-1]
    widget.out.value = tmp_path / "out"
    assert widget.resume() is None
    assert "no run to resume" in errors[-1]
    assert widget.export() is None
    assert "no model to export" in errors[-1]
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed\n")
    widget.config_file.value = bad
    assert "not valid YAML" in errors[-1]
    widget.config_file.value = tiny_config
    # constant data: refused by the training itself, in the worker, as a notification
    n = len(errors)
    worker = widget.train()
    assert worker is not None
    qtbot.waitUntil(lambda: widget.busy == 0, timeout=WAIT_MS)
    assert len(errors) == n + 1 and "constant" in errors[-1]
    assert widget.train_button.enabled and not widget.stop_button.enabled
    # a folder that holds a run is not replaced unless asked
    (tmp_path / "out" / "run").mkdir(parents=True, exist_ok=True)
    (tmp_path / "out" / "run" / "config.yaml").write_text("{}\n")
    assert widget.train() is None
    assert "already holds a run" in errors[-1]
    assert [layer.name for layer in viewer.layers] == ["rgb", "small", "flat"]


def test_the_viewer_process_never_loads_lightning():
    """Training events reach the viewer, and the export runs there, without Lightning (and
    triton, whose LLVM crashes beside Mesa's software OpenGL) being imported."""
    code = (
        "import pickle, sys\n"
        "import napari_microvae._train_widget\n"
        "import microvae.export, bioimageio.spec\n"
        "from microvae.training.events import TrainingEvent\n"
        "import numpy as np\n"
        "e = pickle.loads(pickle.dumps(TrainingEvent('step', 1, 2, {'loss': 1.0})))\n"
        "bad = [m for m in ('lightning', 'torchvision', 'triton') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


def test_the_run_stops_and_saves_when_the_viewer_goes_away(tmp_path, tiny_config):
    """The training process's stdin closes (the viewer quit or crashed): the run stops after
    its current step and writes last.ckpt and model.pt, so Resume can continue it."""

    data = tmp_path / "data"
    data.mkdir()
    microvae.write_image(data / "a.tif", generate(shape=(128, 128), seed=3).image, axes="YX")
    spec = {
        "config": str(tiny_config),
        "data": [str(data)],
        "run_dir": str(tmp_path / "run"),
        "overrides": ["train.max_steps=100000", "train.accelerator=cpu"],
        "resume": False,
        "overwrite": False,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "napari_microvae._train_process"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    process.stdin.write((json.dumps(spec) + "\n").encode())
    process.stdin.flush()
    while (event := read_frame(process.stdout)) is not None:
        if getattr(event, "kind", None) == "step":
            break
    process.stdin.close()  # what the viewer's exit does to the pipe
    while (item := read_frame(process.stdout)) is not None:
        end = item
    assert process.wait(timeout=300) == 0
    assert end[0] == "done", end
    summary = read_model_file(tmp_path / "run" / "model.pt")["summary"]
    assert 0 < summary["stopped_at"] < 100000
    assert (tmp_path / "run" / "checkpoints" / "last.ckpt").is_file()
