"""canocaps: Canonical Capsules (Sun et al., NeurIPS 2021) for 3D point clouds.

Quick start::

    import canocaps
    model = canocaps.load_pretrained()
    res = model.canonicalize(points)          # points: (N, 3) or (B, N, 3)
    reg = canocaps.register(a, b)             # 4x4 transform mapping a onto b

Heavy submodules are imported lazily so that ``import canocaps`` stays fast.
"""
from __future__ import annotations

from importlib import import_module
from typing import Any

from canocaps.errors import CanocapsError, CanocapsInputError, CanocapsWarning, CanocapsWeightsError, OutputExistsError

__version__ = "0.1.0"

# public name -> "module:attribute"
_LAZY = {
    "load_pretrained": "canocaps.pretrained:load_pretrained",
    "register": "canocaps.heads.registration:register",
    "read_points": "canocaps.io:read_points",
    "write_points": "canocaps.io:write_points",
    "CanonicalCapsules": "canocaps.model:CanonicalCapsules",
}

__all__ = [
    "__version__",
    "CanocapsError",
    "CanocapsInputError",
    "CanocapsWarning",
    "CanocapsWeightsError",
    "OutputExistsError",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'canocaps' has no attribute {name!r}")
    module_name, attr = target.split(":")
    value = getattr(import_module(module_name), attr)
    globals()[name] = value
    return value
