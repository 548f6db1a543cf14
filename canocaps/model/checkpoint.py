"""Weights + config in one file.

Format (a ``torch.save`` dict, loadable with ``weights_only=True``)::

    {"format": "canocaps.capsules", "version": 1,
     "config": CapsulesConfig.to_dict(), "state_dict": {...}, "metadata": {...}}

Trainer checkpoints (``last.pt`` / ``best.pt`` of a run) are converted to this format
by :func:`canocaps.model.training.export_weights`.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from canocaps._files import atomic_path
from canocaps.errors import CanocapsInputError, CanocapsWeightsError

if TYPE_CHECKING:
    from canocaps.model.network import CanonicalCapsules

__all__ = ["save_model", "load_model", "FORMAT", "VERSION"]

FORMAT = "canocaps.capsules"
VERSION = 1


def save_model(model: "CanonicalCapsules", path: str | os.PathLike, force: bool = False,
               metadata: dict[str, Any] | None = None) -> Path:
    """Save ``model`` weights (moved to CPU, float32 kept as is) + config atomically."""
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "config": model.config.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "metadata": dict(metadata or {}),
    }
    with atomic_path(path, force) as tmp:
        torch.save(payload, tmp)
    return Path(path)


def load_model(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> "CanonicalCapsules":
    """Rebuild a :class:`CanonicalCapsules` from :func:`save_model` output (eval mode).

    Raises :class:`CanocapsWeightsError` (one line) when the file is missing, not a
    checkpoint, or does not match its config.
    """
    from canocaps.model.config import CapsulesConfig
    from canocaps.model.network import CanonicalCapsules

    p = Path(path)
    if not p.is_file():
        raise CanocapsWeightsError(f"{p}: weights file not found")
    try:
        obj = torch.load(p, map_location=map_location, weights_only=True)
    except Exception as exc:  # corrupt / truncated / not a torch file
        raise CanocapsWeightsError(f"{p}: not a readable canocaps weights file ({type(exc).__name__})") from None
    if not isinstance(obj, dict):
        raise CanocapsWeightsError(f"{p}: not a canocaps weights file")
    if obj.get("format") != FORMAT:
        raise CanocapsWeightsError(f"{p}: not a canocaps weights file (trainer checkpoints: "
                                   "use canocaps.model.training.export_weights)")
    if int(obj.get("version", 0)) > VERSION:
        raise CanocapsWeightsError(f"{p}: weights format version {obj.get('version')} is newer than supported")
    cfg_dict, state = obj.get("config"), obj.get("state_dict")
    if not isinstance(cfg_dict, dict) or not isinstance(state, dict):
        raise CanocapsWeightsError(f"{p}: not a canocaps weights file (no model config / state)")
    try:
        config = CapsulesConfig.from_dict(cfg_dict)
    except CanocapsInputError as exc:
        raise CanocapsWeightsError(f"{p}: bad model config: {exc}") from None
    model = CanonicalCapsules(config)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "mismatch"
        raise CanocapsWeightsError(f"{p}: weights do not match the config ({first})") from None
    model.to(map_location)
    model.eval()
    return model
