"""Find and load the shipped Canonical Capsules weights.

Weights are looked up, in order, in ``$CANOCAPS_WEIGHTS_DIR`` and in the package's own
``canocaps/resources/weights`` (package data, in the wheel; :mod:`canocaps._resources`), so
the lookup does not depend on the working directory or a checkout. Nothing is ever downloaded. ``name`` may also be a path to a
weights file written by :meth:`canocaps.model.CanonicalCapsules.save` (or exported from
a training run with ``canocaps export``).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from canocaps._resources import WEIGHTS_ENV, weights_dirs
from canocaps.errors import CanocapsWeightsError

if TYPE_CHECKING:
    from canocaps.model import CanonicalCapsules

__all__ = ["DEFAULT_WEIGHTS", "WEIGHTS_ENV", "weights_dirs", "available_weights", "resolve_weights",
           "resolve_device", "load_pretrained"]

#: Name of the weights :func:`load_pretrained` loads by default.
DEFAULT_WEIGHTS = "canocaps_equivariant_cpu"


def available_weights() -> list[str]:
    """Names (file stems) of the ``*.pt`` weights found in :func:`weights_dirs`."""
    names: list[str] = []
    for d in weights_dirs():
        if d.is_dir():
            names += [p.stem for p in sorted(d.glob("*.pt")) if p.stem not in names]
    return names


def resolve_weights(name: str | os.PathLike | None = None) -> Path:
    """The weights file for ``name`` (None = :data:`DEFAULT_WEIGHTS`; a name or a path).

    Raises :class:`CanocapsWeightsError` (one line: where it looked, how to get weights).
    """
    name = DEFAULT_WEIGHTS if name is None else name
    if not isinstance(name, (str, os.PathLike)):
        raise CanocapsWeightsError(f"weights: expected a name or a path, got {type(name).__name__}")
    p = Path(name).expanduser()
    looks_like_path = isinstance(name, os.PathLike) or os.sep in str(name) or p.suffix == ".pt"
    if p.is_file():
        return p
    if looks_like_path and (p.is_absolute() or p.parent != Path(".")):
        raise CanocapsWeightsError(f"weights file {p} not found")
    stem = p.name[:-3] if p.name.endswith(".pt") else p.name
    for d in weights_dirs():
        cand = d / f"{stem}.pt"
        if cand.is_file():
            return cand
    where = ", ".join(str(d) for d in weights_dirs())
    have = available_weights()
    hint = f" (available: {', '.join(have)})" if have else ""
    raise CanocapsWeightsError(
        f"weights {stem!r} not found in {where}{hint}; set ${WEIGHTS_ENV}, pass a path, "
        f"use a shipped pretrained name, "
        f"or train your own: canocaps train --config capsules_cpu --out runs/x")


def resolve_device(device: Any = None) -> Any:
    """``None``/``"auto"`` -> CUDA when available else CPU; anything else -> ``torch.device``."""
    import torch

    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        from canocaps.errors import CanocapsInputError

        raise CanocapsInputError(f"--device: unknown device {device!r} ({exc})") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        from canocaps.errors import CanocapsInputError

        raise CanocapsInputError(f"--device {device}: CUDA is not available on this machine")
    return dev


#: (absolute path, mtime_ns, size, device) -> the model loaded from it (see :func:`load_pretrained`)
_CACHE: dict[tuple[str, int, int, str], "CanonicalCapsules"] = {}


def load_pretrained(name: str | os.PathLike | None = None, device: Any = None,
                    cache: bool = True) -> "CanonicalCapsules":
    """Load shipped (or any saved) Canonical Capsules weights, in eval mode.

    Weights are loaded once per process: calls with the same file (same path, modification
    time and size) and device return **the same model object**, so ``canocaps.register(a, b)``
    in a loop pays the load once. Inference (``canonicalize``, ``reconstruct``, the heads)
    never changes it. To train or otherwise change the model, ask for a private copy
    with ``cache=False`` (or ``copy.deepcopy`` the shared one).

    Args:
        name: weights name (default :data:`DEFAULT_WEIGHTS`, the model trained on the
            bundled procedural shapes) or a path to a ``.pt`` weights file.
        device: ``"cpu"``, ``"cuda"``, a ``torch.device``; None/"auto" picks CUDA if present.
        cache: False loads a new model object (neither taken from nor put in the cache).

    Returns:
        :class:`canocaps.model.CanonicalCapsules` on ``device``; use ``model.canonicalize(points)``.

    Raises:
        CanocapsWeightsError: weights not found or unreadable.
    """
    path = resolve_weights(name)  # before importing torch: a missing file fails fast
    dev = resolve_device(device)
    st = path.stat()
    key = (str(path.resolve()), st.st_mtime_ns, st.st_size, str(dev))
    if cache and key in _CACHE:
        return _CACHE[key]
    from canocaps.model import CanonicalCapsules

    model = CanonicalCapsules.load(path, map_location=dev).to(dev).eval()
    if cache:
        for old in [k for k in _CACHE if k[0] == key[0] and k[3] == key[3]]:  # a rewritten file: drop the stale one
            del _CACHE[old]
        _CACHE[key] = model
    return model
