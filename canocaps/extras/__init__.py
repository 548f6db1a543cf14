"""Companion papers implemented on canocaps' shared trainer.

- :mod:`canocaps.extras.dni` — synthetic gradients / decoupled neural interfaces.
- :mod:`canocaps.extras.mechanics` — Neural Mechanics: symmetries and conservation laws.
- :mod:`canocaps.extras.trajectories` — programmatic weak supervision for multi-agent trajectories.

Each runs as ``canocaps extras NAME ...`` or ``python -m canocaps.extras.NAME ...``.
The extras import :mod:`canocaps.train` (and ops), never :mod:`canocaps.model`.
"""

AVAILABLE = ("dni", "mechanics", "trajectories")
