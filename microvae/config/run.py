"""The run configuration: data, model, likelihood, objective and training, from YAML.

Every section is a validated pydantic model; unknown keys and bad values are errors naming the
key (``model.levels: ...``). ``--set key.sub=value`` overrides are parsed as YAML values.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..data import DataConfig
from ..errors import MicrovaeError
from ..io import atomic_path
from ..model import LikelihoodConfig, ModelConfig
from ..objective import ObjectiveConfig

__all__ = [
    "ConfigError",
    "TrainConfig",
    "RunConfig",
    "load_config",
    "save_config",
    "apply_overrides",
    "PRESETS",
    "find_config",
    "shipped_configs",
]


class ConfigError(MicrovaeError, ValueError):
    """A configuration file or override is invalid; the message names the key."""


class TrainConfig(BaseModel):
    """The optimisation and the machine."""

    model_config = ConfigDict(extra="forbid")

    max_steps: int = Field(20000, ge=1, description="optimisation steps")
    batch_size: int = Field(16, ge=1, le=4096)
    lr: float = Field(1e-3, gt=0, le=1.0)
    weight_decay: float = Field(0.0, ge=0, le=1.0)
    lr_schedule: Literal["cosine", "constant"] = Field(
        "cosine",
        description="cosine decay to lr * lr_final over the last lr_decay_share of "
        "the steps, or constant",
    )
    lr_decay_share: float = Field(0.3, gt=0, le=1, description="cosine: share of steps decaying")
    lr_warmup_steps: int = Field(0, ge=0, description="linear learning-rate warm-up")
    lr_final: float = Field(0.05, ge=0, le=1, description="cosine: share of lr at max_steps")
    grad_clip: float = Field(50.0, gt=0, description="gradient norm clipping")
    skip_spikes: float = Field(
        50.0,
        ge=0,
        description="skip updates whose gradient norm is this times the recent median (0: never)",
    )
    worse_tolerance: float = Field(
        0.1, gt=0, description="warn when validation bits/dim is this much above its best"
    )
    max_skipped: int = Field(20, ge=1, description="consecutive non-finite steps before stopping")
    ema: bool = Field(False, description="keep an exponential moving average of the weights")
    ema_decay: float = Field(0.999, gt=0, lt=1)
    val_every: int = Field(500, ge=1, description="validate every this many steps")
    checkpoint_every: int = Field(200, ge=1, description="save last.ckpt every this many steps")
    devices: int | str = Field("auto", description="number of devices, or 'auto'")
    accelerator: Literal["auto", "cpu", "cuda", "gpu", "mps"] = "auto"
    strategy: str = Field("auto", description="e.g. 'ddp' for several GPUs")
    precision: Literal["auto", "32", "bf16-mixed"] = Field(
        "auto", description="auto: bf16-mixed on CUDA where supported, else 32"
    )
    seed: int = 0


class RunConfig(BaseModel):
    """Everything a training run needs; ``model.tile_size`` follows ``data.tile_size`` (and
    ``model.tile_depth`` ``data.tile_depth``)."""

    model_config = ConfigDict(extra="forbid")

    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    likelihood: LikelihoodConfig = LikelihoodConfig()
    objective: ObjectiveConfig = ObjectiveConfig()
    train: TrainConfig = TrainConfig()

    @model_validator(mode="before")
    @classmethod
    def _tile_size_once(cls, values: Any) -> Any:
        """model.tile_size and model.tile_depth follow data.tile_size and data.tile_depth:
        the data's tile is the one the model is built for, set in one place."""
        if isinstance(values, dict):
            model = values.get("model")
            for key in ("tile_size", "tile_depth"):
                if isinstance(model, dict) and key in model:
                    raise ValueError(f"model.{key} is set from data.{key}; set data.{key}")
            data = values.get("data") or {}
            tile = {
                key: data.get(key, DataConfig.model_fields[key].default)
                if isinstance(data, dict)
                else getattr(data, key)
                for key in ("tile_size", "tile_depth")
            }
            if isinstance(model, ModelConfig):
                model = model.model_dump(exclude={"tile_size", "tile_depth"})
            values = {**values, "model": {**(model or {}), **tile}}
        return values

    @model_validator(mode="after")
    def _consistent(self) -> RunConfig:
        if self.model.dims == 2:
            for key in ("tile_depth", "z_over_xy"):
                if key in self.data.model_fields_set:
                    raise ValueError(
                        f"data.{key} is for 3D models; set model.dims 3, or remove data.{key}"
                    )
        if self.data.intensity_augment and self.likelihood.name == "dmol":
            raise ValueError(
                "data.intensity_augment rescales intensities, which changes the discrete noise "
                "that likelihood 'dmol' models; turn it off or use gaussian/laplace"
            )
        return self

    def to_dict(self) -> dict:
        """Plain data (YAML/JSON-safe), without the derived model.tile_size; a 2D model's
        config leaves out the 3D fields, so that it reads (and digests) as it did before
        microvae had them."""
        d = self.model_dump(mode="json")
        d["model"].pop("tile_size", None)
        d["model"].pop("tile_depth", None)
        if d["model"].get("z_kernels") is None:  # as 3D files read before it existed
            d["model"].pop("z_kernels", None)
        if d["model"].get("dims") == 2:
            for key in ("dims", "z_strides"):
                d["model"].pop(key, None)
            for key in ("tile_depth", "z_over_xy"):
                d["data"].pop(key, None)
        return d


def yaml_problem(exc: yaml.YAMLError) -> str:
    """A YAML error in one line: where (line and column, 1-based) and what."""
    mark = getattr(exc, "problem_mark", None)
    what = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return f"{where}{what}"


def _fields_at(loc: tuple) -> list[str]:
    """The valid keys of the config section at ``loc`` (("data",) -> DataConfig's fields; ()
    -> the sections); empty where ``loc`` is not a section."""
    model: type[BaseModel] = RunConfig
    for part in loc:
        field = model.model_fields.get(str(part))
        annotation = getattr(field, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    derived = {"tile_size", "tile_depth"} if model is ModelConfig else set()
    return [k for k in model.model_fields if k not in derived]


def _did_you_mean(loc: tuple) -> str:
    """ "; did you mean data.tile_size?" for a misspelt key at ``loc``, or ""."""
    close = difflib.get_close_matches(str(loc[-1]), _fields_at(loc[:-1]), n=1, cutoff=0.6)
    return f"; did you mean {'.'.join([*map(str, loc[:-1]), close[0]])}?" if close else ""


def _format_validation(exc: ValidationError, source: str, overridden: dict[tuple, str]) -> str:
    """One line: each error with its key, grouped by where the key came from (``source``, the
    file, or the ``--set`` item in ``overridden``, by key path)."""
    by_origin: dict[str, list[str]] = {}
    for err in exc.errors():
        loc = tuple(str(p) for p in err["loc"])
        key = ".".join(loc) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key" + (_did_you_mean(loc) or " (check the spelling; see configs/)")
        got = (
            f" (got {err['input']!r})"
            if "input" in err
            and err["type"] != "extra_forbidden"
            and not isinstance(err["input"], dict)
            else ""
        )
        # the --set item that gave this key (or a section above it); a check over a whole
        # section that --set items changed names the file and those items
        # model.tile_size is data.tile_size's copy: its checks are data.tile_size's (and
        # model.tile_depth's are data.tile_depth's)
        at = loc
        for derived in ("tile_size", "tile_depth"):
            if loc == ("model",) and f"data.{derived}" in msg:
                at = ("data", derived)
        origin = next(
            (f"--set {item}" for path, item in overridden.items() if at[: len(path)] == path),
            None,
        )
        if origin is None:
            inside = [item for path, item in overridden.items() if path[: len(at)] == at]
            origin = f"{source} with --set {', '.join(inside)}" if inside else source
        by_origin.setdefault(origin, []).append(f"{key}: {msg}{got}")
    return "; ".join(f"{origin}: " + "; ".join(lines) for origin, lines in by_origin.items())


def _validate(data: dict, source: str, overridden: dict[tuple, str] | None = None) -> RunConfig:
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_validation(exc, source, overridden or {})) from None


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Return a copy of ``data`` with ``key.sub=value`` overrides (values parsed as YAML)."""
    data = yaml.safe_load(yaml.safe_dump(data)) or {}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected key.sub=value, e.g. train.lr=5e-4")
        key, raw = item.split("=", 1)
        parts = key.strip().split(".")
        if len(parts) < 2 or not all(parts):
            raise ConfigError(f"--set {item!r}: name a section and a key, e.g. objective.beta=0.5")
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            raise ConfigError(
                f"--set {item!r}: value is not valid YAML ({yaml_problem(exc)})"
            ) from None
        node = data
        for p in parts[:-1]:
            if not isinstance(node.get(p, {}), dict):
                raise ConfigError(f"--set {item!r}: {p} is not a section")
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    return data


def load_config(
    source: str | os.PathLike | dict | RunConfig | None = None, overrides: list[str] = ()
) -> RunConfig:
    """A RunConfig from a YAML file, a preset's name (``"cpu"``, see :func:`shipped_configs`),
    a dict or a RunConfig, with ``--set`` overrides applied."""
    if isinstance(source, RunConfig):
        data, name = source.to_dict(), "config"
    elif isinstance(source, dict):
        data, name = source, "config"
    elif source is None:
        data, name = {}, "defaults"
    else:
        path = Path(source)
        if not path.is_file() and _is_name(source):
            path = find_config(str(source))  # a preset: "cpu", "mito2d", ...
        name = path.name
        if not path.is_file():
            raise ConfigError(
                f"{path}: config file not found; give a YAML file or a preset's name "
                f"({', '.join(shipped_configs())})"
            )
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{name}: not valid YAML ({yaml_problem(exc)})") from None
        if not isinstance(data, dict):
            raise ConfigError(
                f"{name}: expected sections (data, model, ...), got {type(data).__name__}"
            )
    overridden = {}
    for item in overrides:  # each key path -> the --set item that gave it, for messages
        key = item.split("=", 1)[0].strip()
        overridden[tuple(key.split("."))] = item
    if overrides:
        data = apply_overrides(data, list(overrides))
    return _validate(data, name, overridden)


PRESETS = Path(__file__).resolve().parents[1] / "configs"  # shipped inside the package


def _config_folders() -> list[Path]:
    """Where named configs are looked for: the presets shipped inside the package, then
    ``configs/`` of the current folder (a user's own)."""
    return [PRESETS, Path.cwd() / "configs"]


def shipped_configs() -> dict[str, Path]:
    """The named YAML configs (``"demo"``, ``"cpu"``, ...): the package's presets first, then
    those of ``configs/`` in the current folder."""
    found: dict[str, Path] = {}
    for folder in _config_folders():
        if folder.is_dir():
            for path in sorted(folder.glob("*.yaml")):
                found.setdefault(path.stem, path)
    return found


def find_config(name: str) -> Path:
    """The config named ``name`` (see :func:`shipped_configs`), or an error listing the
    names there are."""
    path = shipped_configs().get(name)
    if path is None:
        raise ConfigError(
            f"{name}: no config of that name (presets: {', '.join(shipped_configs())}; "
            "microvae configs lists them); pass a YAML file's path"
        )
    return path


def _is_name(source: str | os.PathLike) -> bool:
    """Whether ``source`` names a preset rather than a file: no folder, no suffix."""
    text = str(source)
    return "/" not in text and "\\" not in text and not Path(text).suffix


def save_config(config: RunConfig, path: str | os.PathLike) -> Path:
    """Write ``config`` as YAML (atomically)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
    return path
