"""Choosing a torch device: CUDA, then Apple MPS, then the CPU."""

from __future__ import annotations

import torch

__all__ = ["pick_device", "release_memory"]


def pick_device(name: str | torch.device = "auto") -> torch.device:
    """``"auto"`` picks cuda, then mps, then cpu; other names are used as given."""
    if isinstance(name, torch.device):
        return name
    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def release_memory(device: str | torch.device) -> None:
    """Hand the cached GPU memory of ``device`` back to the driver (CUDA, MPS; no-op on CPU),
    e.g. after a run in an application that stays open."""
    device = torch.device(device) if not isinstance(device, torch.device) else device
    if device.type == "cuda" and torch.cuda.is_available():
        torch.cuda.empty_cache()
    elif device.type == "mps" and torch.backends.mps.is_available():
        torch.mps.empty_cache()
