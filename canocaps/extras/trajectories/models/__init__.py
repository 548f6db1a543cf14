"""Trajectory models: RNN-Gauss, VRNN-single, VRNN-indep and the macro-intent model.

All subclass :class:`~.base.TrajectoryModel` (the :mod:`canocaps.train` module protocol:
``training_step`` / ``validation_step``, loss = negative ELBO in nats per sequence) and
share ``sample(prefix, seq_len, macro=None, fix_macro=None, generator=None)``.
"""
from __future__ import annotations

from typing import Any

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
    from canocaps.extras.trajectories.labeling import build_by_name

    return build_by_name(MODELS, name, "model", "hyper-parameters", **hparams)


__all__ = ["MODELS", "MacroVRNN", "RNNGauss", "TrajectoryModel", "VRNNIndep", "VRNNSingle", "build_model"]
