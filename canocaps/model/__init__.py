"""Canonical Capsules (Sun et al., NeurIPS 2021): network, losses, training module.

Public API::

    from canocaps.model import CanonicalCapsules, CapsulesConfig
    model = CanonicalCapsules(CapsulesConfig.preset("cpu"))
    res = model.canonicalize(points)        # (N, 3) or (B, N, 3) -> CanonicalizationResult
    model.save("w.pt"); CanonicalCapsules.load("w.pt")

The trainer module is :mod:`canocaps.model.module`; run setup (configs, data, the trainer)
is the recipe :mod:`canocaps.recipes.capsules`.
"""
from __future__ import annotations

from canocaps.model.config import CapsulesConfig, LossWeights
from canocaps.model.network import CanonicalCapsules, load_model, save_model
from canocaps.model.results import (CanonicalizationResult, CanonicalizeResult, CapsulesOutput,
                                     ReconstructionResult, ReconstructResult)

__all__ = [
    "CanonicalCapsules", "CapsulesConfig", "LossWeights", "CanonicalizationResult", "CapsulesOutput",
    "ReconstructionResult", "CanonicalizeResult", "ReconstructResult", "save_model", "load_model",
]
