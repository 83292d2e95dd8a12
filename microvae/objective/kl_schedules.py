"""KL weight schedules: linear warm-up and cyclical annealing (Fu et al. 2019)."""

from __future__ import annotations

from .config import ObjectiveConfig

__all__ = ["kl_weight", "in_warmup"]


def kl_weight(step: int, config: ObjectiveConfig) -> float:
    """beta_t at optimisation step ``step`` (0-based).

    - ``none``: beta from the start;
    - ``linear``: beta * min(1, step / warmup_steps);
    - ``cyclical``: in every cycle of ``cycle_steps``, a ramp from 0 to beta over the first
      ``cycle_ramp`` share of the cycle, then beta for the rest.
    """
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    if config.warmup == "none":
        return config.beta
    if config.warmup == "linear":
        if config.warmup_steps == 0:
            return config.beta
        return config.beta * min(1.0, step / config.warmup_steps)
    ramp = config.cycle_ramp * config.cycle_steps
    return config.beta * min(1.0, (step % config.cycle_steps) / ramp)


def in_warmup(step: int, config: ObjectiveConfig) -> bool:
    """Whether beta_t is still below beta."""
    return kl_weight(step, config) < config.beta
