"""Build the real-mesh set from the meshes shipped in pybullet's ``pybullet_data`` (offline, resumable).

Steps (``tools/build_realmesh_set.py`` is the command line):

1. **Enumerate** every ``.obj`` / ``.stl`` under the ``pybullet_data`` folder (sorted, paths
   relative to it). ``.dae`` files are never read: trimesh needs ``pycollada`` for them (not a
   dependency), and in pybullet 3.2.7 they are copies of ``.obj``/``.STL`` meshes (duck, racecar
   parts) or scenes (race course, parking lot).
2. **Exclude by name** (:data:`EXCLUDED_SCAN_NAMES`, :data:`NON_OBJECT_RULES`): classic
   scan-repository models and Debian ``libcgal-demo`` shapes (an independent check on such
   shapes runs at review, so nothing may be trained on them), and things that are not objects
   (ground planes, terrain, cloth, heightmaps, outdoor stadium, the monastery scene).
3. **Sample** each remaining mesh (resumably, chunk by chunk, into ``DST.partial`` with
   :func:`canocaps.data.convert.fill_rows`): ``trimesh.load(force="mesh")`` (scenes
   concatenated), centred on its bounding-box centre and scaled so that its farthest vertex
   lies at radius 1, ``P`` area-weighted surface samples (:func:`canocaps.io.sample_mesh`,
   seed from ``(seed, crc32(name))`` so a mesh's points do not depend on the file list).
4. **Drop** meshes that fail to load, degenerate meshes (fewer than :data:`MIN_FACES` faces,
   zero area, or flat: smallest PCA extent of the samples < :data:`FLAT_RATIO` of the largest)
   and exact duplicates (same vertex count after trimesh's vertex merge, same bounding box and
   same vertex set, both to 1e-4 of the box size, so mirror images stay: one copy kept, the
   visual one before collision/VHACD/low-res copies).
5. **Label and split**: a coarse source label (:data:`CLASS_NAMES`, :func:`label_of`); groups
   (:func:`group_of`: a robot's folder, each ``random_urdfs/NNN`` object its own group) are
   split 80/10/10 with ``sklearn.model_selection.GroupShuffleSplit`` (seeded), separately per
   label so every label reaches every split, and no group is in two splits.
6. **Write** ``DST`` atomically (never over an existing file without ``force``)::

       points   (S, P, 3) float16   unit-sphere surface samples (quantisation <= 2.5e-4)
       split    (S,) str            "train" / "val" / "test"
       label    (S,) int64          index into attrs["class_names"]
       name     (S,) str            path relative to pybullet_data
       group    (S,) str            the split group
       license  (S,) str            first line of the nearest LICENSE/license file above the mesh
                                    (with its path), else the package's zlib licence
       attrs: format_version, class_names, source_package, source_version, source, seed,
              num_points, exclusions (json: name -> reason), non_object_rules, excluded,
              failed, degenerate, duplicates (json lists), build_command, min_faces, flat_ratio

   :func:`write_bundle` writes the same format with a subset of rows and fewer points (the
   bundled ``data/realmesh_test.h5``).
"""
from __future__ import annotations

import fnmatch
import functools
import hashlib
import json
import os
import re
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from canocaps._files import atomic_path, check_output_path
from canocaps.errors import CanocapsInputError, OutputExistsError

__all__ = ["FORMAT_VERSION", "DEFAULT_POINTS", "CLASS_NAMES", "EXCLUDED_SCAN_NAMES", "NON_OBJECT_RULES", "MIN_FACES",
           "FLAT_RATIO", "DEFAULT_LICENSE", "find_source", "source_version", "list_meshes", "group_of", "label_of",
           "license_of", "split_by_group", "build_realmesh", "write_bundle", "BuildReport"]

FORMAT_VERSION = 1
DEFAULT_POINTS = 8192
MESH_SUFFIXES = (".obj", ".stl")
#: coarse source labels (the ``label`` of each mesh)
CLASS_NAMES = ("random_object", "robot_part", "mechanical_part", "everyday_object")
#: meshes with fewer faces are degenerate (boxes, single quads)
MIN_FACES = 20
#: meshes whose smallest PCA extent is below this fraction of the largest are flat
FLAT_RATIO = 1e-3
DEFAULT_LICENSE = "pybullet_data (zlib, per the pybullet package licence)"

_SCAN_REASON = ("classic scan-repository model or Debian libcgal-demo shape: an independent check on such shapes "
                "runs at review, so they are never used")
#: any mesh whose path (relative to pybullet_data, lower case) contains one of these is excluded
EXCLUDED_SCAN_NAMES: dict[str, str] = {name: _SCAN_REASON for name in (
    "bunny", "dragon", "armadillo", "happy", "buddha", "lucy", "horse", "bear", "bull", "camel", "elephant", "cow",
    "teapot")}
#: (fnmatch pattern on the lower-case relative path, reason): things that are not objects
NON_OBJECT_RULES: tuple[tuple[str, str], ...] = (
    ("*.dae", "COLLADA: trimesh needs pycollada (not a dependency); copies of .obj/.stl meshes or scenes"),
    ("plane*", "ground plane"), ("*/plane*", "ground plane"),
    ("*terrain*", "terrain"),
    ("*cloth*", "cloth sheet"),
    ("heightmaps/*", "heightmap"),
    ("*stadium*", "outdoor scene (stadium)"), ("roboschool/*", "outdoor scene (roboschool)"),
    ("samurai_monastry*", "scene (monastery)"),
)

#: top-level folders -> label (others: everyday_object; random_urdfs: random_object)
_ROBOT_FOLDERS = {"a1", "aliengo", "laikago", "mini_cheetah", "quadruped", "franka_panda", "kuka_iiwa", "xarm", "husky",
                  "racecar", "gripper", "biped", "humanoid", "r2d2"}
_MECHANICAL_FOLDERS = {"differential", "bicycle"}
_ROBOT_ROOT_PREFIXES = ("l_finger", "pr2")
_COPY_HINTS = re.compile(r"collision|vhacd|_col\b|_col\.|lowres|lores")


def find_source(source: str | os.PathLike | None = None) -> Path:
    """The ``pybullet_data`` folder: ``source`` if given, else the installed ``pybullet_data`` package."""
    if source is not None:
        p = Path(source)
        if not p.is_dir():
            raise CanocapsInputError(f"--source {p}: not a folder (give a pybullet_data folder)")
        return p
    try:
        import pybullet_data  # type: ignore[import-not-found]
    except ImportError:
        raise CanocapsInputError("pybullet_data not found: `pip install pybullet` (or `pip download pybullet` and "
                                 "unzip the wheel) and pass its pybullet_data folder with --source DIR") from None
    return Path(pybullet_data.getDataPath())


def source_version(src: Path) -> str:
    """pybullet's version: from a ``pybullet-*.dist-info`` beside ``src`` (wheel / site-packages layout)."""
    for meta in sorted(src.resolve().parent.glob("pybullet-*.dist-info/METADATA")):
        for line in meta.read_text(errors="replace").splitlines():
            if line.startswith("Version:"):
                return line.split(":", 1)[1].strip()
    return "unknown"


def _excluded_reason(rel: str) -> str | None:
    low = rel.lower()
    for name, reason in EXCLUDED_SCAN_NAMES.items():
        if name in low:
            return f"{reason} ({name!r})"
    for pattern, reason in NON_OBJECT_RULES:
        if fnmatch.fnmatch(low, pattern):
            return reason
    return None


def list_meshes(src: Path) -> tuple[list[str], list[tuple[str, str]]]:
    """(candidate mesh paths, excluded ``(path, reason)``), paths relative to ``src`` with ``/``, sorted."""
    keep, excluded = [], []
    for p in sorted(src.rglob("*")):
        if not p.is_file() or p.suffix.lower() not in MESH_SUFFIXES + (".dae",):
            continue
        rel = p.relative_to(src).as_posix()
        reason = _excluded_reason(rel)
        if reason is not None:
            excluded.append((rel, reason))
        else:
            keep.append(rel)
    return keep, excluded


def group_of(rel: str) -> str:
    """The split group: ``random_urdfs/NNN`` per random object, a file's top folder, else its root-level stem's
    first word (``duck_vhacd.obj`` -> ``duck``; ``textured_`` is dropped; a one- or two-letter word takes the next)."""
    parts = rel.split("/")
    if parts[0] == "random_urdfs" and len(parts) > 2:
        return "/".join(parts[:2])
    if len(parts) > 1:
        return parts[0]
    tokens = parts[0].rsplit(".", 1)[0].lower().removeprefix("textured_").split("_")
    return "_".join(tokens[:2]) if len(tokens[0]) <= 2 else tokens[0]  # duck_vhacd -> duck, l_finger_tip -> l_finger


def label_of(rel: str) -> int:
    """Index into :data:`CLASS_NAMES` from the path (folder tables in this module)."""
    parts = rel.split("/")
    top = parts[0].lower()
    if top == "random_urdfs":
        return CLASS_NAMES.index("random_object")
    if top in _ROBOT_FOLDERS or (len(parts) == 1 and top.startswith(_ROBOT_ROOT_PREFIXES)):
        return CLASS_NAMES.index("robot_part")
    if top in _MECHANICAL_FOLDERS:
        return CLASS_NAMES.index("mechanical_part")
    return CLASS_NAMES.index("everyday_object")


def license_of(src: Path, rel: str) -> str:
    """First non-empty line of the nearest ``LICENSE*``/``license*`` file walking up from the mesh's folder
    (with that file's path in brackets), else :data:`DEFAULT_LICENSE`."""
    return _folder_license(src.resolve(), (src / rel).parent.resolve())


@functools.lru_cache(maxsize=4096)
def _folder_license(src: Path, folder: Path) -> str:
    for f in sorted(folder.iterdir()):
        if f.name.lower().startswith("license") and f.is_file():
            lines = [x.strip() for x in f.read_text(errors="replace").splitlines() if x.strip()]
            return f"{lines[0] if lines else '(empty)'} [{f.relative_to(src).as_posix()}]"
    if folder == src or folder.parent == folder:
        return DEFAULT_LICENSE
    return _folder_license(src, folder.parent)


def split_by_group(groups: Sequence[str], labels: Sequence[int], seed: int = 0,
                   fractions: tuple[float, float] = (0.1, 0.1)) -> np.ndarray:
    """``(S,)`` array of "train"/"val"/"test": whole groups, ~80/10/10 within each label (seeded).

    ``fractions`` = (val, test) fractions of the groups; labels with fewer than 3 groups stay in train.
    """
    from sklearn.model_selection import GroupShuffleSplit

    groups, labels = np.asarray(groups, dtype=object), np.asarray(labels)
    out = np.full(len(groups), "train", dtype=object)
    val_frac, test_frac = fractions
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        if len(set(groups[idx])) < 3:
            continue
        rest, test = next(GroupShuffleSplit(1, test_size=test_frac, random_state=seed).split(idx, groups=groups[idx]))
        out[idx[test]] = "test"
        idx = idx[rest]
        _, val = next(GroupShuffleSplit(1, test_size=val_frac / (1 - test_frac), random_state=seed + 1)
                      .split(idx, groups=groups[idx]))
        out[idx[val]] = "val"
    return out


def _strings(ds: Any) -> list[str]:
    """An h5py string dataset as a list of str."""
    return [x.decode() if isinstance(x, bytes) else str(x) for x in ds[()]]


def _mesh_seed(rel: str, seed: int) -> int:
    return int(np.random.SeedSequence([int(seed), zlib.crc32(rel.encode())]).generate_state(1)[0])


def _load(path: Path) -> Any:
    import trimesh

    mesh = trimesh.load(str(path), force="mesh")  # scenes are concatenated into one mesh
    if not isinstance(mesh, trimesh.Trimesh) or len(mesh.faces) == 0:
        raise ValueError("no triangles")
    if not np.isfinite(np.asarray(mesh.vertices)).all():
        raise ValueError("vertices contain NaN or inf")
    return mesh


def _vertex_hash(vertices: np.ndarray) -> str:
    """Hash of the vertex set ``(V, 3)`` rounded to 1e-4 of its bounding box (order-free)."""
    lo = vertices.min(0)
    q = np.round((vertices - lo) / max(float(np.ptp(vertices, axis=0).max()), 1e-12), 4) + 0.0
    q = q[np.lexsort(q.T[::-1])]
    return hashlib.sha1(np.ascontiguousarray(q).tobytes()).hexdigest()[:20]


def _sample_row(src: Path, rel: str, num_points: int, seed: int) -> dict[str, Any]:
    """One row of the partial file: unit-sphere samples + what filtering and deduplication need."""
    from canocaps.io import sample_mesh

    row: dict[str, Any] = {"points": np.zeros((num_points, 3), np.float16), "status": 1, "faces": 0, "area": 0.0,
                           "flat": 0.0, "verts": 0, "bbox": np.zeros(6), "vhash": "", "note": ""}
    try:
        mesh = _load(src / rel)
    except Exception as e:  # trimesh raises many kinds
        row["note"] = f"cannot load: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:200]
        return row
    row.update(status=2, faces=len(mesh.faces), area=float(mesh.area), verts=len(mesh.vertices),
               bbox=np.asarray(mesh.bounds, np.float64).ravel(), vhash=_vertex_hash(np.asarray(mesh.vertices)))
    if len(mesh.faces) < MIN_FACES:
        row["note"] = f"only {len(mesh.faces)} faces (< {MIN_FACES})"
        return row
    if not mesh.area > 0:
        row["note"] = "zero surface area"
        return row
    verts = np.asarray(mesh.vertices, np.float64)[np.unique(np.asarray(mesh.faces))]
    centre = np.asarray(mesh.bounds, np.float64).mean(0)
    radius = float(np.sqrt(((verts - centre) ** 2).sum(1)).max())
    pts = (sample_mesh(mesh, num_points, seed=_mesh_seed(rel, seed), name=rel).astype(np.float64) - centre) / radius
    centred = pts - pts.mean(0)
    axes = np.linalg.svd(centred, full_matrices=False)[2]
    extent = np.ptp(centred @ axes.T, axis=0)
    row["flat"] = float(extent.min() / extent.max())
    row["points"] = pts.astype(np.float16)
    if row["flat"] < FLAT_RATIO:
        row["note"] = f"flat: smallest PCA extent {row['flat']:.2e} of the largest (< {FLAT_RATIO:g})"
        return row
    row["status"] = 0
    return row


def _signature(rels: Sequence[str], num_points: int, seed: int) -> str:
    h = hashlib.sha1(f"realmesh:{FORMAT_VERSION}:{num_points}:{seed}:{MIN_FACES}:{FLAT_RATIO}:vhash".encode())
    for r in rels:
        h.update(r.encode() + b"\0")
    return h.hexdigest()


def _dedupe(rels: Sequence[str], verts: np.ndarray, bbox: np.ndarray,
            vhash: Sequence[str]) -> tuple[list[int], list[tuple[str, str]]]:
    """Indices kept and ``(dropped, kept)`` pairs among exact duplicates (visual copies first)."""
    order = sorted(range(len(rels)), key=lambda i: (bool(_COPY_HINTS.search(rels[i].lower())), rels[i]))
    seen: dict[tuple, int] = {}
    keep, dropped = [], []
    for i in order:
        size = max(float(np.ptp(bbox[i].reshape(2, 3), axis=0).max()), 1e-12)
        key = (int(verts[i]), tuple(np.round(bbox[i] / size, 4) + 0.0), vhash[i])
        if key in seen:
            dropped.append((rels[i], rels[seen[key]]))
        else:
            seen[key] = i
            keep.append(i)
    return sorted(keep), sorted(dropped)


@dataclass
class BuildReport:
    """What :func:`build_realmesh` did: output path (``DST`` or ``DST.partial``) and counts."""

    path: Path
    complete: bool
    candidates: int
    excluded: int
    failed: int = 0
    degenerate: int = 0
    duplicates: int = 0
    kept: int = 0


def _write(path: Path, points: np.ndarray, split: Sequence[str], label: np.ndarray, name: Sequence[str],
           group: Sequence[str], lic: Sequence[str], attrs: dict[str, Any], force: bool, compress: bool = False) -> None:
    import h5py

    S, P = points.shape[:2]
    strings = h5py.string_dtype()
    opts: dict[str, Any] = {"compression": "gzip", "shuffle": True} if compress else {}
    with atomic_path(path, force) as tmp:
        with h5py.File(tmp, "w") as f:
            f.create_dataset("points", data=points.astype(np.float16), chunks=(1, P, 3) if S else None, **opts)
            f.create_dataset("split", data=np.asarray(split, dtype=object), dtype=strings)
            f.create_dataset("label", data=np.asarray(label, dtype=np.int64))
            f.create_dataset("name", data=np.asarray(name, dtype=object), dtype=strings)
            f.create_dataset("group", data=np.asarray(group, dtype=object), dtype=strings)
            f.create_dataset("license", data=np.asarray(lic, dtype=object), dtype=strings)
            f.attrs.update(attrs)


def build_realmesh(source: str | os.PathLike | None, dst: str | os.PathLike, num_points: int = DEFAULT_POINTS, *,
                   seed: int = 0, chunk: int = 64, force: bool = False, limit: int | None = None,
                   progress: bool = True, command: str = "", version: str | None = None) -> BuildReport:
    """Build the set into ``dst`` (module docstring); resumable through ``DST.partial``.

    Args:
        source: a ``pybullet_data`` folder, or None for the installed package.
        limit: sample at most this many meshes in this call (the partial file stays; run again).
        command: the command line recorded in ``attrs["build_command"]``.
        version: pybullet's version (default: read from a ``pybullet-*.dist-info`` beside the folder).
    """
    import h5py

    from canocaps.data.convert import fill_rows

    dst = Path(dst)
    if int(num_points) < 1:
        raise CanocapsInputError(f"--num-points must be >= 1, got {num_points}")
    check_output_path(dst, force)
    src = find_source(source)
    rels, excluded = list_meshes(src)
    if not rels:
        raise CanocapsInputError(f"{src}: no .obj/.stl meshes left after the exclusions (is it a pybullet_data folder?)")
    P = int(num_points)
    partial = dst.with_name(dst.name + ".partial")

    def create(f: Any) -> None:
        C = len(rels)
        f.create_dataset("points", (C, P, 3), dtype="f2", chunks=(1, P, 3))
        for key, dtype in (("status", "i1"), ("faces", "i8"), ("area", "f8"), ("flat", "f8"), ("verts", "i8")):
            f.create_dataset(key, (C,), dtype=dtype)
        f.create_dataset("bbox", (C, 6), dtype="f8")
        f.create_dataset("note", (C,), dtype=h5py.string_dtype())
        f.create_dataset("vhash", (C,), dtype=h5py.string_dtype())

    done = fill_rows(partial, _signature(rels, P, int(seed)), len(rels), create,
                     lambda i: _sample_row(src, rels[i], P, int(seed)), chunk=chunk, limit=limit, progress=progress,
                     desc="realmesh")
    report = BuildReport(partial, False, len(rels), len(excluded))
    if done < len(rels):
        return report
    with h5py.File(partial, "r") as f:
        status = np.asarray(f["status"])
        verts, bbox = np.asarray(f["verts"]), np.asarray(f["bbox"])
        notes, vhash = _strings(f["note"]), _strings(f["vhash"])
        ok = np.flatnonzero(status == 0)
        kept_local, duplicates = _dedupe([rels[i] for i in ok], verts[ok], bbox[ok], [vhash[i] for i in ok])
        rows = ok[kept_local]
        points = np.asarray(f["points"])[rows]
    names = [rels[i] for i in rows]
    labels = np.asarray([label_of(r) for r in names], dtype=np.int64)
    groups = [group_of(r) for r in names]
    splits = split_by_group(groups, labels, int(seed))
    licenses = [license_of(src, r) for r in names]
    failed = [(rels[i], notes[i]) for i in np.flatnonzero(status == 1)]
    degenerate = [(rels[i], notes[i]) for i in np.flatnonzero(status == 2)]
    attrs = {"format_version": FORMAT_VERSION, "class_names": json.dumps(list(CLASS_NAMES)),
             "source_package": "pybullet", "source_version": version or source_version(src), "source": str(src),
             "seed": int(seed), "num_points": P, "exclusions": json.dumps(EXCLUDED_SCAN_NAMES),
             "non_object_rules": json.dumps(NON_OBJECT_RULES), "excluded": json.dumps(excluded),
             "failed": json.dumps(failed), "degenerate": json.dumps(degenerate), "duplicates": json.dumps(duplicates),
             "build_command": command, "min_faces": MIN_FACES, "flat_ratio": FLAT_RATIO,
             "normalisation": "bounding-box centre at 0, farthest vertex at radius 1"}
    if dst.exists() and not force:
        raise OutputExistsError(f"{dst} exists (use --force / force=True to overwrite)")
    _write(dst, points, list(splits), labels, names, groups, licenses, attrs, force=force)
    partial.unlink()
    return BuildReport(dst, True, len(rels), len(excluded), len(failed), len(degenerate), len(duplicates), len(rows))


def write_bundle(full: str | os.PathLike, dst: str | os.PathLike, num_points: int = 4096, max_items: int = 96,
                 split: str = "test", seed: int = 0, force: bool = False, command: str = "") -> int:
    """Write the ``split`` rows of a built set (at most ``max_items``, ``num_points`` each) to ``dst``; return S.

    When the split has more rows, every mesh that is not a random object is kept and random
    objects fill the rest (seeded choice), so the small file keeps the real parts and objects.
    The first ``num_points`` stored samples are kept (they are i.i.d. surface samples).
    """
    import h5py

    full = Path(full)
    check_output_path(dst, force)
    with h5py.File(full, "r") as f:
        P = int(f["points"].shape[1])
        if not 1 <= int(num_points) <= P:
            raise CanocapsInputError(f"--bundle-points must be in 1..{P}, got {num_points}")
        rows = np.flatnonzero(np.asarray(_strings(f["split"])) == split)
        labels = np.asarray(f["label"])[rows]
        random_label = json.loads(f.attrs["class_names"]).index("random_object")
        others = rows[labels != random_label]
        randoms = np.random.default_rng(seed).permutation(rows[labels == random_label])
        chosen = np.sort(np.concatenate([others, randoms])[:int(max_items)])
        if len(others) > max_items:
            chosen = np.sort(others[:int(max_items)])
        points = np.asarray(f["points"])[chosen][:, :int(num_points)]
        attrs = dict(f.attrs)
        label = np.asarray(f["label"])[chosen]
        names, groups, lic = ([_strings(f[key])[i] for i in chosen] for key in ("name", "group", "license"))
    attrs.update(num_points=int(num_points), bundle_of=f"{len(chosen)} of {len(rows)} {split}-split meshes of "
                 f"{full.name}, first {num_points} of {P} points", build_command=command or attrs.get("build_command", ""))
    _write(Path(dst), points, [split] * len(chosen), label, names, groups, lic, attrs, force=force, compress=True)
    return len(chosen)

