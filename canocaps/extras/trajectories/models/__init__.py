"""Trajectory models: RNN-Gauss, VRNN-single, VRNN-indep and the macro-intent model.

All subclass :class:`~.base.TrajectoryModel` (the :mod:`canocaps.train` module protocol:
``training_step`` / ``validation_step``, loss = negative ELBO in nats per sequence) and
share ``sample(prefix, seq_len, macro=None, fix_macro=None, generator=None)``.
"""
from __future__ import annotations

from typing import Any

from canocaps.errors import CanocapsInputError
from canocaps.extras.trajectories.models.base import TrajectoryModel
from canocaps.extras.trajectories.models.macro import MacroVRNN
from canocaps.extras.trajectories.models.rnn_gauss import RNNGauss
from canocaps.extras.trajectories.models.vrnn import VRNNIndep, VRNNSingle

MODELS: dict[str, type[TrajectoryModel]] = {
    "rnn_gauss": RNNGauss,
    "vrnn_single": VRNNSingle,
    "vrnn_indep": VRNNIndep,
    "macro_vrnn": MacroVRNN,
}


def build_model(name: str, **hparams: Any) -> TrajectoryModel:
    """Instantiate a model by name (``rnn_gauss``, ``vrnn_single``, ``vrnn_indep``, ``macro_vrnn``)."""
    if name not in MODELS:
        raise CanocapsInputError(f"unknown model {name!r} (choose from {', '.join(MODELS)})")
    try:
        return MODELS[name](**hparams)
    except TypeError as exc:
        raise CanocapsInputError(f"bad hyper-parameters for {name}: {exc}") from None


__all__ = ["MODELS", "MacroVRNN", "RNNGauss", "TrajectoryModel", "VRNNIndep", "VRNNSingle", "build_model"]
