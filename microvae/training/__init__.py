"""Training: the Lightning module, the run (``fit``), checkpoints, the monitor and its events.

The face is lazy (PEP 562): a name is imported from its module when it is first asked for, so
that ``from microvae.training import TrainingEvent`` (what an application that receives a
training process's events needs) does not import Lightning, and loading a model for
inference never does.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .events import StopFlag, TrainingEvent
    from .monitor import TrainingMonitor
    from .session import fit

_FACE = {
    "StopFlag": "events",
    "TrainingEvent": "events",
    "TrainingMonitor": "monitor",
    "fit": "session",
}

__all__ = ["StopFlag", "TrainingEvent", "TrainingMonitor", "fit"]  # = the keys of _FACE


def __getattr__(name: str) -> Any:
    if name not in _FACE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_FACE[name]}", __name__), name)
