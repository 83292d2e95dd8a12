"""The run configuration and the model file: below both training and inference.

Training writes them and inference reads them, so neither layer imports the other for them.
"""

from .modelfile import (
    FORMAT,
    FORMAT_VERSION,
    ModelFileError,
    read_model_file,
    save_model_file,
)
from .run import (
    PRESETS,
    ConfigError,
    RunConfig,
    TrainConfig,
    apply_overrides,
    find_config,
    load_config,
    save_config,
    shipped_configs,
)

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "ConfigError",
    "ModelFileError",
    "RunConfig",
    "TrainConfig",
    "apply_overrides",
    "PRESETS",
    "find_config",
    "load_config",
    "read_model_file",
    "save_config",
    "save_model_file",
    "shipped_configs",
]
