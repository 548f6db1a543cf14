"""The weights file format: weights + config in one file.

Format (a ``torch.save`` dict, loadable with ``weights_only=True``)::

    {"format": "canocaps.capsules", "version": 1,
     "config": CapsulesConfig.to_dict(), "state_dict": {...}, "metadata": {...}}

This module only reads and writes the format; :meth:`CanonicalCapsules.save` /
:meth:`CanonicalCapsules.load` (``canocaps.model.network``) build on it. Trainer
checkpoints (``last.pt`` / ``best.pt`` of a run) are converted to this format by
``canocaps export`` (:func:`canocaps.recipes.capsules.export_weights`).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import torch

from canocaps._files import atomic_path
from canocaps.errors import CanocapsInputError, CanocapsWeightsError
from canocaps.model.config import CapsulesConfig

__all__ = ["write_weights", "read_weights", "FORMAT", "VERSION"]

FORMAT = "canocaps.capsules"
VERSION = 1


def write_weights(path: str | os.PathLike, config: CapsulesConfig, state_dict: Mapping[str, torch.Tensor],
                  force: bool = False, metadata: Mapping[str, Any] | None = None) -> Path:
    """Write ``state_dict`` (moved to CPU) + ``config`` atomically (no overwrite without ``force``)."""
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "config": config.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in state_dict.items()},
        "metadata": dict(metadata or {}),
    }
    with atomic_path(path, force) as tmp:
        torch.save(payload, tmp)
    return Path(path)


def read_weights(path: str | os.PathLike, map_location: str | torch.device = "cpu"
                 ) -> tuple[CapsulesConfig, dict[str, torch.Tensor], dict[str, Any]]:
    """``(config, state_dict, metadata)`` of a file written by :func:`write_weights`.

    Loads with ``weights_only=True`` (no code runs). Raises :class:`CanocapsWeightsError`
    (one line) when the file is missing, not a weights file, or has a bad config.
    """
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
                                   "convert them with canocaps export)")
    if int(obj.get("version", 0)) > VERSION:
        raise CanocapsWeightsError(f"{p}: weights format version {obj.get('version')} is newer than supported")
    cfg_dict, state = obj.get("config"), obj.get("state_dict")
    if not isinstance(cfg_dict, dict) or not isinstance(state, dict):
        raise CanocapsWeightsError(f"{p}: not a canocaps weights file (no model config / state)")
    try:
        config = CapsulesConfig.from_dict(cfg_dict)
    except CanocapsInputError as exc:
        raise CanocapsWeightsError(f"{p}: bad model config: {exc}") from None
    meta = obj.get("metadata")
    return config, state, dict(meta) if isinstance(meta, dict) else {}
