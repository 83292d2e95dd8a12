"""Run configurations: the files in configs/, YAML round trips, --set, errors naming keys."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from microvae.config import ConfigError, RunConfig, load_config, save_config

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
REQUIRED = [
    "demo",
    "cpu",
    "mito2d",
    "baseline-gaussian",
    "unet-deterministic",
    "em2d",
    "cpu3d",
    "mito3d",
]


@pytest.mark.parametrize("name", REQUIRED)
def test_config_files_load(name):
    cfg = load_config(CONFIGS / f"{name}.yaml")
    assert cfg.model.tile_size == cfg.data.tile_size
    raw = yaml.safe_load((CONFIGS / f"{name}.yaml").read_text())
    for section, values in raw.items():  # every key written in the file is taken as written
        for key, value in values.items():
            got = getattr(getattr(cfg, section), key)
            assert (list(got) if isinstance(got, tuple) else got) == value, (section, key)


def test_expected_roles_of_the_configs():
    by = {n: load_config(CONFIGS / f"{n}.yaml") for n in REQUIRED}
    assert (by["mito2d"].model.skip_mode, by["mito2d"].likelihood.name) == ("ladder", "dmol")
    assert (by["baseline-gaussian"].model.skip_mode, by["baseline-gaussian"].likelihood.name) == (
        "none",
        "gaussian",
    )
    assert by["unet-deterministic"].model.skip_mode == "deterministic"
    assert by["em2d"].data.bit_depth == 8
    # cpu.yaml is the demo's network with a full-resolution latent level, trained longer
    assert by["cpu"].model.model_copy(update={"full_resolution_latent": 0}) == by["demo"].model
    assert by["cpu"].model.full_resolution_latent > 0
    assert by["cpu"].likelihood == by["demo"].likelihood
    assert by["cpu"].train.max_steps == 2 * by["demo"].train.max_steps
    # the 3D twins: the same kind of model, in 3D
    for twin, flat in (("cpu3d", "cpu"), ("mito3d", "mito2d")):
        assert by[twin].model.dims == 3 and by[flat].model.dims == 2
        assert by[twin].model.skip_mode == by[flat].model.skip_mode == "ladder"
        assert by[twin].likelihood.name == by[flat].likelihood.name == "dmol"


@pytest.mark.parametrize("name", ["cpu3d", "mito3d"])
@pytest.mark.parametrize("z_over_xy", [1.0, 2.0, 3.57, 5.0, 10.0])
def test_3d_configs_take_the_z_strides_of_common_voxels(name, z_over_xy):
    """Whatever the voxel (isotropic to 10x deeper than wide), the Z strides chosen for it
    fit the preset's tile depth: no 3D preset fails on a usual stack."""
    from microvae.model import z_strides_for

    cfg = load_config(name)
    strides = z_strides_for(cfg.model.levels, z_over_xy)
    ok = load_config(name, [f"model.z_strides={strides}"])
    assert ok.model.multiples()[0] <= ok.data.tile_depth


def test_documented_keys_exist():
    cfg = RunConfig()
    for key in [
        "data.tile_size",
        "model.skip_mode",
        "model.levels",
        "likelihood.name",
        "objective.beta",
        "objective.warmup_steps",
        "objective.free_bits",
        "train.max_steps",
        "train.batch_size",
        "train.lr",
        "train.devices",
    ]:
        section, name = key.split(".")
        assert hasattr(getattr(cfg, section), name), key
        load_config(None, [f"{key}={getattr(getattr(cfg, section), name)}"])


def test_overrides_and_round_trip(tmp_path):
    cfg = load_config(
        CONFIGS / "demo.yaml",
        [
            "train.lr=5e-4",
            "model.latent_channels=[2, 4, 8]",
            "objective.free_bits=0.05",
            "data.channel=1",
        ],
    )
    assert cfg.train.lr == 5e-4 and cfg.model.latent_channels == [2, 4, 8]
    assert cfg.objective.free_bits == 0.05 and cfg.data.channel == 1
    path = save_config(cfg, tmp_path / "run.yaml")
    assert load_config(path) == cfg
    assert "tile_size" not in yaml.safe_load(path.read_text())["model"]


@pytest.mark.parametrize(
    "override,message",
    [
        ("modle.levels=3", "modle: unknown key"),
        ("model.levls=3", "model.levls: unknown key"),
        ("model.levels=9", "model.levels: Input should be less than or equal to 7 (got 9)"),
        ("objective.beta=-0.5", "objective.beta: Input should be greater than or equal to 0"),
        ("data.tile_size=100", "tile_size 100 (data.tile_size in a run config) is not divisible"),
        (
            "likelihood.name=poisson",
            "likelihood.name: Input should be 'gaussian', 'laplace' or 'dmol'",
        ),
        ("model.tile_size=32", "set data.tile_size"),
        ("data.intensity_augment=true", "turn it off or use gaussian/laplace"),
        ("train.lr", "expected key.sub=value"),
        ("lr=1", "name a section and a key"),
    ],
)
def test_bad_values_name_the_key(override, message):
    with pytest.raises(ConfigError) as info:
        load_config(CONFIGS / "demo.yaml", [override])
    assert message in str(info.value)
    assert str(info.value).startswith("demo.yaml with --set: ") or "--set" in str(info.value)


def test_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed\n")
    with pytest.raises(ConfigError, match="bad.yaml: not valid YAML"):
        load_config(bad)
    typo = tmp_path / "typo.yaml"
    typo.write_text("train:\n  max_step: 10\n")
    with pytest.raises(ConfigError, match=r"typo.yaml: train.max_step: unknown key"):
        load_config(typo)


def test_a_misspelt_key_in_the_file_is_the_files_not_the_set_flags(tmp_path):
    typo = tmp_path / "typo.yaml"
    typo.write_text("data:\n  tile_sise: 64\n")
    with pytest.raises(ConfigError) as info:
        load_config(typo, ["train.lr=1e-3", "train.max_steps=5"])
    assert str(info.value) == "typo.yaml: data.tile_sise: unknown key; did you mean data.tile_size?"


def test_a_misspelt_set_key_names_its_flag_and_the_closest_key():
    with pytest.raises(ConfigError) as info:
        load_config(CONFIGS / "demo.yaml", ["objective.bta=0.5", "train.lr=1e-3"])
    assert str(info.value) == (
        "--set objective.bta=0.5: objective.bta: unknown key; did you mean objective.beta?"
    )
    with pytest.raises(ConfigError, match=r"--set dta\.tile_size=32: dta: unknown key; did you "):
        load_config(CONFIGS / "demo.yaml", ["dta.tile_size=32"])
    # nothing close: the spelling hint, no guess
    with pytest.raises(ConfigError, match=r"train\.zzz: unknown key \(check the spelling"):
        load_config(CONFIGS / "demo.yaml", ["train.zzz=1"])
