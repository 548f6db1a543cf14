"""Run recipes: the layer that wires a model, its data and the shared trainer.

``recipes`` sits above :mod:`canocaps.model`, :mod:`canocaps.data` and
:mod:`canocaps.train` (none of which imports the others' run setup): run configs,
dataset building, the training run, evaluation loops and weight export live here, and
the ``canocaps train`` / ``canocaps eval equivariance`` / ``canocaps export`` commands
call them.

- :mod:`canocaps.recipes.capsules`: Canonical Capsules.
"""
