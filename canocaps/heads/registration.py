"""Registration head: the rigid transform mapping cloud A onto cloud B.

Method (works with any *canonicaliser*: an object whose ``canonicalize(points)``
takes a ``(B, N, 3)`` float32 tensor and returns a result with ``R (B, 3, 3)`` and
``t (B, 3)`` such that ``canonical = points @ R^T + t``; optional ``keypoints (B, K, 3)``
and ``descriptors (B, K, C)`` enable the capsule hypothesis):

1. Centre both clouds and scale them by a shared radius into the unit sphere (the
   networks are trained there); subsample ``num_points`` points for the network
   (:func:`canocaps.heads.frames.canonicalize_in_input_units`, poses back in input units).
2. Canonicalise both: ``T_a``, ``T_b`` map A, B into the canonical frame, so
   ``T_ab = T_b^-1 T_a`` maps A onto B ("canonical" hypothesis).
3. Canonical frames of (near-)symmetric shapes are ambiguous, so also try
   ``T_b^-1 F T_a`` for the 180-degree turns ``F`` about the canonical axes
   ("flip_x", "flip_y", "flip_z"), optionally the 20 other rotations of the cube that
   exchange the canonical axes ("swaps": frames read from moments swap axes where two
   variances are close), and the capsule hypothesis: capsules of A matched to
   capsules of B by descriptor distance (Hungarian), then weighted Procrustes on the
   matched keypoints ("capsules").
4. Score every hypothesis cheaply (inlier fraction of a few hundred points of A within
   ``screen_factor`` times the inlier distance of B, one k-d tree), run a short ICP
   (Open3D; point-to-plane by default) on the ``screen_top`` best whose rotations are
   at least ``screen_min_angle`` apart (a diverse few, not near-copies) and on the
   network's own frame and PCA's wherever they rank (``screen_always``), refine the
   ``refine_top`` best of those fully, and keep the one with the highest robust score
   (:func:`canocaps.heads.icp.robust_score`: mean Geman-McClure similarity of the
   point-to-nearest-point distances; fitness alone prefers the 180-degree-turned
   alignment of near-symmetric shapes). When even the best fitness is low (below
   ``overlap_threshold`` of the fitness a perfect alignment of whole views this sparse
   reaches, :data:`OVERLAP_SHARE`: partial views), rank by :func:`canocaps.heads.icp.core_distance`
   instead (how tightly the best-matching tenth of the points fits): a wrong alignment of
   two partial views can overlap more than the right one. Partial views also get a
   translation search: centring two crops misplaces them, so every distinct rotation of
   the frame hypotheses is tried again with the translation voted for the largest overlap
   (:mod:`canocaps.heads.overlap`), screened and briefly refined like the others. Partial
   views go in two rounds: a few hypotheses and the shifted ones, the best refined; when its
   best-fitting part is not tight, more of both rankings and more refinements
   (:data:`PARTIAL_FIRST`).

Evaluation helpers (RRE/RTE/RMSE against ground truth, recall, the benchmark loop over
the bundled test pairs) live here too.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from canocaps.errors import CanocapsInputError
from canocaps.heads import icp as _icp
from canocaps.heads.frames import CanonicalFrame, canonicalize_in_input_units, min_points_of, resolve_model
from canocaps.heads.results import HypothesisScore, RegistrationResult
from canocaps.io import as_points, subsample, unit_sphere

__all__ = [
    "HYPOTHESES",
    "FLIPS",
    "SWAPS",
    "DEFAULT_DISTANCE_FACTOR",
    "SCREEN_ALWAYS",
    "MAX_CAPSULE_TRIPLETS",
    "CanonicalFrame",
    "hypothesis_transforms",
    "initial_alignments",
    "screen_alignments",
    "register",
    "pca_register",
    "registration_errors",
    "summarize_registration",
    "summarize_by_condition",
    "RegistrationPair",
    "CONDITIONS",
    "degrade",
    "make_test_pairs",
    "benchmark_registration",
    "METHODS",
    "registration_methods",
]

#: Hypothesis families :func:`register` knows ("flips" expands to flip_x, flip_y, flip_z;
#: "swaps" to the 20 axis-exchanging rotations of the cube, swap_0 ... swap_19;
#: "capsule_triplets" to one rigid fit per consistent triplet of matched capsules;
#: "pca_frames" to the PCA frame with its flips and swaps, pca, pca_flip_x, ..., pca_swap_19).
HYPOTHESES = ("canonical", "flips", "swaps", "capsules", "capsule_triplets", "pca_frames")

#: 180-degree rotations about the canonical x, y, z axes.
FLIPS: dict[str, np.ndarray] = {
    "flip_x": np.diag([1.0, -1.0, -1.0]),
    "flip_y": np.diag([-1.0, 1.0, -1.0]),
    "flip_z": np.diag([-1.0, -1.0, 1.0]),
}



def _cube_rotations() -> dict[str, np.ndarray]:
    """The 20 proper rotations of the cube that are not diagonal (they permute the axes)."""
    import itertools

    out: dict[str, np.ndarray] = {}
    for perm in itertools.permutations(range(3)):
        for signs in itertools.product((1.0, -1.0), repeat=3):
            M = np.zeros((3, 3))
            for row, (col, sg) in enumerate(zip(perm, signs)):
                M[row, col] = sg
            if perm != (0, 1, 2) and np.linalg.det(M) > 0:
                out[f"swap_{len(out)}"] = M
    return out


#: 90/120/180-degree rotations exchanging the canonical axes (the "swaps" family).
SWAPS: dict[str, np.ndarray] = _cube_rotations()

#: Default inlier distance = this factor times the radius of B (0.05 for unit-sphere shapes).
DEFAULT_DISTANCE_FACTOR = 0.05

#: :func:`_capsule_triplets` keeps at most this many triplets, those whose triangles agree best.
#: With 10 capsules the trained model's matches gave a median 78 consistent triplets per
#: real-mesh pair, 59 % of all hypotheses and most of the cheap screen's time on sparse
#: pairs. 24 against all, on the validation pairs (130 shapes x 2 seeds): recall clean 0.958
#: either way, noisy 0.938 against 0.935, partial 0.708 against 0.700, sparse 0.831 against
#: 0.823, sparse pairs 11 % faster.
MAX_CAPSULE_TRIPLETS = 24

#: :func:`shifted_alignments`: rotations closer than this (degrees) share one translation vote.
SHIFT_MIN_ANGLE = 10.0

#: :func:`register` votes for translations only when at least this share of B's points has
#: another within the inlier distance: the vote needs corresponding points within a bin of
#: each other. The 130 partial validation pairs (2,048-point samples) have 0.79-1.0; most
#: 512-point samples of a unit-sphere shape less (0.5-0.83), where the search cost 0.14 s
#: per pair and moved no recall on the validation pairs.
SHIFT_MIN_DENSITY = 0.75

#: :func:`shifted_alignments`: half-width of the searched translations, in inlier distances.
SHIFT_EXTENT = 12.0


#: :func:`register`'s partial-view schedule. For clouds dense enough for the translation vote, the
#: ``partial_first`` best-screened hypotheses get a short ICP on ``partial_icp_points`` points of A.
#: When none fits above the overlap threshold the views overlap in part only, and round one goes on
#: with the ``screen_top`` best hypotheses with voted translations (short ICPs on as many points);
#: the best of all is refined, and it ends there when that one's core distance is below
#: ``partial_accept`` inlier distances. Otherwise round two: short ICPs down to ``partial_top`` of
#: both rankings, and the best ``partial_refine_top`` of all refined. Views that overlap in full
#: (or are too sparse for the vote) get the single round as before: ``screen_top`` short ICPs on
#: ``screen_icp_points``, ``refine_top`` refined. Chosen on the real-mesh validation pairs (130
#: shapes x 2 crop seeds; ``python tools/study_registration_budget.py`` replays it): partial recall
#: 189 of 260 against 184 for the single round (8 + 8 short ICPs on all points, 3 refined), at a
#: median 76 against 144 ms (``partial_accept`` from 0.16 to 0.19: 189-190); clean, noisy and
#: sparse recall unchanged (249, 244, 216 of 260). docs/registration.md has the study.
PARTIAL_FIRST = 4
PARTIAL_ICP_POINTS = 512
PARTIAL_ACCEPT = 0.18
PARTIAL_TOP = 16
PARTIAL_REFINE_TOP = 4

#: :func:`register` takes two clouds dense enough for the translation vote (:data:`SHIFT_MIN_DENSITY`) to
#: overlap in part only when the best short ICP's fitness is below this share of the attainable fitness
#: (:func:`_attainable_fitness`: about the fitness of a perfect alignment of two whole views this
#: sparse). Whole views reach 0.98-1.02 of it under the true motion (5th-95th percentile, every
#: real-mesh validation pair, clean and noisy), 70 % crops a median 0.70 (``tools/study_overlap_share.py``).
#: An absolute 0.85 called the whole views of sparse shapes and noisy pairs partial (19-21 of the 130
#: noisy validation pairs have a true fitness below 0.85, by their outliers), and round one of the
#: partial-view schedule could accept a turned alignment of those. Validation pairs, against the
#: absolute 0.85: noisy 604 against 600 of 650 (5 seeds), partial 193 against 189 of 260 (2 crop
#: seeds), clean 124 of 130 either way, sparse 214 against 216 of 260 (the 40 sparse pairs dense
#: enough for the vote); shares 0.88 / 0.92 / 0.95 / 0.98 gave partial 188 / 193 / 193 / 195 and
#: noisy 604 / 604 / 604 / 601.
OVERLAP_SHARE = 0.92

#: Hypotheses that get their short ICP wherever the cheap score ranks them: the network's own frame
#: and PCA's. On compact shapes the cheap score saturates (0.98-0.99 for the 16 best of 73), and a
#: frame 20 degrees off can rank below eight turned ones. Chosen on the real-mesh validation pairs
#: (``tools/study_overlap_share.py --screen-always``, session 12's weights): noisy 604 -> 606 of 650,
#: clean, partial and sparse unchanged, about 4 ms more per pair.
SCREEN_ALWAYS = ("canonical", "pca")


def _to_numpy(x: Any) -> np.ndarray | None:
    if x is None:
        return None
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def _matched_keypoints(fa: CanonicalFrame, fb: CanonicalFrame) -> tuple[np.ndarray, np.ndarray] | None:
    """Keypoints ``(m, 3)`` of A and B paired by capsule descriptor distance (Hungarian), or None."""
    if fa.keypoints is None or fb.keypoints is None or fa.descriptors is None or fb.descriptors is None:
        return None
    from scipy.optimize import linear_sum_assignment
    from scipy.spatial.distance import cdist

    rows, cols = linear_sum_assignment(cdist(fa.descriptors, fb.descriptors))
    return fa.keypoints[rows], fb.keypoints[cols]


def _match_capsules(fa: CanonicalFrame, fb: CanonicalFrame) -> np.ndarray | None:
    """Capsule-to-capsule matching by descriptor distance (Hungarian) -> rigid fit on all matches."""
    matched = _matched_keypoints(fa, fb)
    if matched is None or len(matched[0]) < 3:
        return None
    return _rigid_fits(matched[0][None], matched[1][None])[0]


def _rigid_fits(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Batched least-squares rigid fits: src, dst ``(T, m, 3)`` -> ``(T, 4, 4)`` with ``dst ~= R src + t``
    (:func:`canocaps.geometry.weighted_procrustes`, float64)."""
    import torch

    from canocaps.geometry import weighted_procrustes

    R, t = weighted_procrustes(torch.as_tensor(src, dtype=torch.float64), torch.as_tensor(dst, dtype=torch.float64))
    T = np.tile(np.eye(4), (len(src), 1, 1))
    T[:, :3, :3] = R.numpy()
    T[:, :3, 3] = t.numpy()
    return T


def _capsule_triplets(fa: CanonicalFrame, fb: CanonicalFrame, tolerance: float = 0.15,
                      min_side: float = 0.1, max_triplets: int | None = MAX_CAPSULE_TRIPLETS) -> list[np.ndarray]:
    """Rigid fits on triplets of descriptor-matched capsules whose triangles agree (robust to missing parts).

    Capsules are matched by descriptor distance (Hungarian). A triplet counts when its three
    keypoint distances agree between A and B within ``tolerance`` (in units of the clouds,
    normalised: unit sphere) and its smallest side is at least ``min_side`` (a triangle, not
    a point). Of those, at most ``max_triplets`` whose sides agree best (the largest side
    difference smallest; None: all). With part of a cloud cut away, the capsules on the
    intact parts keep their keypoints and descriptors, so some triplets stay right where the
    all-capsule fit fails.
    """
    import itertools

    matched = _matched_keypoints(fa, fb)
    if matched is None:
        return []
    ka, kb = matched
    trip = np.array(list(itertools.combinations(range(len(ka)), 3)), dtype=np.int64).reshape(-1, 3)
    if len(trip) == 0:
        return []
    pa, pb = ka[trip], kb[trip]  # (T, 3, 3)
    sides = lambda p: np.linalg.norm(p[:, [0, 1, 2]] - p[:, [1, 2, 0]], axis=-1)  # noqa: E731
    sa, sb = sides(pa), sides(pb)
    err = np.abs(sa - sb).max(axis=1)  # (T,) largest side difference
    keep = np.flatnonzero((err < tolerance) & (np.minimum(sa.min(axis=1), sb.min(axis=1)) > min_side))
    if max_triplets is not None:  # the best-agreeing triangles, in their original order
        keep = np.sort(keep[np.argsort(err[keep], kind="stable")[:max(0, int(max_triplets))]])
    if len(keep) == 0:
        return []
    return list(_rigid_fits(pa[keep], pb[keep]))


def hypothesis_transforms(fa: CanonicalFrame, fb: CanonicalFrame,
                          which: Iterable[str] = HYPOTHESES) -> list[tuple[str, np.ndarray]]:
    """Candidate ``(4, 4)`` transforms mapping A onto B (frames in the same units, e.g. the inputs').

    ``which`` holds names from :data:`HYPOTHESES` or individual flips ("flip_x", ...).
    """
    Tb_inv = np.linalg.inv(fb.transform)
    out: list[tuple[str, np.ndarray]] = []
    for name in which:
        if name == "canonical":
            out.append(("canonical", Tb_inv @ fa.transform))
        elif name in ("flips", "swaps") or name in FLIPS or name in SWAPS:
            family = FLIPS if name == "flips" or name in FLIPS else SWAPS
            for fname, F in family.items():
                if name in ("flips", "swaps", fname):
                    F4 = np.eye(4)
                    F4[:3, :3] = F
                    out.append((fname, Tb_inv @ F4 @ fa.transform))
        elif name == "capsules":
            T = _match_capsules(fa, fb)
            if T is not None:
                out.append(("capsules", T))
        elif name == "capsule_triplets":
            out += [(f"capsule_triplet_{i}", T) for i, T in enumerate(_capsule_triplets(fa, fb))]
        else:
            raise CanocapsInputError(f"unknown registration hypothesis {name!r} (choose from "
                                     f"{', '.join(HYPOTHESES + tuple(FLIPS))}, swap_0 ... swap_19)")
    return out


def register(a: Any, b: Any, model: Any = None, *, refine: bool = True,
             max_correspondence_distance: float | None = None, icp_method: str = "point_to_plane",
             hypotheses: Iterable[str] = HYPOTHESES, num_points: int | None = None,
             max_icp_points: int = 4096, icp_iterations: int = 50, screen_iterations: int = 10,
             screen_top: int = 8, screen_factor: float = 3.0, screen_points: int = 256,
             screen_min_angle: float = 30.0, screen_icp_points: int = 0, refine_top: int = 3,
             overlap_threshold: float = OVERLAP_SHARE, sparse_overlap_threshold: float = 0.85,
             shift_search: bool = True, shift_frames_only: bool = True,
             partial_first: int = PARTIAL_FIRST, partial_icp_points: int = PARTIAL_ICP_POINTS,
             partial_accept: float = PARTIAL_ACCEPT, partial_top: int = PARTIAL_TOP,
             partial_refine_top: int = PARTIAL_REFINE_TOP,
             screen_always: Iterable[str] = SCREEN_ALWAYS,
             seed: int = 0,
             device: Any = None, names: tuple[str, str] = ("a", "b")) -> RegistrationResult:
    """Rigid transform mapping cloud ``a`` onto cloud ``b`` through canonical capsules.

    Args:
        a, b: ``(N, 3)`` / ``(M, 3)`` clouds: numpy arrays, torch tensors, Open3D point
            clouds or meshes, trimesh objects, or file paths (any format of
            :func:`canocaps.io.read_points`).
        model: a canonicaliser (``canonicalize(points)`` returning ``R``, ``t``); None
            loads the shipped weights (:func:`canocaps.load_pretrained`). A
            :class:`canocaps.heads.baselines.PCACanonicalizer` works too.
        refine: run ICP on each hypothesis (otherwise hypotheses are only scored).
        max_correspondence_distance: inlier distance for ICP and scoring, input units;
            default ``0.05 * radius(b)`` (radius: largest distance to the centroid).
        icp_method: ``"point_to_plane"`` (normals estimated on b) or ``"point_to_point"``.
        hypotheses: which initial alignments to try (see :data:`HYPOTHESES`).
        num_points: points fed to the network (default: the model's training N, else 1024).
        max_icp_points: clouds are subsampled to at most this many points for ICP/scoring.
        icp_iterations: ICP iterations per stage for the final refinement.
        screen_top: hypotheses kept after the cheap k-d tree score for the short ICP (8: chosen
            on 40 real validation meshes x 3 conditions, where 8 beat 4 in recall on clean and
            noisy pairs, 0.85 / 0.825 against 0.80 / 0.775, for about 0.1 s more per pair).
        screen_factor: the cheap score counts points of A within this factor times the
            inlier distance (a wider net: a hypothesis a few degrees off still scores).
        screen_points: points of A used by the cheap score.
        screen_min_angle: degrees; the ``screen_top`` kept are the best-ranked hypotheses whose
            rotations differ pairwise by at least this angle (many hypotheses, e.g. capsule
            triplets, land near one another). 30 against 0 on the 130 real-mesh validation pairs
            (``python tools/study_registration_selection.py [--min-angle 0]``): recall 0.946 /
            0.946 / 0.492 / 0.831 against 0.954 / 0.900 / 0.362 / 0.846 (clean / noisy /
            partial / sparse). 0 keeps the plain ranking.
        screen_always: hypothesis names that get the short ICP too when the cheap score ranks
            them outside the ``screen_top`` (default :data:`SCREEN_ALWAYS`: ``"canonical"``,
            the model's own frame, and ``"pca"``; names not among the hypotheses are ignored).
            () screens by the cheap score alone.
        screen_iterations: ICP iterations per stage when screening the ``screen_top``
            hypotheses; the ``refine_top`` best are then refined fully.
        screen_icp_points: points of A moved by the short (screening) ICP (0, the default:
            the same points as the refinement, up to ``max_icp_points``); every hypothesis is
            scored on all of them either way, and the result is always the best of the
            ``refine_top`` refined hypotheses. A speed knob: on the real-mesh validation pairs
            (130 shapes x 2 seeds, 2,048 points) 512 cut the median time per pair from 0.50 s
            to 0.36 s on partial pairs (0.44 to 0.28 s on clean ones, a loaded machine) at a
            recall of 0.692 against 0.700 (partial), 0.954 against 0.958 (clean) and 0.927
            against 0.935 (noisy).
        refine_top: hypotheses refined fully (3: on the validation pairs 3 against 2 raised
            partial-pair recall from 0.454 to 0.492, the other conditions unchanged).
        overlap_threshold: for clouds dense enough for the translation vote
            (:data:`SHIFT_MIN_DENSITY`): when the best fitness after the short ICP is below this
            share of the attainable fitness (:data:`OVERLAP_SHARE`), the clouds are taken to
            overlap in part only (``result.low_overlap``) and hypotheses are ranked by
            :func:`canocaps.heads.icp.core_distance` (the mean distance of the best-fitting 10 %
            of points) instead of the robust score. 0 turns it off.
        sparse_overlap_threshold: the same for sparser clouds, as an absolute fitness (0.85: on
            the 130 validation pairs this raised partial-pair recall from 0.431 to 0.492, and
            clean / noisy / sparse read 0.946 / 0.946 / 0.831;
            ``python tools/study_registration_selection.py``). It ranks nearly every 512-point
            pair by the core distance, which registers them best: on the sparse validation pairs
            (130 x 2 seeds) 216 right, against 210 / 212 with shares 0.92 / 0.98 of the
            attainable fitness. 0 turns it off.
        shift_search: when the clouds overlap in part only (``low_overlap``) and B is dense
            enough for a translation vote (:data:`SHIFT_MIN_DENSITY`), also try every distinct rotation
            of the frame hypotheses with the translation that overlaps them most
            (:func:`shifted_alignments`; names end in ``+shift``): the frames' centres move
            with a crop, and centring two partial views misplaces them by a median 0.27 radii
            (``tools/study_translation_vote.py``), outside the basin of ICP. The best
            ``screen_top`` of those (cheap score, ``screen_min_angle`` apart) get a short ICP
            and join the ranking. On the 130 real-mesh validation pairs of the partial
            condition it raised recall from 0.492 to 0.654 (PCA's frames: 0.585 to 0.700) and
            the median time per pair from 0.37 s to 0.81 s; noisy pairs read 0.946 either way.
        shift_frames_only: vote for the frame families only (the canonical frame, its flips
            and swaps, PCA's), not for capsule matches (on the validation pairs, 0.654
            against 0.592 with the 48 best-screened hypotheses of every kind).
        partial_first: with ``shift_search`` and clouds dense enough for the vote, only this
            many of the screened hypotheses get a short ICP (on ``partial_icp_points``) before
            deciding whether the clouds overlap in part only; when they do not, the single round
            follows (all ``screen_top`` on ``screen_icp_points``), with the result it gives alone
            unless its fitness, on all points, says part only (then the partial-view schedule).
        partial_icp_points: points of A moved by the short ICPs of that decision and of partial
            views (0: as ``screen_icp_points``).
        partial_accept: partial views are registered in rounds (:data:`PARTIAL_FIRST`): round one
            stops when its refined best's :func:`canocaps.heads.icp.core_distance` is below this
            many inlier distances.
        partial_top: round two gives a short ICP to the hypotheses down to this rank in both
            rankings (the screened and the shifted ones).
        partial_refine_top: round two refines this many of all short outcomes in all.
        seed: seed of the subsampling.
        device: device for the default model (ignored when ``model`` is given).
        names: how error messages call ``a`` and ``b`` (paths name themselves).

    Returns:
        :class:`RegistrationResult`; ``transformation`` ``(4, 4)`` maps a onto b in input units.

    Raises:
        CanocapsInputError: unreadable/empty input, NaN/inf, fewer points than capsules,
            unknown hypothesis or ICP method.
        CanocapsWeightsError: ``model`` is None and no shipped weights are found.
    """
    model = resolve_model(model, device)
    if icp_method not in _icp.ICP_METHODS:
        raise CanocapsInputError(f"icp_method must be one of {', '.join(_icp.ICP_METHODS)}, not {icp_method!r}")
    k = min_points_of(model)
    pa = as_points(a, str(a) if isinstance(a, (str, os.PathLike)) else names[0], min_points=k, seed=seed,
                   dtype=np.float64, pose=True)
    pb = as_points(b, str(b) if isinstance(b, (str, os.PathLike)) else names[1], min_points=k, seed=seed,
                   dtype=np.float64, pose=True)
    hyps = tuple(hypotheses)
    if not hyps:
        raise CanocapsInputError("hypotheses: give at least one")
    t0 = time.perf_counter()

    _, rb = unit_sphere(pb)
    candidates = initial_alignments(model, pa, pb, hyps, num_points, seed)
    if not candidates:
        raise CanocapsInputError("no registration hypothesis applies to this model "
                                 "(it gives no keypoints/descriptors for 'capsules')")

    dist = float(max_correspondence_distance) if max_correspondence_distance is not None \
        else DEFAULT_DISTANCE_FACTOR * rb
    if not np.isfinite(dist) or dist <= 0:
        raise CanocapsInputError(f"max_correspondence_distance must be > 0, not {max_correspondence_distance}")
    src = _icp.to_pcd(subsample(pa, max_icp_points, seed + 2))
    tgt = _icp.to_pcd(subsample(pb, max_icp_points, seed + 3))
    if refine and icp_method == "point_to_plane":
        _icp.estimate_normals(tgt)

    src_points, tgt_tree = np.asarray(src.points), _icp.NearestNeighbors(np.asarray(tgt.points))
    # Cheap score of every hypothesis, a short ICP on the best few, a full ICP on the best of those.
    screen_src = subsample(pa, screen_points, seed + 4)
    ranked = candidates  # best first by the cheap score
    wide = max(1, screen_top, partial_top)  # the partial-view schedule may go further down the ranking
    if refine and len(candidates) > max(1, screen_top):
        ranked = _ranked(screen_src, tgt_tree, candidates, screen_factor * dist)
        candidates = _diverse_first(ranked, wide, screen_min_angle)
    screened = candidates[:max(1, screen_top)] if refine else candidates
    always = set(screen_always)
    if refine and always:  # named hypotheses get their short ICP wherever the cheap score ranks them
        have = {n for n, _ in screened}
        screened = screened + [c for c in ranked if c[0] in always and c[0] not in have]

    # The short ICP of the screening moves fewer points of A than the refinement.
    few = subsample(pa, screen_icp_points, seed + 6) if refine and screen_icp_points > 0 else src_points
    screen_pcd = _icp.to_pcd(few) if few is not src_points else src
    partial_pcd = screen_pcd
    if refine and 0 < partial_icp_points < len(src_points) and partial_icp_points != screen_icp_points:
        partial_pcd = _icp.to_pcd(subsample(pa, partial_icp_points, seed + 6))

    def run(T0: np.ndarray, iterations: int, pcd: Any = None) -> _icp.IcpOutcome:
        """ICP from ``T0`` moving ``pcd`` (default: all of ``src``), measured on all of ``src_points``."""
        T = _icp.icp_transform(src if pcd is None else pcd, tgt, T0, dist, icp_method, iterations) if refine else T0
        return _icp.measure(src_points, tgt_tree, T, dist)

    # Below this best fitness the clouds overlap in part only: for clouds dense enough for the translation
    # vote a share of the fitness a perfect alignment of two whole views this sparse reaches, for sparser
    # ones an absolute fitness.
    attainable = _attainable_fitness(tgt_tree, dist) if refine else 1.0  # unused without ICP
    dense = attainable >= SHIFT_MIN_DENSITY
    cutoff = overlap_threshold * attainable if dense else sparse_overlap_threshold

    def low(outcomes: list[tuple[str, _icp.IcpOutcome]]) -> bool:
        return refine and max(o.fitness for _, o in outcomes) < cutoff

    # Two clouds that overlap in part only (the best short ICP's fitness below ``cutoff``):
    # rank by how tightly the best-matching part fits. Dense enough clouds (the translation vote needs
    # corresponding points within a bin of each other) decide that on the ``partial_first`` best, and
    # partial views then take the partial-view schedule below.
    staged = refine and shift_search and dense
    first = min(len(screened), max(1, partial_first)) if staged else len(screened)
    first_pcd = partial_pcd if staged else screen_pcd
    scored = [(name, run(T0, screen_iterations, first_pcd)) for name, T0 in screened[:first]]
    partial = staged and low(scored)
    if not partial:  # one round: every screened hypothesis gets its short ICP (on the screening's points)
        if first_pcd is not screen_pcd:
            scored = []
        tried = {n for n, _ in scored}
        scored += [(name, run(T0, screen_iterations, screen_pcd)) for name, T0 in screened if name not in tried]
    low_overlap = low(scored)
    # The decision's few points may call views whole that all points find overlapping in part only:
    # those get the partial-view schedule too (as the single round gave them the translation search).
    partial = partial or (staged and low_overlap)
    shifted: list[tuple[str, np.ndarray]] = []
    if partial:  # the frames' centres moved with the crops: vote for the translation of most overlap
        frames = [c for c in ranked if not c[0].startswith("capsule")] if shift_frames_only else ranked
        shifted = shifted_alignments(screen_src, subsample(pb, screen_points, seed + 5), frames, dist)
        shifted = screen_alignments(screen_src, tgt_tree, shifted, screen_factor * dist, wide, screen_min_angle)
        scored += [(name, run(T0, screen_iterations, partial_pcd)) for name, T0 in shifted[:max(1, screen_top)]]

    def rank(o: _icp.IcpOutcome) -> float:  # lower is better; ties within 1e-4 keep the screening order
        return round(o.core_distance / dist, 4) if low_overlap else -round(o.score, 4)

    refined: set[int] = set()  # ids of the refined outcomes

    def refine_best(k: int) -> None:
        """Refine fully the best-ranked short outcomes until ``k`` are refined."""
        order = [i for i in sorted(range(len(scored)), key=lambda i: rank(scored[i][1]))
                 if id(scored[i][1]) not in refined]
        for i in order[:max(0, k - len(refined))]:
            scored[i] = (scored[i][0], run(scored[i][1].transformation, icp_iterations))
            refined.add(id(scored[i][1]))

    if partial:
        # Partial views, in two rounds: the first refines the best one only and stops there when its best
        # tenth of points fits within ``partial_accept`` inlier distances; otherwise the hypotheses further
        # down both rankings (to ``partial_top``) get their short ICP too, and the best
        # ``partial_refine_top`` of all are refined.
        refine_best(1)
        if min(o.core_distance for _, o in scored if id(o) in refined) >= partial_accept * dist:
            tried = {n for n, _ in scored}
            more = [c for c in candidates[:wide] + shifted[:wide] if c[0] not in tried]
            scored += [(name, run(T0, screen_iterations, partial_pcd)) for name, T0 in more]
            refine_best(max(1, partial_refine_top))
    elif refine:
        refine_best(max(1, refine_top))
    # The refined hypotheses first (scored on all points), then the rest as screened.
    scored.sort(key=lambda item: (refine and id(item[1]) not in refined, rank(item[1])))
    best_name, best = scored[0]
    return RegistrationResult(
        transformation=best.transformation, fitness=best.fitness, inlier_rmse=best.inlier_rmse,
        correspondence_set=best.correspondence_set, hypothesis=best_name,
        time_s=time.perf_counter() - t0, refined=refine, max_correspondence_distance=dist,
        candidates=[HypothesisScore(n, o.fitness, o.inlier_rmse, o.transformation, o.score, o.core_distance)
                    for n, o in scored],
        score=best.score, low_overlap=low_overlap)


def initial_alignments(model: Any, pa: np.ndarray, pb: np.ndarray, hypotheses: Iterable[str] = HYPOTHESES,
                       num_points: int | None = None, seed: int = 0) -> list[tuple[str, np.ndarray]]:
    """The named initial alignments ``(name, (4, 4) transform mapping pa onto pb)`` of :func:`register`.

    ``pa`` ``(N, 3)``, ``pb`` ``(M, 3)`` float64 in input units. Both clouds are
    canonicalised with one shared scale (the mean radius), so transforms stay rigid;
    ``"pca_frames"`` adds PCA's frame with its flips and swaps (names ``pca``, ``pca_...``).
    """
    hyps = tuple(hypotheses)
    _, ra = unit_sphere(pa)
    _, rb = unit_sphere(pb)
    scale = 0.5 * (ra + rb)
    fa, fb = canonicalize_in_input_units(model, [pa, pb], num_points=num_points, seeds=[seed, seed + 1],
                                         scale=scale)
    candidates = hypothesis_transforms(fa, fb, tuple(h for h in hyps if h != "pca_frames"))
    if "pca_frames" in hyps:  # the classical frame as extra hypotheses, on the same inputs
        from canocaps.heads.baselines import PCACanonicalizer

        pa_f, pb_f = canonicalize_in_input_units(PCACanonicalizer(), [pa, pb], num_points=num_points,
                                                 seeds=[seed, seed + 1], scale=scale)
        candidates += [("pca" if n == "canonical" else f"pca_{n}", T)
                       for n, T in hypothesis_transforms(pa_f, pb_f, ("canonical", "flips", "swaps"))]
    return candidates


def screen_alignments(src: np.ndarray, target_tree: Any, candidates: Sequence[tuple[str, np.ndarray]],
                      dist: float, top: int, min_angle_deg: float) -> list[tuple[str, np.ndarray]]:
    """The ``top`` best ``candidates`` by the cheap k-d tree score, pairwise >= ``min_angle_deg`` apart.

    ``src`` ``(n, 3)``: a few hundred points of A; ``target_tree``: a
    :class:`canocaps.heads.icp.NearestNeighbors` (or ``scipy.spatial.cKDTree``) of B;
    ``dist``: the cheap score's inlier distance (input units).
    """
    return _diverse_first(_ranked(src, target_tree, candidates, dist), top, min_angle_deg)


def _ranked(src: np.ndarray, target_tree: Any, candidates: Sequence[tuple[str, np.ndarray]],
            dist: float) -> list[tuple[str, np.ndarray]]:
    """``candidates`` best first by the cheap k-d tree score (:func:`_cheap_scores`)."""
    return [candidates[i] for i in _cheap_scores(src, target_tree, [T for _, T in candidates], dist)]


def _diverse_first(candidates: Sequence[tuple[str, np.ndarray]], top: int, min_angle_deg: float
                   ) -> list[tuple[str, np.ndarray]]:
    """The first ``top`` of ``candidates`` (best first) whose rotations are pairwise >= ``min_angle_deg`` apart."""
    keep = _diverse(list(range(len(candidates))), [T for _, T in candidates], top, min_angle_deg)
    return [candidates[i] for i in keep]


def _attainable_fitness(tree: Any, dist: float) -> float:
    """Share of the tree's points with another point within ``dist``: about the fitness a perfect
    alignment of two samples this sparse reaches (1 for dense clouds, less for sparse ones)."""
    d, _ = tree.query(tree.data, k=2)
    return float(np.mean(d[:, 1] <= dist))


def shifted_alignments(src: np.ndarray, dst: np.ndarray, candidates: Sequence[tuple[str, np.ndarray]],
                       dist: float, min_angle_deg: float = SHIFT_MIN_ANGLE,
                       extent: float = SHIFT_EXTENT) -> list[tuple[str, np.ndarray]]:
    """The distinct rotations of ``candidates`` with translations voted for the largest overlap.

    ``src`` ``(n, 3)`` points of A, ``dst`` ``(m, 3)`` points of B; ``candidates`` as from
    :func:`initial_alignments`, best first; rotations closer than ``min_angle_deg`` to an
    earlier one are dropped; :func:`canocaps.heads.overlap.vote_translation` with bins of
    ``dist`` searches a cube of half-width ``extent * dist`` around each candidate's
    translation. Names get a ``+shift`` suffix.
    """
    from canocaps.heads.overlap import vote_translations

    distinct = _diverse_first(candidates, len(candidates), min_angle_deg)
    moved = vote_translations(src, dst, np.asarray([T for _, T in distinct]), dist, extent * dist)
    return [(f"{name}+shift", T) for (name, _), T in zip(distinct, moved)]


def pca_register(a: Any, b: Any, **kwargs: Any) -> RegistrationResult:
    """:func:`register` with the PCA canonicaliser.

    Hypotheses: the PCA frame, its three flips and the 20 axis swaps: the same frame
    family and the same screening and ICP as canocaps' own frame, so a comparison of the
    two measures the frames, not the machinery around them.
    """
    from canocaps.heads.baselines import PCACanonicalizer

    kwargs.setdefault("hypotheses", ("canonical", "flips", "swaps"))
    return register(a, b, model=PCACanonicalizer(), **kwargs)


def _diverse(ranks: Sequence[int], transforms: Sequence[np.ndarray], top: int, min_angle_deg: float) -> list[int]:
    """The first ``top`` of ``ranks`` whose rotations differ pairwise by >= ``min_angle_deg`` (greedy).

    ``transforms``: ``(4, 4)`` each; the angle is the geodesic distance between rotation parts.
    """
    if min_angle_deg <= 0:
        return list(ranks[:top])
    cos_max = np.cos(np.radians(min_angle_deg))
    order = np.asarray(ranks, dtype=np.int64)
    if len(order) == 0:
        return []
    Rs = np.asarray([transforms[i][:3, :3] for i in order], dtype=np.float64).reshape(len(order), 9)
    # cos of the angle between two rotations: (trace(Ri^T Rj) - 1) / 2, all pairs at once
    close = (Rs @ Rs.T - 1.0) / 2.0 >= cos_max
    keep: list[int] = []
    for a in range(len(order)):
        if not close[a, keep].any():
            keep.append(a)
            if len(keep) == top:
                break
    return [int(order[a]) for a in keep]


def _cheap_scores(src: np.ndarray, target_tree: Any, transforms: Sequence[np.ndarray], dist: float) -> list[int]:
    """Indices of ``transforms`` ranked best first by inlier fraction of ``src`` moved onto the target.

    src ``(n, 3)``, ``target_tree`` a :class:`canocaps.heads.icp.NearestNeighbors` (or
    ``scipy.spatial.cKDTree``) of the target points,
    transforms ``(4, 4)`` each; an inlier lies within ``dist`` of a target point (one query
    for all). Ties: lower mean inlier distance first.
    """
    Ts = np.asarray(transforms, dtype=np.float64).reshape(-1, 4, 4)
    moved = src @ Ts[:, :3, :3].transpose(0, 2, 1) + Ts[:, None, :3, 3]  # (H, n, 3); matmul: einsum here is 15x slower
    d, _ = target_tree.query(moved.reshape(-1, 3), distance_upper_bound=dist)  # one query for all
    d = d.reshape(len(Ts), -1)
    inl = np.isfinite(d)
    fitness = inl.mean(axis=1)
    mean_d = np.where(inl, d, 0.0).sum(axis=1) / np.maximum(inl.sum(axis=1), 1)
    mean_d[~inl.any(axis=1)] = np.inf
    return [int(i) for i in np.lexsort((mean_d, -fitness))]


# ----------------------------------------------------------------------------- evaluation

def registration_errors(T_est: np.ndarray, T_gt: np.ndarray, points: np.ndarray) -> dict[str, float]:
    """RRE (degrees), RTE (input units) and RMSE of ``points`` ``(N, 3)`` moved by ``T_est`` vs ``T_gt``.

    RMSE is ``sqrt(mean_n ||T_est p_n - T_gt p_n||^2)``.
    """
    import torch

    from canocaps.geometry import registration_rmse, rotation_error_deg, translation_error

    Te = torch.as_tensor(np.asarray(T_est, dtype=np.float64))[None]
    Tg = torch.as_tensor(np.asarray(T_gt, dtype=np.float64))[None]
    p = torch.as_tensor(np.asarray(points, dtype=np.float64))[None]
    return {
        "rre_deg": float(rotation_error_deg(Te[:, :3, :3], Tg[:, :3, :3])[0]),
        "rte": float(translation_error(Te[:, :3, 3], Tg[:, :3, 3])[0]),
        "rmse": float(registration_rmse(p, Te, Tg)[0]),
    }


def summarize_registration(records: Sequence[dict[str, float]], rre_max_deg: float = 5.0,
                           rte_max: float = 0.05) -> dict[str, float]:
    """Recall (RRE < ``rre_max_deg`` and RTE < ``rte_max``), medians, means and time per pair.

    ``records`` are dicts with ``rre_deg``, ``rte``, ``rmse``, ``time_s``.
    """
    if not records:
        raise CanocapsInputError("no registration records to summarise")
    rre = np.array([r["rre_deg"] for r in records])
    rte = np.array([r["rte"] for r in records])
    rmse = np.array([r["rmse"] for r in records])
    tt = np.array([r["time_s"] for r in records])
    ok = (rre < rre_max_deg) & (rte < rte_max)
    return {
        "pairs": int(len(records)),
        "recall": float(ok.mean()),
        "median_rre_deg": float(np.median(rre)),
        "median_rte": float(np.median(rte)),
        "mean_rre_deg": float(rre.mean()),
        "mean_rmse": float(rmse.mean()),
        "time_per_pair_s": float(tt.mean()),
        "rre_max_deg": rre_max_deg,
        "rte_max": rte_max,
    }


def summarize_by_condition(records: dict[str, list[dict[str, Any]]], conditions: Sequence[str],
                           rre_max_deg: float = 5.0, rte_max: float = 0.05) -> dict[str, dict[str, dict[str, float]]]:
    """``{condition: {method: summary}}`` of :func:`benchmark_registration` records whose pairs
    come from :func:`make_test_pairs` (pair names ``data/split/condition/index``); each summary
    is :func:`summarize_registration` plus ``median_time_per_pair_s``."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for c in conditions:
        out[c] = {}
        for m, recs in records.items():
            mine = [r for r in recs if r["pair"].rsplit("/", 2)[1] == c]
            if mine:
                s = summarize_registration(mine, rre_max_deg, rte_max)
                s["median_time_per_pair_s"] = float(np.median([r["time_s"] for r in mine]))
                out[c][m] = s
    return out


@dataclass
class RegistrationPair:
    """One test pair: ``b ~= T_gt a`` for two independent surface samples ``(N, 3)``."""

    name: str
    a: np.ndarray
    b: np.ndarray
    T_gt: np.ndarray


#: Degradations :func:`make_test_pairs` applies to each sample of a pair (independently).
CONDITIONS = {
    "clean": {},
    "noisy": {"noise_std": 0.01, "outlier_ratio": 0.05},
    "partial": {"keep_ratio": 0.7},
    "sparse": {"num_points": 512},
}


def degrade(points: np.ndarray, rng: np.random.Generator, noise_std: float = 0.0, outlier_ratio: float = 0.0,
            keep_ratio: float = 1.0) -> np.ndarray:
    """One scan-like degradation of a unit-sphere cloud ``(N, 3)`` -> ``(N', 3)`` float32.

    ``keep_ratio < 1``: keep the points on one side of a random plane (a half-space crop
    keeping that fraction of the points); ``outlier_ratio``: that fraction of points
    replaced by points uniform in the bounding ball; ``noise_std``: Gaussian noise per
    coordinate (units of the cloud).
    """
    x = np.asarray(points, dtype=np.float64)
    if keep_ratio < 1.0:
        normal = rng.normal(size=3)
        normal /= np.linalg.norm(normal)
        order = np.argsort(x @ normal)
        x = x[order[:max(1, int(round(keep_ratio * len(x))))]]
    if outlier_ratio > 0:
        c = x.mean(axis=0)
        radius = np.linalg.norm(x - c, axis=1).max()
        k = int(round(outlier_ratio * len(x)))
        d = rng.normal(size=(k, 3))
        d /= np.linalg.norm(d, axis=1, keepdims=True)
        x = x.copy()
        x[rng.choice(len(x), k, replace=False)] = c + d * radius * rng.random((k, 1)) ** (1 / 3)
    if noise_std > 0:
        x = x + rng.normal(scale=noise_std, size=x.shape)
    return rng.permutation(x).astype(np.float32)


def make_test_pairs(data: str = "procedural", split: str = "test", num_points: int = 1024,
                    limit: int | None = None, condition: str = "clean", seed: int = 0,
                    **dataset_kwargs: Any) -> list[RegistrationPair]:
    """Registration pairs from a dataset's ``split`` and the fixed test transforms.

    Shape i gives two independent surface samples (``resample_views=True``); each is
    degraded independently as ``condition`` says (:data:`CONDITIONS`: "clean";
    "noisy": noise 0.01 + 5 % outliers; "partial": a 70 % half-space crop; "sparse":
    512 points), with a generator seeded by ``(seed, i)``; A is the first moved by the
    view-1 test transform ``T1[i]``, B the second moved by ``T2[i]`` (indices modulo the
    number of transforms), so ``T_gt = T2[i] T1[i]^-1``. ``data``: see
    :func:`canocaps.data.open_dataset`; ``limit`` shapes are spread evenly over
    the split; ``dataset_kwargs`` go to the dataset (e.g. ``per_class``).
    """
    from canocaps.data import open_dataset, pick
    from canocaps.heads._data import test_transforms

    if condition not in CONDITIONS:
        raise CanocapsInputError(f"unknown condition {condition!r} (choose from {', '.join(CONDITIONS)})")
    opts = dict(CONDITIONS[condition])
    n = int(opts.pop("num_points", num_points))
    ds = open_dataset(data, split, n, resample_views=True, **dataset_kwargs)
    T1, T2 = test_transforms()
    pairs = []
    for i in (int(j) for j in pick(len(ds), limit)):
        item = ds[i]
        rng = np.random.default_rng([seed, i])
        pa = degrade(_to_numpy(item["points"]), rng, **opts)
        pb = degrade(_to_numpy(item["points_b"]), rng, **opts)
        Ta, Tb = T1[i % len(T1)], T2[i % len(T2)]
        a = pa @ Ta[:3, :3].T + Ta[:3, 3]
        b = pb @ Tb[:3, :3].T + Tb[:3, 3]
        pairs.append(RegistrationPair(f"{data}/{split}/{condition}/{item.get('index', i)}", a.astype(np.float32),
                                      b.astype(np.float32), Tb @ np.linalg.inv(Ta)))
    if not pairs:
        raise CanocapsInputError(f"dataset {data!r} split {split!r} gave no pairs")
    return pairs


def benchmark_registration(methods: dict[str, Callable[[np.ndarray, np.ndarray], RegistrationResult]],
                           pairs: Sequence[RegistrationPair], rre_max_deg: float = 5.0, rte_max: float = 0.05,
                           progress: bool = True, warmup: bool = True,
                           checkpoint: str | os.PathLike | None = None) -> dict[str, Any]:
    """Run every method on every pair; per-method summary and per-pair records.

    Errors (RRE/RTE/RMSE) are measured on ``pair.a`` against ``pair.T_gt``. With
    ``warmup``, each method first runs once on the first pair untimed (lazy imports,
    first-call allocations), so ``time_per_pair_s`` is the steady-state time.
    ``checkpoint``: a JSON-lines file receiving each record as it is measured; records
    already in it (same method and pair name) are reused, so an interrupted run resumes.

    Returns ``{"summary": {method: summarize_registration(...)}, "records": {method: [...]}}``.
    """
    import json

    from tqdm.auto import tqdm

    done: dict[tuple[str, str], dict[str, Any]] = {}
    ck = None
    if checkpoint is not None:
        from pathlib import Path

        ck = Path(checkpoint)
        if ck.is_file():
            for line in ck.read_text().splitlines():
                try:
                    rec = json.loads(line)
                    done[(rec["method"], rec["pair"])] = rec
                except (ValueError, KeyError):
                    continue  # a line cut short by an interruption
        ck.parent.mkdir(parents=True, exist_ok=True)
    todo = [(p, m) for p in pairs for m in methods if (m, p.name) not in done]
    records: dict[str, list[dict[str, Any]]] = {m: [] for m in methods}
    if warmup and todo:
        for m in {m for _, m in todo}:
            methods[m](pairs[0].a, pairs[0].b)
    bar = tqdm(total=len(pairs) * len(methods), initial=len(pairs) * len(methods) - len(todo),
               desc="registration", disable=not progress, unit="run")
    fh = ck.open("a") if ck is not None else None
    try:
        for pair, mname in todo:
            res = methods[mname](pair.a, pair.b)
            rec: dict[str, Any] = {"method": mname, "pair": pair.name, "time_s": res.time_s,
                                   "fitness": res.fitness, "inlier_rmse": res.inlier_rmse,
                                   "max_correspondence_distance": res.max_correspondence_distance,
                                   "hypothesis": res.hypothesis,
                                   **registration_errors(res.transformation, pair.T_gt, pair.a)}
            done[(mname, pair.name)] = rec
            if fh is not None:
                fh.write(json.dumps(rec) + "\n")
                fh.flush()
            bar.update(1)
    finally:
        bar.close()
        if fh is not None:
            fh.close()
    for pair in pairs:
        for m in methods:
            records[m].append(done[(m, pair.name)])
    summary = {m: summarize_registration(r, rre_max_deg, rte_max) for m, r in records.items()}
    return {"summary": summary, "records": records}


#: Methods :func:`registration_methods` can build.
METHODS = ("canocaps", "fpfh", "pca")


def registration_methods(names: Sequence[str], model: Any = None, **kwargs: Any
                         ) -> dict[str, Callable[[np.ndarray, np.ndarray], RegistrationResult]]:
    """Callables ``(a, b) -> RegistrationResult`` for the named methods.

    ``"canocaps"``: :func:`register` with ``model``; ``"fpfh"``: Open3D FPFH + RANSAC + ICP;
    ``"pca"``: PCA frames (canonical + flips) + ICP. ``kwargs`` (``refine``,
    ``icp_method``, ``max_correspondence_distance``) go to every method.
    """
    from canocaps.heads.baselines import fpfh_ransac_icp

    out: dict[str, Callable[[np.ndarray, np.ndarray], RegistrationResult]] = {}
    for name in names:
        if name == "canocaps":
            if model is None:
                raise CanocapsInputError("method 'canocaps' needs a model")
            out[name] = lambda a, b, _m=model: register(a, b, model=_m, **kwargs)
        elif name == "fpfh":
            out[name] = lambda a, b: fpfh_ransac_icp(a, b, **kwargs)
        elif name == "pca":
            out[name] = lambda a, b: pca_register(a, b, **kwargs)
        else:
            raise CanocapsInputError(f"unknown registration method {name!r} (choose from {', '.join(METHODS)})")
    if not out:
        raise CanocapsInputError("no registration method given")
    return out
