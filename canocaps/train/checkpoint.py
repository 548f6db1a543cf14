"""Saving and restoring training checkpoints (atomic writes, one-line errors)."""
from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from canocaps._files import atomic_path
from canocaps.errors import CanocapsWeightsError


def save_checkpoint(state: dict[str, Any], path: str | Path) -> Path:
    """``torch.save`` ``state`` to ``path`` atomically, replacing an older checkpoint."""
    with atomic_path(path, force=True) as tmp:
        torch.save(state, tmp)
    return Path(path)


def read_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint dict; raise :class:`CanocapsWeightsError` with one line if that fails."""
    path = Path(path)
    if not path.is_file():
        raise CanocapsWeightsError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as e:  # torch raises many kinds for corrupt files
        raise CanocapsWeightsError(f"cannot read checkpoint {path}: {e.__class__.__name__}") from e
    if not isinstance(state, dict):
        raise CanocapsWeightsError(f"{path} is not a canocaps checkpoint")
    return state


def load_checkpoint(path: str | Path, module: torch.nn.Module, map_location: str | torch.device = "cpu",
                    strict: bool = True) -> dict[str, Any]:
    """Restore ``module``'s weights from a trainer checkpoint (``last.pt`` / ``best.pt``).

    Returns the whole checkpoint dict (``trainer`` holds ``global_step``, ``epoch`` ...).
    """
    state = read_checkpoint(path, map_location)
    weights = state.get("module", state)
    try:
        module.load_state_dict(weights, strict=strict)
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0]
        raise CanocapsWeightsError(f"{path} does not fit this model: {first}") from e
    return state


def rng_state() -> dict[str, Any]:
    """Every random generator the training loop touches."""
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"].cpu() if hasattr(state["torch"], "cpu") else state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
