"""Configuration of the training objective (validated; bad values name the field)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["ObjectiveConfig"]


class ObjectiveConfig(BaseModel):
    """ELBO = E_q[log p(x|z)] - beta_t * KL, with warm-up, free bits and KL balancing.

    Free bits (``free_bits`` = lambda nats): with ``free_bits_mode='channel'`` every latent
    channel of every level may carry lambda nats per latent position (its KL averaged over the
    batch and its positions) before the KL term pushes on it: below that, its KL costs nothing
    and gets no gradient. With ``'level'`` the same floor applies to each level's KL averaged
    over all its elements. 0 turns free bits off.

    KL balancing (``kl_balancing``, after NVAE): during warm-up, each level's KL is weighted by
    its share of the KL per latent element (detached, mean weight 1), so that levels that
    carry much KL are pushed harder and information spreads over the levels.
    """

    model_config = ConfigDict(extra="forbid")

    beta: float = Field(1.0, ge=0.0, le=100.0, description="weight of the KL term")
    warmup: Literal["linear", "cyclical", "none"] = "linear"
    warmup_steps: int = Field(1000, ge=0, description="steps from beta 0 to beta (linear)")
    cycle_steps: int = Field(2000, ge=1, description="cyclical: length of one cycle")
    cycle_ramp: float = Field(0.5, gt=0.0, le=1.0, description="cyclical: share of a cycle ramping")
    free_bits: float = Field(0.0, ge=0.0, le=10.0, description="nats per latent element")
    free_bits_mode: Literal["channel", "level"] = "channel"
    kl_balancing: bool = False

    @model_validator(mode="after")
    def _check(self) -> ObjectiveConfig:
        if self.warmup == "linear" and self.kl_balancing and self.warmup_steps == 0:
            raise ValueError("kl_balancing acts during warm-up: set warmup_steps > 0")
        return self
