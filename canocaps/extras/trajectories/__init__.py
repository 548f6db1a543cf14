"""Multi-agent trajectories with programmatic weak supervision (Zhan et al., ICLR 2019).

- :mod:`.boids` — a vectorised, seeded boids simulator (friendly / unfriendly flocks);
- :mod:`.basketball` — the SportVU ``(S, 50, 22)`` format, loader and normalisation;
- :mod:`.labeling` — labeling functions for macro-intents and the API to write new ones;
- :mod:`.datasets` — data folders and the torch Dataset;
- :mod:`.models` — RNN-Gauss, VRNN-single, VRNN-indep, the macro-intent model;
- :mod:`.metrics`, :mod:`.plots` — likelihood bounds, rollout statistics, pictures;
- :mod:`.experiments` / :mod:`.cli` — ``canocaps extras trajectories {simulate,label,train,sample,eval}``.

Every model trains through :class:`canocaps.train.Trainer`. See ``docs/extras_trajectories.md``.
"""
from canocaps.extras.trajectories.boids import BoidsConfig, simulate
from canocaps.extras.trajectories.labeling import (
    Grid,
    LabelingFunction,
    get_labeling_function,
    list_labeling_functions,
    make_labeling_function,
    register_labeling_function,
)
from canocaps.extras.trajectories.models import MacroVRNN, RNNGauss, VRNNIndep, VRNNSingle, build_model

__all__ = [
    "BoidsConfig", "Grid", "LabelingFunction", "MacroVRNN", "RNNGauss", "VRNNIndep", "VRNNSingle", "build_model",
    "get_labeling_function", "list_labeling_functions", "make_labeling_function", "register_labeling_function",
    "simulate",
]
