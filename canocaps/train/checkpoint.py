"""Saving and restoring training checkpoints (atomic writes, one-line errors).

A trainer checkpoint is *data*: tensors and plain Python containers (dict, list, tuple,
str, int, float, bool, None), so it loads with ``torch.load(weights_only=True)`` and
loading one never runs code. Random-generator states are stored as tensors
(:func:`rng_state`), and :func:`save_checkpoint` refuses a state that would need
unpickling anything else (naming the entry), so an unloadable checkpoint is never written.

Format (``FORMAT``)::

    {"format": "canocaps-trainer-v2", "module": state_dict, "optimizer": ..., "scheduler": ...,
     "scaler": ..., "trainer": {"global_step", "epoch", "batch_in_epoch", "best_score",
     "pending"}, "callbacks": [{"name", "state"}], "config": TrainConfig.to_dict(), "rng": rng_state()}
"""
from __future__ import annotations

import pickle
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from canocaps._files import atomic_path
from canocaps.errors import CanocapsWeightsError

FORMAT = "canocaps-trainer-v2"
_WEIGHTS_FORMAT = "canocaps.capsules"  # canocaps.model.checkpoint.FORMAT (train must not import model)
_PLAIN = (torch.Tensor, str, bytes, int, float, bool, complex, type(None), torch.Size, torch.dtype, torch.device)


def save_checkpoint(state: dict[str, Any], path: str | Path) -> Path:
    """``torch.save`` ``state`` to ``path`` atomically, replacing an older checkpoint.

    Raises ``TypeError`` (one line, naming the entry) when ``state`` holds anything that
    ``torch.load(weights_only=True)`` would refuse (a numpy array, a custom object ...).
    """
    with atomic_path(path, force=True) as tmp:
        torch.save(state, tmp)
        unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(tmp)
        if unsafe:
            where = _first_unplain(state) or f"an object of {unsafe[0]}"
            raise TypeError(f"checkpoint {path} not written: {where}; checkpoints hold only tensors "
                            "and plain Python data (dict, list, tuple, str, numbers, None)")
    return Path(path)


def _first_unplain(obj: Any, where: str = "state") -> str | None:
    """Where in ``obj`` the first value that is not a tensor or plain data sits (None if nowhere)."""
    if isinstance(obj, _PLAIN):
        return None
    if isinstance(obj, dict):
        for k, v in obj.items():
            found = _first_unplain(k, f"{where} key") or _first_unplain(v, f"{where}[{k!r}]")
            if found:
                return found
        return None
    if isinstance(obj, (list, tuple, set, frozenset)):
        for i, v in enumerate(obj):
            found = _first_unplain(v, f"{where}[{i}]")
            if found:
                return found
        return None
    return f"{where} is a {type(obj).__module__}.{type(obj).__qualname__}"


def read_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint dict with ``weights_only=True`` (nothing in the file is executed).

    Raises :class:`CanocapsWeightsError` with one line naming ``path`` when the file is
    missing, unreadable (truncated, not a torch file), would need unpickling code, or is
    not a dict.
    """
    path = Path(path)
    if not path.is_file():
        raise CanocapsWeightsError(f"{path}: checkpoint not found")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        raise CanocapsWeightsError(_refusal(path, e)) from None
    except Exception as e:  # torch raises many kinds for corrupt files
        raise CanocapsWeightsError(f"{path}: not a readable checkpoint (truncated, or not a torch file: "
                                   f"{type(e).__name__})") from None
    if not isinstance(state, dict):
        raise CanocapsWeightsError(f"{path}: not a canocaps checkpoint (holds a {type(state).__name__}, not a dict)")
    return state


def _refusal(path: Path, exc: BaseException) -> str:
    """One line for a file ``torch.load(weights_only=True)`` would not unpickle."""
    try:
        unsafe = list(torch.serialization.get_unsafe_globals_in_checkpoint(path))
    except Exception:  # not a zip checkpoint: the unpickler's own words name the global, if any
        unsafe = re.findall(r"GLOBAL (\S+) was not an allowed global", str(exc))[:1]
    if unsafe:
        return (f"{path}: refused: it holds pickled Python objects ({', '.join(unsafe[:3])}) that could run "
                "code on loading (not a canocaps checkpoint, or one written before canocaps stored "
                "checkpoints as plain data)")
    return f"{path}: not a readable checkpoint (truncated, or not a torch file: {type(exc).__name__})"


def check_trainer_checkpoint(state: dict[str, Any], path: str | Path) -> dict[str, Any]:
    """Return ``state`` if it is a trainer checkpoint that can resume a run; else raise
    :class:`CanocapsWeightsError` with one line saying what the file is instead."""
    fmt = state.get("format")
    if fmt == _WEIGHTS_FORMAT:
        raise CanocapsWeightsError(f"{path}: a standalone weights file ({fmt}), not a trainer checkpoint: "
                                   "it holds no optimizer or position to resume from")
    if fmt != FORMAT:
        if state and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
            raise CanocapsWeightsError(f"{path}: a bare state dict (weights only), not a trainer checkpoint: "
                                       "it holds no optimizer or position to resume from")
        if isinstance(fmt, str) and fmt.startswith("canocaps-trainer-"):
            raise CanocapsWeightsError(f"{path}: trainer checkpoint format {fmt!r}, this canocaps reads {FORMAT!r}")
        raise CanocapsWeightsError(f"{path}: not a canocaps trainer checkpoint (no trainer state)")
    trainer = state.get("trainer")
    if not isinstance(state.get("module"), dict) or not isinstance(trainer, dict) or not all(
            isinstance(trainer.get(k), int) for k in ("global_step", "epoch", "batch_in_epoch")):
        raise CanocapsWeightsError(f"{path}: damaged trainer checkpoint (module weights or position missing)")
    return state


def read_trainer_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """:func:`read_checkpoint` + :func:`check_trainer_checkpoint`."""
    return check_trainer_checkpoint(read_checkpoint(path, map_location), path)


def load_checkpoint(path: str | Path, module: torch.nn.Module, map_location: str | torch.device = "cpu",
                    strict: bool = True) -> dict[str, Any]:
    """Restore ``module``'s weights from a trainer checkpoint (``last.pt`` / ``best.pt``).

    A bare state dict is accepted too. Returns the whole checkpoint dict (``trainer`` holds
    ``global_step``, ``epoch`` ...). Errors: :class:`CanocapsWeightsError`, one line.
    """
    state = read_checkpoint(path, map_location)
    if state.get("format") == _WEIGHTS_FORMAT:
        weights = state.get("state_dict")
    else:
        weights = state.get("module", state)
    if not isinstance(weights, dict) or not all(isinstance(v, torch.Tensor) for v in weights.values()):
        raise CanocapsWeightsError(f"{path}: no model weights inside (not a trainer checkpoint or state dict)")
    try:
        module.load_state_dict(weights, strict=strict)
    except Exception as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise CanocapsWeightsError(f"{path} does not fit this model: {first}") from None
    return state


def capture_rng() -> tuple[Any, ...]:
    """The generators' states as their libraries return them (cheap; see :func:`rng_state`)."""
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    return torch.get_rng_state(), np.random.get_state(), random.getstate(), cuda


def rng_state(captured: tuple[Any, ...] | None = None) -> dict[str, Any]:
    """Every random generator the training loop touches (now, or as :func:`capture_rng`
    returned them), as tensors and plain data."""
    torch_state, (name, key, pos, has_gauss, cached), (version, internal, gauss), cuda = captured or capture_rng()
    state: dict[str, Any] = {
        "torch": torch_state,
        "numpy": {"name": str(name), "key": torch.from_numpy(np.asarray(key, dtype=np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "python": {"version": int(version), "state": torch.tensor(internal, dtype=torch.int64),
                   "gauss": None if gauss is None else float(gauss)},
    }
    if cuda is not None:
        state["cuda"] = list(cuda)
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` returned; raises :class:`CanocapsWeightsError` if malformed."""
    try:
        torch.set_rng_state(state["torch"].cpu())
        n = state["numpy"]
        np.random.set_state((n["name"], n["key"].cpu().numpy().astype(np.uint32), int(n["pos"]),
                             int(n["has_gauss"]), float(n["cached_gaussian"])))
        p = state["python"]
        random.setstate((int(p["version"]), tuple(int(v) for v in p["state"].tolist()), p["gauss"]))
        if "cuda" in state and torch.cuda.is_available():
            for i, s in enumerate(state["cuda"][:torch.cuda.device_count()]):
                torch.cuda.set_rng_state(s.cpu(), i)
    except (KeyError, TypeError, ValueError, AttributeError, RuntimeError) as e:
        raise CanocapsWeightsError(f"damaged random-generator state in checkpoint ({type(e).__name__})") from None


def seed_everything(seed: int) -> None:
    """Seed python ``random``, numpy's global generator and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
