"""Clouds in any units to the network and back: the one "canonicalise in input units" path.

Every head that feeds user clouds to a canonicaliser goes through here:

1. the model: the one given, else the shipped weights (:func:`resolve_model`);
2. the points the network sees: :func:`network_points` (the model's training N, else 1024);
3. :func:`prepare_inputs`: each cloud centred on its centroid and divided by a radius
   (:func:`canocaps.io.unit_sphere`; its own, or one shared by several clouds so that
   transforms between them stay rigid), subsampled (:func:`canocaps.io.subsample`, seeded);
4. :func:`canonicalize_in_input_units`: the canonicaliser runs (batched, eval mode, no
   grad) and each pose comes back in the input's units as a rigid ``(4, 4)``
   (``canonical = R (x - c) + s t``), with the capsule keypoints in the input frame.

``canocaps canonicalize`` and ``canocaps register`` use (4); ``canocaps reconstruct``
uses (1)-(3) with the decoder. Clouds arrive here already checked (``canocaps.io.as_points``
with ``dtype=np.float64, pose=True``): any scale from 1e-150 to 1e150 works, as centring,
scaling and the transforms back to input units are float64; only the network's input
``x`` (inside the unit sphere) is rounded to float32.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import numpy as np

from canocaps.io import subsample, unit_sphere

__all__ = ["CanonicalFrame", "NetworkInput", "resolve_model", "model_device", "min_points_of", "network_points",
           "prepare_inputs", "canonicalize_in_input_units", "inference_threads", "SMALL_CLOUD_POINTS",
           "THREADS_ENV"]

#: batches of at most this many points in all run the network on one torch thread (see inference_threads)
SMALL_CLOUD_POINTS = 32768
#: ``CANOCAPS_INFERENCE_THREADS=N`` fixes the torch threads of inference (``0``: leave torch's own setting)
THREADS_ENV = "CANOCAPS_INFERENCE_THREADS"


@contextmanager
def inference_threads(num_points: int) -> Iterator[int]:
    """Run the enclosed inference on the thread count chosen for ``num_points`` points; restore after.

    Small inputs (at most :data:`SMALL_CLOUD_POINTS` points in the whole batch) use one
    torch thread: for them the threads' start-up and synchronisation cost more than they
    save (measured, ``tools/bench_threads.py``). Larger inputs keep torch's setting.
    ``$CANOCAPS_INFERENCE_THREADS`` overrides: ``N`` threads for every input, ``0`` torch's
    own setting. Yields the thread count used. Only torch's intra-op threads change
    (Open3D's ICP keeps its OpenMP threads; ``OMP_NUM_THREADS`` sets those).
    """
    import torch

    before = torch.get_num_threads()
    env = os.environ.get(THREADS_ENV, "").strip()
    want = before
    if env:
        try:
            n = int(env)
        except ValueError:
            from canocaps.errors import CanocapsInputError

            raise CanocapsInputError(f"${THREADS_ENV}={env!r}: expected a whole number of threads (0: torch's own)") from None
        want = n if n > 0 else before
    elif num_points <= SMALL_CLOUD_POINTS:
        want = 1
    if want != before:
        torch.set_num_threads(want)
    try:
        yield want
    finally:
        if want != before:
            torch.set_num_threads(before)


def resolve_model(model: Any = None, device: Any = None) -> Any:
    """``model``, or the shipped weights on ``device`` when it is None."""
    if model is not None:
        return model
    from canocaps.pretrained import load_pretrained

    return load_pretrained(device=device)


def model_device(model: Any) -> Any:
    """The torch device of ``model``'s parameters (CPU for parameter-free objects)."""
    import torch

    params = getattr(model, "parameters", None)
    if callable(params):
        for p in params():
            return p.device
    dev = getattr(model, "device", None)
    return torch.device(dev) if dev is not None else torch.device("cpu")


def min_points_of(model: Any) -> int:
    """The fewest points ``model`` accepts: its number of capsules K (at least 3)."""
    k = getattr(model, "num_capsules", None)
    if not isinstance(k, int):
        k = getattr(getattr(model, "config", None), "num_capsules", None)
    return max(int(k), 3) if isinstance(k, int) else 3


def network_points(model: Any, num_points: int | None = None) -> int:
    """Points fed to the network: ``num_points`` if given, else the model's training N, else 1024."""
    if num_points:
        return int(num_points)
    n = getattr(getattr(model, "config", None), "num_points", None)
    return int(n) if isinstance(n, int) and n > 0 else 1024


@dataclass
class NetworkInput:
    """One cloud as the network sees it.

    Attributes:
        x: ``(n, 3)`` float32, the subsample centred and scaled: ``(sample - centre) / scale``
            (computed in float64, then rounded).
        sample: ``(n, 3)`` the same points in the input's units (the input's dtype).
        centre: ``(3,)`` float64 centroid of the whole cloud.
        scale: the radius divided by.
    """

    x: np.ndarray
    sample: np.ndarray
    centre: np.ndarray
    scale: float

    @property
    def normalising(self) -> np.ndarray:
        """``(4, 4)`` similarity input units -> network frame: ``p -> (p - centre) / scale``."""
        D = np.eye(4)
        D[:3, :3] /= self.scale
        D[:3, 3] = -self.centre / self.scale
        return D


def prepare_inputs(clouds: Sequence[np.ndarray], num_points: int, seeds: Sequence[int],
                   scale: float | None = None) -> list[NetworkInput]:
    """Centre, scale and subsample each checked ``(N_i, 3)`` cloud (see module doc).

    ``scale``: None divides each cloud by its own radius; a number is a radius shared by
    all clouds (registration passes the mean of the two radii).
    """
    out = []
    for p, seed in zip(clouds, seeds):
        c, r = unit_sphere(p)
        s = float(scale) if scale is not None else r
        sample = subsample(p, num_points, seed)
        x = (np.asarray(sample, dtype=np.float64) - c) / s
        out.append(NetworkInput(x.astype(np.float32), sample, c, s))
    return out


@dataclass
class CanonicalFrame:
    """One cloud's canonical pose, in the input's units.

    Attributes:
        transform: ``(4, 4)`` float64 rigid, input frame -> canonical frame (input units).
        keypoints: ``(K, 3)`` capsule keypoints in the input frame, or None (no capsules).
        descriptors: ``(K, C)`` capsule descriptors, or None.
        canonical_keypoints: ``(K, 3)`` the keypoints moved by ``transform``, or None.
        assignment: ``(n,)`` capsule of each point of ``inputs.sample``, or None.
        inputs: what the network saw (:class:`NetworkInput`), or None.
    """

    transform: np.ndarray
    keypoints: np.ndarray | None = None
    descriptors: np.ndarray | None = None
    canonical_keypoints: np.ndarray | None = None
    assignment: np.ndarray | None = None
    inputs: NetworkInput | None = None


def _np(v: Any) -> np.ndarray | None:
    if v is None:
        return None
    if hasattr(v, "detach"):
        v = v.detach().cpu().numpy()
    return np.asarray(v)


def _run(model: Any, xs: Sequence[np.ndarray]) -> list[tuple[Any, ...]]:
    """``(R, t, keypoints, descriptors, assignment)`` per cloud, numpy, batched when the sizes agree."""
    import torch

    device = model_device(model)
    was_training = getattr(model, "training", None)
    if was_training:
        model.eval()
    try:
        with torch.no_grad(), inference_threads(sum(int(x.shape[0]) for x in xs)):
            groups = [list(range(len(xs)))] if len({x.shape[0] for x in xs}) == 1 else [[i] for i in range(len(xs))]
            out: list[tuple[Any, ...]] = [()] * len(xs)
            for idx in groups:
                res = model.canonicalize(torch.as_tensor(np.stack([xs[i] for i in idx]), dtype=torch.float32,
                                                         device=device))
                R, t = _np(res.R), _np(res.t)
                kp, desc = _np(getattr(res, "keypoints", None)), _np(getattr(res, "descriptors", None))
                assign = _np(getattr(res, "assignment", None))
                for j, i in enumerate(idx):
                    out[i] = (R.reshape(len(idx), 3, 3)[j].astype(np.float64), t.reshape(len(idx), 3)[j].astype(np.float64),
                              None if kp is None else kp.reshape(len(idx), -1, 3)[j].astype(np.float64),
                              None if desc is None else desc.reshape(len(idx), -1, desc.shape[-1])[j].astype(np.float64),
                              None if assign is None else assign.reshape(len(idx), -1)[j])
            return out
    finally:
        if was_training:
            model.train(True)


def canonicalize_in_input_units(model: Any, clouds: Sequence[np.ndarray], *, num_points: int | None = None,
                                seeds: Sequence[int] | None = None, scale: float | None = None
                                ) -> list[CanonicalFrame]:
    """Canonical pose of each checked ``(N_i, 3)`` cloud, in the input's units.

    ``model``: any canonicaliser (``canonicalize((B, n, 3))`` giving ``R``, ``t``, optional
    ``keypoints``, ``descriptors``, ``assignment``). ``seeds``: subsampling seed per cloud
    (default 0, 1, ...); ``scale``: a radius shared by all clouds (None: each its own).
    The network sees ``x = (sample - c) / s`` and gives ``canonical = R x + t``; in input
    units that is ``T = [R | s t - R c]``, so ``T`` is rigid and maps the whole cloud.
    """
    seeds = list(seeds) if seeds is not None else list(range(len(clouds)))
    inputs = prepare_inputs(clouds, network_points(model, num_points), seeds, scale)
    frames = []
    for inp, (R, t, kp, desc, assign) in zip(inputs, _run(model, [i.x for i in inputs])):
        T = np.eye(4)
        T[:3, :3] = R
        T[:3, 3] = inp.scale * t - R @ inp.centre
        kp_in = None if kp is None else kp * inp.scale + inp.centre
        kp_canon = None if kp_in is None else kp_in @ R.T + T[:3, 3]
        frames.append(CanonicalFrame(T, kp_in, desc, kp_canon, assign, inp))
    return frames
