"""Non-finite losses and gradients: detected, named, never silently propagated.

``check_finite`` raises at once, naming the step and the term. ``NonFiniteGuard`` is what a
training loop uses: it skips an update whose loss or gradients are not finite, counts the
skips, and stops the run with a clear message when too many come in a row.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..errors import NonFiniteError

__all__ = ["check_finite", "nonfinite_gradients", "NonFiniteGuard"]

_ADVICE = "lower the learning rate, enable gradient clipping, or check the data for NaN/Inf"


def _what(t: Tensor) -> str:
    return "NaN" if torch.isnan(t).any() else "infinite"


def check_finite(step: int, terms: dict[str, Tensor | float]) -> None:
    """Raise NonFiniteError naming the first non-finite term, e.g. ``kl_level_2``."""
    for name, value in terms.items():
        t = torch.as_tensor(value)
        if not torch.isfinite(t).all():
            raise NonFiniteError(f"step {step}: {name} is {_what(t)}; {_ADVICE}")


def nonfinite_gradients(model: nn.Module) -> list[str]:
    """Names of parameters whose gradient holds NaN or Inf."""
    return [
        name
        for name, p in model.named_parameters()
        if p.grad is not None and not torch.isfinite(p.grad).all()
    ]


class NonFiniteGuard:
    """Decides per step whether an update may be applied.

    ``ok(step, terms, model)`` returns False (skip this update) when a term or a gradient is
    not finite, and raises NonFiniteError after ``max_consecutive`` skips in a row, naming the
    step and what went bad. ``skipped`` counts all skips (to log).
    """

    def __init__(self, max_consecutive: int = 20):
        self.max_consecutive = max_consecutive
        self.skipped = 0
        self.consecutive = 0
        self.last_problem: str | None = None

    def ok(self, step: int, terms: dict[str, Tensor | float], model: nn.Module | None) -> bool:
        problem = None
        for name, value in terms.items():
            t = torch.as_tensor(value)
            if not torch.isfinite(t).all():
                problem = f"{name} is {_what(t)}"
                break
        if problem is None and model is not None:
            bad = nonfinite_gradients(model)
            if bad:
                problem = f"gradient of {bad[0]} is not finite ({len(bad)} parameters)"
        if problem is None:
            self.consecutive = 0
            return True
        self.skipped += 1
        self.consecutive += 1
        self.last_problem = f"step {step}: {problem}"
        if self.consecutive >= self.max_consecutive:
            raise NonFiniteError(
                f"{self.consecutive} updates in a row skipped, the last at {self.last_problem}; "
                f"{_ADVICE}"
            )
        return False
