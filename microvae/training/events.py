"""What a training run tells the outside while it goes on, without Lightning: an application
that receives events from a training process (the napari plugin) unpickles them with this
module only, so Lightning and what it pulls in stay out of its process."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np

__all__ = ["StopFlag", "TrainingEvent"]


class StopFlag(Protocol):
    """What ``stop`` must offer; a :class:`threading.Event` does."""

    def is_set(self) -> bool: ...


@dataclass
class TrainingEvent:
    """One thing that happened in a run.

    kind:
        ``"start"`` (values: ``first_step``, the step a resumed run starts at),
        ``"step"`` (every ``every`` steps: loss, recon, kl, beta, bits_per_dim, kl_level_i,
        lr, grad_norm of the step, per tile or per pixel as logged),
        ``"validation"`` (values: the ``val/...`` numbers of that validation; ``verdict``
        the collapse verdict, ``"healthy"``, ``"partly collapsed"`` or ``"collapsed"``, and
        ``text`` the line that says why; ``preview`` the fixed validation tile and its
        reconstruction, float32 (T, T) each, in the data's units),
        ``"message"`` (a warning or note of the run, in ``text``),
        ``"stopped"`` (the stop request was obeyed at ``step``).
    step: optimisation steps done; max_steps: the run's ``train.max_steps``.
    """

    kind: Literal["start", "step", "validation", "message", "stopped"]
    step: int
    max_steps: int
    values: dict[str, float] = field(default_factory=dict)
    verdict: str | None = None
    preview: tuple[np.ndarray, np.ndarray] | None = None
    text: str | None = None
