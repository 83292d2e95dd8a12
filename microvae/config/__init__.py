"""The run configuration and the model file: below both training and inference.

Training writes them and inference reads them, so neither layer imports the other for them.
"""

from .modelfile import (
    FORMAT,
    FORMAT_VERSION,
    ModelFileError,
    check_changeable,
    read_model_file,
    save_model_file,
    write_calibration,
)
from .package import TOP_PRIOR, WEIGHTS
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
    "apply_overrides",
    "check_changeable",
    "ConfigError",
    "find_config",
    "FORMAT",
    "FORMAT_VERSION",
    "load_config",
    "ModelFileError",
    "PRESETS",
    "read_model_file",
    "RunConfig",
    "save_config",
    "save_model_file",
    "shipped_configs",
    "TOP_PRIOR",
    "TrainConfig",
    "WEIGHTS",
    "write_calibration",
]
