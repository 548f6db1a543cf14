"""Neural Mechanics (Kunin et al. 2020): symmetries, conservation laws and their dynamics.

- :func:`detect_symmetries` finds translation / scale / rescale groups in any
  torch.fx-traceable model;
- :mod:`.quantities` evaluates each group's conserved quantity;
- :mod:`.dynamics` holds the closed forms (gradient flow, exact discrete SGD steps,
  momentum modified equation in its three damping regimes);
- :class:`MechanicsCallback` measures them during :class:`canocaps.train.Trainer` runs;
- :func:`run_experiment` / ``canocaps extras mechanics run`` run the digits experiments.
"""
from canocaps.extras.mechanics.callbacks import MechanicsCallback
from canocaps.extras.mechanics.dynamics import (damped_oscillator, damping_regime, forced_oscillator_step,
                                                gradient_flow, momentum_translation_step, sgd_step)
from canocaps.extras.mechanics.experiments import ExperimentConfig, run_experiment, run_with_model
from canocaps.extras.mechanics.quantities import quantity
from canocaps.extras.mechanics.symmetry import (Member, SymmetryGroup, SymmetryReport, detect_in_submodules,
                                                detect_symmetries)

__all__ = ["detect_symmetries", "detect_in_submodules", "SymmetryReport", "SymmetryGroup", "Member", "quantity", "gradient_flow",
           "sgd_step", "momentum_translation_step", "damped_oscillator", "damping_regime",
           "forced_oscillator_step", "MechanicsCallback", "ExperimentConfig", "run_experiment", "run_with_model"]
