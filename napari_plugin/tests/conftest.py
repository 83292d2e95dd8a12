"""A small trained microvae model for the plugin's tests (trained once per session)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from microvae.cli.synth_cmd import write_synthetic_set
from microvae.synthetic import SynthParams
from microvae.training.fit import fit

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
TINY = [
    "data.tile_size=32",
    "model.levels=2",
    "model.base_channels=8",
    "model.max_channels=16",
    "model.latent_channels=4",
    "train.max_steps=30",
    "train.batch_size=8",
    "train.val_every=30",
    "data.max_val_tiles=4",
    "data.num_workers=0",
    "train.accelerator=cpu",
    "train.devices=1",
]


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """Skip a Qt test, saying what to install, before Qt aborts the whole run for want of a
    display (`make test` installs the packages where it can, and says so where it cannot);
    CI sets MICROVAE_REQUIRE_DISPLAY=1, which makes this a failure instead."""
    if "qapp" in item.fixturenames and not os.environ.get("DISPLAY"):
        why = (
            "no X display for napari's Qt viewer: pytest-xvfb starts one when Xvfb is "
            "installed (Debian: .ci/system-deps installs .ci/packages.txt), or set DISPLAY"
        )
        if os.environ.get("MICROVAE_REQUIRE_DISPLAY") == "1":
            pytest.fail(why, pytrace=False)
        pytest.skip(why)


def _train(base: Path, extra=()) -> Path:
    data = base / "data"
    write_synthetic_set(data, SynthParams(shape=(96, 96)), n=3, seed=0, progress=False)
    run, _ = fit(
        CONFIGS / "demo.yaml",
        [str(data / "synth_00?.tif")],
        base / "run",
        overrides=TINY + list(extra),
        progress=False,
    )
    return run / "model.pt"


@pytest.fixture(scope="session")
def model_path(tmp_path_factory) -> Path:
    return _train(tmp_path_factory.mktemp("plugin_model"))


@pytest.fixture(scope="session")
def deterministic_path(tmp_path_factory) -> Path:
    return _train(tmp_path_factory.mktemp("plugin_det"), ["model.skip_mode=deterministic"])
