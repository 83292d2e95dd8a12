"""Fixtures shared by both test trees (tests/ and napari_plugin/tests/): small synthetic data
and tiny trained models, each trained once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent
CONFIGS = ROOT / "configs"
REAL_DATA = ROOT.parent / "shared" / "data" / "real"

# a model trained in seconds on 2 cores: enough for every code path, not for quality
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


def _train_tiny(
    out: Path, data: Path | list[str], overrides: list[str] = (), config: str = "demo.yaml"
) -> Path:
    """Train ``configs/<config>`` with :data:`TINY` and ``overrides`` (later ones win) on
    ``data`` (a folder of ``synth_*.tif`` or a list of inputs) into ``out``; the model file."""
    from microvae.training.session import fit

    inputs = [str(Path(data) / "synth_00?.tif")] if isinstance(data, Path) else list(data)
    run, _ = fit(CONFIGS / config, inputs, out, overrides=TINY + list(overrides), progress=False)
    return run / "model.pt"


@pytest.fixture(scope="session")
def train_tiny():
    """The function that trains a tiny model:
    ``train_tiny(out, data, overrides=(), config="demo.yaml") -> model.pt``."""
    return _train_tiny


@pytest.fixture(scope="session")
def tiny_overrides() -> list[str]:
    """The overrides of a tiny model (a copy: extend it freely)."""
    return list(TINY)


@pytest.fixture(scope="session")
def synth_data(tmp_path_factory) -> Path:
    """Three synthetic 96 x 96 images (synth_000.tif ...) with their ground truth."""
    from microvae.synthetic import SynthParams, write_synthetic_set

    out = tmp_path_factory.mktemp("synth_data")
    write_synthetic_set(out, SynthParams(shape=(96, 96)), n=3, seed=0, progress=False)
    return out


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory, synth_data) -> Path:
    """A tiny ladder + dmol model (configs/demo.yaml with TINY) on ``synth_data``."""
    return _train_tiny(tmp_path_factory.mktemp("tiny_ladder") / "run", synth_data)


@pytest.fixture(scope="session")
def tiny_3d_model_path(tmp_path_factory) -> Path:
    """A tiny 3D ladder (model.dims 3, tiles 8 x 32 x 32), trained on two synthetic ZYX
    stacks of 16 x 64 x 64 with voxels 4x deeper than wide."""
    import microvae
    from microvae.synthetic import generate

    data = tmp_path_factory.mktemp("stacks3d")
    voxel = {"Z": 0.2, "Y": 0.05, "X": 0.05}
    for i in range(2):
        s = generate(shape=(16, 64, 64), seed=i, z_step_um=0.2, pixel_size_um=0.05)
        microvae.write_image(data / f"s{i}.tif", s.image, axes="ZYX", pixel_size=voxel)
    out = tmp_path_factory.mktemp("tiny_3d") / "run"
    overrides = ["model.dims=3", "data.tile_depth=8", "train.max_steps=10", "data.split=file"]
    return _train_tiny(out, [str(data / "s?.tif")], overrides)


@pytest.fixture(scope="session")
def tiny_deterministic_path(tmp_path_factory, synth_data) -> Path:
    """The same, with deterministic skips (the collapsed reference case)."""
    out = tmp_path_factory.mktemp("tiny_deterministic") / "run"
    return _train_tiny(out, synth_data, ["model.skip_mode=deterministic"])


@pytest.fixture
def real_data() -> Path:
    """../shared/data/real, or a clean skip where it is absent (a user's machine)."""
    if not REAL_DATA.is_dir():
        pytest.skip(f"real data folder {REAL_DATA} is absent")
    return REAL_DATA
