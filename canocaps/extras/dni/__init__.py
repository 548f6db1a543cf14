"""Synthetic gradients and decoupled neural interfaces on canocaps' shared trainer.

Jaderberg et al. 2016 ("Decoupled Neural Interfaces using Synthetic Gradients") and
Czarnecki et al. 2017 ("Understanding Synthetic Gradients and Decoupled Neural
Interfaces"). Pieces:

- :mod:`.synthetic` — SG modules (linear / MLP, dense / conv, optionally label-conditioned);
- :mod:`.feedback` — FA and DFA as fixed-random-weight gradient estimators;
- :mod:`.decoupled` — :class:`DNIModule`, a block-split network whose ``training_step``
  returns a surrogate loss giving each block its (synthetic) update;
- :mod:`.data` — bundled 8x8 digits, MNIST IDX reader, synthetic regression data;
- :mod:`.analysis` — closed-form least squares, linear CKA;
- :mod:`.experiments` / :mod:`.cli` — the paper's four checkable claims.
"""
from canocaps.extras.dni.analysis import least_squares, linear_cka, linear_cka_naive
from canocaps.extras.dni.data import load_digits, load_mnist, read_idx
from canocaps.extras.dni.decoupled import MODES, DNIModule, cnn_layers, mlp_layers, per_sample_loss, split_sequential
from canocaps.extras.dni.feedback import DirectFeedbackSG, FAConv2d, FALinear, to_feedback_alignment
from canocaps.extras.dni.synthetic import LinearSG, MLPSG, SyntheticGradient, make_sg

__all__ = ["MODES", "DNIModule", "cnn_layers", "mlp_layers", "per_sample_loss", "split_sequential",
           "SyntheticGradient", "LinearSG", "MLPSG", "make_sg",
           "DirectFeedbackSG", "FALinear", "FAConv2d", "to_feedback_alignment",
           "load_digits", "load_mnist", "read_idx", "least_squares", "linear_cka", "linear_cka_naive"]
