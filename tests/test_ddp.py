"""Training with 2 processes on a CPU (DDP over gloo), through the command line as a user runs
it: the ranks end with identical weights, only rank 0 writes the run folder, resume works."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.timeout(600)
ROOT = Path(__file__).resolve().parents[1]
DDP = ["train.devices=2", "train.strategy=ddp", "train.accelerator=cpu"]


def _train(
    synth_data: Path, run: Path, sets: list[str], *extra: str
) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "microvae.cli.main", "train"]
    if "--resume" not in extra:  # a resumed run keeps its saved config
        cmd.append(str(ROOT / "configs" / "demo.yaml"))
    cmd += ["--data", str(synth_data / "synth_00?.tif"), "--out", str(run), "--no-progress"]
    for item in sets:
        cmd += ["--set", item]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd + list(extra), capture_output=True, text=True, env=env, timeout=500)


def test_two_cpu_processes_train_identically_and_resume(tmp_path, synth_data, tiny_overrides):
    run = tmp_path / "run"
    # the devices/strategy after TINY's: later overrides win
    sets = [o for o in tiny_overrides if not o.startswith("train.devices")]
    sets += DDP + ["train.max_steps=6", "train.val_every=3", "train.checkpoint_every=3"]
    done = _train(synth_data, run, sets)
    assert done.returncode == 0, done.stderr[-3000:]
    payload = torch.load(run / "model.pt", weights_only=True)
    assert payload["summary"]["processes"] == {"world_size": 2, "identical_weights": True}
    assert payload["summary"]["steps"] == 6
    # one writer: rank 0's files, once (a second writer would add a logs version, another
    # tensorboard file or a preview of its own)
    assert sorted(p.name for p in run.iterdir()) == [
        "checkpoints",
        "config.yaml",
        "diagnostics.json",
        "logs",
        "model.pt",
        "previews",
        "run.json",
        "tensorboard",
    ]
    assert sorted(p.name for p in (run / "logs").iterdir()) == ["hparams.yaml", "metrics.csv"]
    assert len(list((run / "tensorboard").glob("events.*"))) == 1
    assert sorted(p.name for p in (run / "previews").iterdir()) == [
        "step_0000003.png",
        "step_0000006.png",
    ]
    assert done.stdout.count("model: ") == 1  # rank 0 reports
    again = _train(synth_data, run, DDP + ["train.max_steps=9"], "--resume")
    assert again.returncode == 0, again.stderr[-3000:]
    payload = torch.load(run / "model.pt", weights_only=True)
    assert payload["summary"]["steps"] == 9
    assert payload["summary"]["processes"] == {"world_size": 2, "identical_weights": True}
