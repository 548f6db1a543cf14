"""Read and write point clouds (numpy in, numpy out).

Reading (:func:`read_points`) returns a ``(N, 3)`` float32 array from

* point clouds: ``.ply`` (ascii/binary, without faces), ``.pcd`` (ascii/binary),
  ``.xyz`` / ``.pts`` / ``.txt`` (whitespace- or comma-separated, first 3 columns; leading
  header lines are skipped), ``.npy`` / ``.npz`` (first 3 columns; for ``.npz`` the key
  ``points``, else ``data``, else the first array);
* meshes: ``.obj``, ``.off``, ``.stl`` and ``.ply`` with faces, sampled uniformly on their
  surface (area-weighted) with a seed.

Writing (:func:`write_points`) picks the format from the extension (``.ply`` binary,
``.pcd`` binary, ``.xyz``/``.pts``/``.txt``, ``.npy``, ``.npz``), writes atomically and
never overwrites an existing file unless ``force=True``.

Every problem with the input raises :class:`~canocaps.errors.CanocapsInputError` with a
single line naming the file. Open3D and trimesh are imported lazily (inside functions).
"""
from __future__ import annotations

import io as _stdio
import os
import re
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from canocaps._files import atomic_path
from canocaps.errors import CanocapsInputError, CanocapsWarning

__all__ = [
    "POINT_EXTENSIONS",
    "MESH_EXTENSIONS",
    "READ_EXTENSIONS",
    "WRITE_EXTENSIONS",
    "DEFAULT_MESH_POINTS",
    "read_points",
    "read_mesh",
    "write_points",
    "validate_points",
    "as_points",
    "subsample",
    "unit_sphere",
    "check_pose",
    "POSE_TOLERANCE",
    "COORDINATE_RANGE",
    "sample_mesh",
]

POINT_EXTENSIONS = (".ply", ".pcd", ".xyz", ".pts", ".txt", ".npy", ".npz")
MESH_EXTENSIONS = (".obj", ".off", ".stl", ".ply")
READ_EXTENSIONS = tuple(sorted(set(POINT_EXTENSIONS) | set(MESH_EXTENSIONS)))
WRITE_EXTENSIONS = (".ply", ".pcd", ".xyz", ".pts", ".txt", ".npy", ".npz")
DEFAULT_MESH_POINTS = 2048

#: Relative size (to the largest) below which a spread of the cloud counts as zero:
#: singular values of the centred, scaled cloud (float64). A collinear cloud is refused,
#: a coplanar one warned about (:func:`check_pose`).
POSE_TOLERANCE = 1e-6
#: The radii (input units) the pose heads accept: distances are squared in float64
#: downstream (k-d trees, ICP), so they must stay well inside float64's normal range.
COORDINATE_RANGE = (1e-150, 1e150)

_TEXT_EXTENSIONS = (".xyz", ".pts", ".txt")
_HEADER_SCAN_LINES = 64


# ----------------------------------------------------------------------------- helpers


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    msg = text[0].strip() if text else ""
    return f"{type(e).__name__}: {msg}" if msg else type(e).__name__


@contextmanager
def _quiet_open3d() -> Iterator[Any]:
    """Import Open3D with its console output limited to errors (restored afterwards)."""
    import open3d as o3d

    with o3d.utility.VerbosityContextManager(o3d.utility.VerbosityLevel.Error):
        yield o3d


def _check_file(path: str | os.PathLike, allowed: tuple[str, ...]) -> tuple[Path, str]:
    if not isinstance(path, (str, os.PathLike)):
        raise CanocapsInputError(f"expected a file path, got {type(path).__name__}")
    p = Path(path)
    if not p.exists():
        raise CanocapsInputError(f"{p}: no such file")
    if p.is_dir():
        raise CanocapsInputError(f"{p}: is a directory, expected a file")
    ext = p.suffix.lower()
    if ext not in allowed:
        raise CanocapsInputError(f"{p}: unknown extension {ext or '(none)'!r}; supported: {' '.join(allowed)}")
    if p.stat().st_size == 0:
        raise CanocapsInputError(f"{p}: file is empty (0 bytes)")
    return p, ext


def _to_array(obj: Any, name: str, seed: int = 0, num_mesh_points: int = DEFAULT_MESH_POINTS) -> Any:
    """The one conversion of a cloud-like object to something ``np.asarray`` reads.

    numpy arrays (subclasses such as trimesh's ``TrackedArray`` included) pass as they are;
    torch tensors are detached and moved to the CPU; Open3D ``PointCloud`` -> its points
    (tensor-based ``open3d.t.geometry`` objects are converted to the legacy ones first);
    Open3D ``TriangleMesh`` and trimesh ``Trimesh`` with faces -> ``num_mesh_points``
    points sampled on the surface (:func:`sample_mesh`, seeded); meshes without faces and
    trimesh ``PointCloud`` -> their vertices. Anything else goes to ``np.asarray`` as is.
    """
    if isinstance(obj, np.ndarray):
        return np.asarray(obj)
    mod = type(obj).__module__ or ""
    if mod.startswith("torch") and hasattr(obj, "detach"):
        if getattr(obj, "is_meta", False):
            raise CanocapsInputError(f"{name}: a meta tensor holds no data")
        t = obj.detach().cpu()
        if str(t.dtype) == "torch.bfloat16":  # numpy has no bfloat16
            t = t.float()
        return t.numpy()
    if mod.startswith("open3d"):
        if hasattr(obj, "to_legacy"):  # open3d.t.geometry (tensor) PointCloud / TriangleMesh
            try:
                obj = obj.to_legacy()
            except Exception as e:  # noqa: BLE001 - Open3D raises RuntimeError and others
                raise CanocapsInputError(f"{name}: cannot convert Open3D {type(obj).__name__} ({_one_line(e)})") from e
        if hasattr(obj, "triangles") and hasattr(obj, "vertices"):  # TriangleMesh
            verts = np.asarray(obj.vertices)
            if len(obj.triangles) == 0:
                return verts
            import trimesh

            return sample_mesh(trimesh.Trimesh(verts, np.asarray(obj.triangles), process=False), num_mesh_points,
                               seed=seed, name=name)
        if hasattr(obj, "points"):
            return np.asarray(obj.points)
        raise CanocapsInputError(f"{name}: unsupported Open3D object {type(obj).__name__}")
    if mod.startswith("trimesh"):
        faces = getattr(obj, "faces", None)
        if faces is not None and len(faces) > 0:
            return sample_mesh(obj, num_mesh_points, seed=seed, name=name)
        if hasattr(obj, "vertices"):
            return np.asarray(obj.vertices)
        raise CanocapsInputError(f"{name}: unsupported trimesh object {type(obj).__name__}")
    return obj


def _check(array: Any, min_points: int, name: str, dtype: Any = np.float32) -> np.ndarray:
    """The one check: ``(N, 3)`` real, finite in ``dtype``, at least ``min_points`` rows -> ``dtype`` copy."""
    if min_points < 0:
        raise CanocapsInputError(f"min_points must be >= 0, got {min_points}")
    try:
        arr = np.asarray(array)
    except (ValueError, TypeError) as e:  # ragged lists and the like
        raise CanocapsInputError(f"{name}: not an array of numbers ({_one_line(e)})") from e
    if arr.size == 0:
        raise CanocapsInputError(f"{name}: empty (0 points)")
    if arr.ndim != 2 or arr.shape[1] != 3:
        raise CanocapsInputError(f"{name}: expected shape (N, 3), got {tuple(arr.shape)}")
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_) or np.iscomplexobj(arr):
        raise CanocapsInputError(f"{name}: expected real numbers, got dtype {arr.dtype}")
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise CanocapsInputError(f"dtype must be float32 or float64, got {dtype}")
    with np.errstate(over="ignore"):
        out = np.ascontiguousarray(arr, dtype=dtype).copy()
    bad = int((~np.isfinite(out)).any(axis=1).sum())
    if bad:
        raise CanocapsInputError(
            f"{name}: {bad} of {len(out)} points contain NaN or inf (or overflow {dtype})"
        )
    if len(out) < min_points:
        raise CanocapsInputError(f"{name}: {len(out)} points, at least {min_points} required")
    return out


def validate_points(array: Any, min_points: int = 1, name: str = "points", dtype: Any = np.float32) -> np.ndarray:
    """Check and convert a point cloud to a C-contiguous ``(N, 3)`` float32 numpy array (a copy).

    ``dtype=np.float64`` keeps a float64 input's precision (the pose heads centre and
    scale in float64 before anything is rounded to float32).

    Accepts numpy arrays, torch tensors (any device; detached), nested lists, an Open3D
    ``PointCloud`` (its points), a trimesh ``PointCloud`` (its vertices) and meshes
    (trimesh ``Trimesh``, Open3D ``TriangleMesh``), which are *sampled* uniformly on their
    surface to ``DEFAULT_MESH_POINTS`` = 2048 points (seed 0); use :func:`sample_mesh` for
    other counts. :func:`as_points` also takes paths.

    Raises:
        CanocapsInputError: (one line, starting with ``name``) if the input is empty,
            not ``(N, 3)``, not numeric, has NaN/inf (reports how many points), or has
            fewer than ``min_points`` points.
    """
    if min_points < 0:
        raise CanocapsInputError(f"min_points must be >= 0, got {min_points}")
    return _check(_to_array(array, name), min_points, name, dtype)


def as_points(obj: Any, name: str = "points", min_points: int = 1, seed: int = 0, *,
              dtype: Any = np.float32, pose: bool = False) -> np.ndarray:
    """The input edge: any cloud-like object -> a checked ``(N, 3)`` array (``dtype``, float32 default).

    ``obj``: a path (any format of :func:`read_points`), a numpy array or torch tensor of
    shape ``(N, 3)`` or ``(1, N, 3)``, an Open3D ``PointCloud`` / ``TriangleMesh``, a
    trimesh ``PointCloud`` / ``Trimesh`` (meshes are sampled: :data:`DEFAULT_MESH_POINTS`
    points, ``seed``). Every command and head takes user clouds through here once;
    bad input raises :class:`CanocapsInputError` with one line naming ``name``.
    ``dtype=np.float64`` keeps float64 precision; ``pose=True`` also requires a defined
    pose (:func:`check_pose`: all-equal or collinear clouds refused, coplanar warned).
    """
    if isinstance(obj, (str, os.PathLike)):
        out = read_points(Path(obj), min_points=min_points, seed=seed, dtype=dtype)
    else:
        arr = _to_array(obj, name, seed=seed)
        if isinstance(arr, np.ndarray) and arr.ndim == 3 and arr.shape[0] == 1:
            arr = arr[0]
        out = _check(arr, min_points, name, dtype)
    if pose:
        check_pose(out, name)
    return out


def subsample(points: np.ndarray, num_points: int | None, seed: int = 0, first: bool = False) -> np.ndarray:
    """``num_points`` rows of ``points`` ``(N, 3)`` (all of them when N <= num_points or None).

    ``first``: the first rows (the official test protocol); otherwise a seeded random
    subset without replacement, kept in the input's order (the same ``seed``, the same rows).
    """
    if num_points is None or len(points) <= num_points:
        return points
    if first:
        return points[:num_points]
    idx = np.random.default_rng(seed).choice(len(points), size=num_points, replace=False)
    return points[np.sort(idx)]


def unit_sphere(points: np.ndarray, min_radius: float = 0.0) -> tuple[np.ndarray, float]:
    """The one normalisation: centroid ``(3,)`` float64 and radius of ``(N, 3)`` points.

    The radius is the largest distance to the centroid (float64), floored at ``min_radius``;
    ``(points - centroid) / radius`` lies in the unit sphere, where the networks are trained.
    Any finite scale works: when squaring would overflow or lose precision to subnormals,
    the cloud is first divided by its largest coordinate. A cloud of equal points has
    radius 0 (the pose heads refuse it first: :func:`check_pose`).
    """
    p = np.asarray(points)
    c = p.mean(axis=0, dtype=np.float64)
    with np.errstate(over="ignore", under="ignore"):
        r = float(np.sqrt(((p - c) ** 2).sum(axis=1)).max())
    if not (1e-140 < r < 1e140):  # overflowed, or near float64's subnormals: compute scaled
        m = float(np.abs(p).max(initial=0.0))
        if m > 0.0:
            q = p / m
            cq = q.mean(axis=0, dtype=np.float64)
            c = cq * m
            r = float(np.sqrt(((q - cq) ** 2).sum(axis=1)).max()) * m
    return c, max(r, min_radius)


def check_pose(points: np.ndarray, name: str = "points") -> None:
    """Require a cloud whose rigid pose is defined; ``points`` ``(N, 3)`` checked (float32/64).

    Refuses (:class:`CanocapsInputError`, one line) a cloud whose points are all equal
    (no position scale, no orientation), a collinear one (the rotation about the line is
    undefined) and one whose radius lies outside :data:`COORDINATE_RANGE`; warns
    (:class:`canocaps.errors.CanocapsWarning`, one line) for a coplanar one (a flat cloud's
    two sides are indistinguishable). "Zero" spread: a singular value of the centred cloud
    below :data:`POSE_TOLERANCE` times the largest, computed in float64 after scaling.
    """
    n = len(points)
    p = np.asarray(points)
    spread = float(np.ptp(p, axis=0).max())
    if spread <= 1e-12 * float(np.abs(p).max()):  # equal up to float64 rounding of their position
        raise CanocapsInputError(f"{name}: all {n} points are equal; the pose is undefined")
    c, r = unit_sphere(p)
    lo, hi = COORDINATE_RANGE
    if not lo <= r <= hi:
        raise CanocapsInputError(f"{name}: the cloud's radius {r:.3g} is outside the supported "
                                 f"{lo:g} .. {hi:g}; rescale it")
    sv = np.linalg.svd((np.asarray(p, dtype=np.float64) - c) / r, compute_uv=False)
    if sv[1] <= POSE_TOLERANCE * sv[0]:
        raise CanocapsInputError(f"{name}: all {n} points lie on one line; the rotation about it is undefined")
    if sv[2] <= POSE_TOLERANCE * sv[0]:
        import warnings

        warnings.warn(f"{name}: all {n} points lie in one plane; its two sides are indistinguishable, "
                      f"so the pose may be flipped", CanocapsWarning, stacklevel=3)


def sample_mesh(mesh: Any, num_points: int, seed: int = 0, name: str = "mesh") -> np.ndarray:
    """``(num_points, 3)`` float32 points uniform on the surface of a trimesh ``Trimesh`` (area-weighted).

    Reproducible: the same ``seed`` gives the same points.
    """
    import trimesh

    if num_points < 1:
        raise CanocapsInputError(f"{name}: num_points must be >= 1, got {num_points}")
    if len(mesh.faces) == 0:
        raise CanocapsInputError(f"{name}: mesh has no faces")
    if not np.isfinite(np.asarray(mesh.vertices)).all():
        raise CanocapsInputError(f"{name}: mesh vertices contain NaN or inf")
    if not float(mesh.area) > 0.0:
        raise CanocapsInputError(f"{name}: mesh has zero surface area (degenerate faces)")
    pts, _ = trimesh.sample.sample_surface(mesh, int(num_points), seed=int(seed))
    return np.asarray(pts, dtype=np.float32)


# ----------------------------------------------------------------------------- header/body checks
# A file whose body disagrees with its own header (a truncated download, a cut copy) is an
# error naming the file: the libraries below would otherwise read what is there, silently.

_HEADER_MAX_BYTES = 1 << 16
_PLY_TYPES = {"char": 1, "uchar": 1, "int8": 1, "uint8": 1, "short": 2, "ushort": 2, "int16": 2, "uint16": 2,
              "int": 4, "uint": 4, "int32": 4, "uint32": 4, "float": 4, "float32": 4, "double": 8, "float64": 8}


def _data_lines(body: bytes) -> int:
    """Non-blank lines of a text body (comment lines starting with '#' excluded)."""
    return sum(1 for ln in body.split(b"\n") if ln.strip() and not ln.lstrip().startswith(b"#"))


def _ply_header(p: Path, raw: bytes) -> tuple[int, str, list[tuple[str, int, list[Any]]]]:
    """(header length in bytes, format, [(element, count, [property size or None for lists])])."""
    end = raw.find(b"end_header", 0, _HEADER_MAX_BYTES)
    if not raw.startswith(b"ply") or end < 0:
        raise CanocapsInputError(f"{p}: not a PLY file (no 'ply' ... 'end_header' header)")
    nl = raw.find(b"\n", end)
    if nl < 0:
        raise CanocapsInputError(f"{p}: PLY header ends without a newline (truncated file?)")
    try:
        lines = raw[:end].decode("ascii").splitlines()
    except UnicodeDecodeError:
        raise CanocapsInputError(f"{p}: malformed PLY header (not ASCII)") from None
    fmt, elements = "", []
    for line in lines[1:]:
        tok = line.split()
        if not tok or tok[0] in ("comment", "obj_info"):
            continue
        try:
            if tok[0] == "format":
                fmt = tok[1]
            elif tok[0] == "element":
                count = int(tok[2])
                if count < 0:
                    raise ValueError
                elements.append((tok[1], count, []))
            elif tok[0] == "property" and elements:
                elements[-1][2].append(None if tok[1] == "list" else _PLY_TYPES[tok[1]])
        except (IndexError, ValueError, KeyError):
            raise CanocapsInputError(f"{p}: malformed PLY header line {line.strip()[:60]!r}") from None
    if fmt not in ("ascii", "binary_little_endian", "binary_big_endian"):
        raise CanocapsInputError(f"{p}: malformed PLY header (format {fmt or 'missing'!r})")
    return nl + 1, fmt, elements


def _ply_counts(elements: list[tuple[str, int, list[Any]]]) -> str:
    plural = {"vertex": "vertices"}
    return ", ".join(f"{count} {name if count == 1 else plural.get(name, name + 's')}" for name, count, _ in elements)


def _check_ply(p: Path) -> dict[str, int]:
    """Compare a PLY body with its header; return the declared element counts."""
    with open(p, "rb") as f:
        head = f.read(_HEADER_MAX_BYTES)
    start, fmt, elements = _ply_header(p, head)
    body_size = p.stat().st_size - start
    declared = _ply_counts(elements)
    if fmt == "ascii":
        expected, have = sum(count for _, count, _ in elements), _data_lines(p.read_bytes()[start:])
        if have < expected:
            raise CanocapsInputError(f"{p}: truncated PLY: the header declares {declared} "
                                     f"({expected} data lines), the body has {have}")
        if have > expected:
            raise CanocapsInputError(f"{p}: PLY body has {have} data lines, the header declares {declared} "
                                     f"({expected} lines)")
    elif all(size is not None for _, _, props in elements for size in props):
        expected = sum(count * sum(props) for _, count, props in elements)
        if body_size < expected:
            raise CanocapsInputError(f"{p}: truncated PLY: the header declares {declared} ({expected} bytes of "
                                     f"data), the file holds {body_size}")
        if body_size > expected:
            raise CanocapsInputError(f"{p}: PLY holds {body_size - expected} bytes after the {declared} "
                                     "its header declares")
    return {name: count for name, count, _ in elements}


def _pcd_header(p: Path, raw: bytes) -> tuple[int, dict[str, list[str]]]:
    fields: dict[str, list[str]] = {}
    pos = 0
    while pos < min(len(raw), _HEADER_MAX_BYTES):
        nl = raw.find(b"\n", pos)
        line = raw[pos:nl if nl >= 0 else len(raw)]
        pos = len(raw) if nl < 0 else nl + 1
        try:
            tok = line.decode("ascii").split()
        except UnicodeDecodeError:
            raise CanocapsInputError(f"{p}: malformed PCD header (not ASCII)") from None
        if not tok or tok[0].startswith("#"):
            continue
        fields[tok[0].upper()] = tok[1:]
        if tok[0].upper() == "DATA":
            return pos, fields
    raise CanocapsInputError(f"{p}: not a PCD file (no DATA line in its header)")


def _check_pcd(p: Path) -> int:
    """Compare a PCD body with its header; return the declared number of points."""
    with open(p, "rb") as f:
        head = f.read(_HEADER_MAX_BYTES)
    start, h = _pcd_header(p, head)
    try:
        points = int(h["POINTS"][0]) if "POINTS" in h else int(h["WIDTH"][0]) * int(h["HEIGHT"][0])
        width, height = int(h["WIDTH"][0]), int(h["HEIGHT"][0])
        sizes = [int(s) for s in h.get("SIZE", [])]
        counts = [int(c) for c in h.get("COUNT", ["1"] * len(sizes))]
        data = h["DATA"][0].lower()
    except (KeyError, IndexError, ValueError):
        raise CanocapsInputError(f"{p}: malformed PCD header (POINTS/WIDTH/HEIGHT/SIZE/COUNT/DATA)") from None
    if width * height != points or points < 0:
        raise CanocapsInputError(f"{p}: PCD header says POINTS {points} but WIDTH*HEIGHT = {width}*{height}")
    body_size = p.stat().st_size - start
    if data == "ascii":
        have = _data_lines(p.read_bytes()[start:])
        if have != points:
            raise CanocapsInputError(f"{p}: {'truncated PCD: ' if have < points else ''}the header declares "
                                     f"{points} points, the body has {have} data lines")
    elif data == "binary":
        if len(sizes) != len(counts) or not sizes:
            raise CanocapsInputError(f"{p}: malformed PCD header (SIZE and COUNT disagree)")
        expected = points * sum(s * c for s, c in zip(sizes, counts))
        if body_size < expected:
            raise CanocapsInputError(f"{p}: truncated PCD: the header declares {points} points ({expected} bytes), "
                                     f"the file holds {body_size}")
    elif data != "binary_compressed":
        raise CanocapsInputError(f"{p}: PCD DATA {data!r} is not ascii, binary or binary_compressed")
    return points


def _check_off(p: Path) -> tuple[int, int] | None:
    """Compare an ASCII OFF body with its counts line; return (vertices, faces) declared."""
    raw = p.read_bytes()
    lines = [ln.split(b"#")[0].strip() for ln in raw.split(b"\n")]
    lines = [ln for ln in lines if ln]
    m = re.match(rb"^[A-Z]*OFF(.*)$", lines[0]) if lines else None
    if m is None:
        raise CanocapsInputError(f"{p}: not an OFF file (first line is not 'OFF')")
    rest = m.group(1).split()  # counts may follow on the same line ("OFF 8 6 0"; ModelNet40 writes "OFF8 6 0")
    if b"BINARY" in rest:
        return None
    try:
        counts, body = (rest[:3], lines[1:]) if rest else (lines[1].split()[:3], lines[2:])
        nv, nf = int(counts[0]), int(counts[1])
    except (IndexError, ValueError):
        raise CanocapsInputError(f"{p}: malformed OFF header (expected 'vertices faces edges' counts)") from None
    if nv < 0 or nf < 0:
        raise CanocapsInputError(f"{p}: malformed OFF header (negative counts)")
    if len(body) < nv + nf:
        raise CanocapsInputError(f"{p}: truncated OFF: the header declares {nv} vertices and {nf} faces, "
                                 f"the body has {len(body)} lines")
    return nv, nf


def _check_stl(p: Path) -> None:
    """A binary STL must be 84 + 50 * triangles bytes; an ASCII one must end with 'endsolid'."""
    size = p.stat().st_size
    with open(p, "rb") as f:
        head = f.read(84)
        if len(head) == 84 and size == 84 + 50 * int.from_bytes(head[80:84], "little"):
            return  # binary, complete
        if head.lstrip().startswith(b"solid"):
            f.seek(max(0, size - 1024))
            if b"endsolid" in f.read():
                return
            raise CanocapsInputError(f"{p}: truncated ASCII STL (no 'endsolid' at the end)")
    if len(head) < 84:
        raise CanocapsInputError(f"{p}: not an STL file ({size} bytes, shorter than a binary STL header)")
    n = int.from_bytes(head[80:84], "little")
    raise CanocapsInputError(f"{p}: {'truncated ' if size < 84 + 50 * n else ''}binary STL: the header declares "
                             f"{n} triangles ({84 + 50 * n} bytes), the file holds {size}")


def _check_header_and_body(p: Path, ext: str) -> dict[str, int]:
    """Declared counts of the file (``{"vertex": n, "face": m}``) after checking the body holds them."""
    if ext == ".ply":
        return _check_ply(p)
    if ext == ".off":
        counts = _check_off(p)
        return {} if counts is None else {"vertex": counts[0]}
    if ext == ".stl":
        _check_stl(p)
    return {}


# ----------------------------------------------------------------------------- readers


def _load_trimesh(p: Path, ext: str) -> Any:
    """trimesh object (Trimesh or PointCloud) for a mesh/ply file; scenes are flattened.

    The body is checked against the header first, and the vertices read against the count
    the header declares."""
    import trimesh

    declared = _check_header_and_body(p, ext)
    obj = _load_trimesh_unchecked(p, ext, trimesh)
    verts = getattr(obj, "vertices", None)
    if "vertex" in declared and verts is not None and len(verts) != declared["vertex"]:
        raise CanocapsInputError(f"{p}: the header declares {declared['vertex']} vertices, {len(verts)} were read")
    return obj


def _load_trimesh_unchecked(p: Path, ext: str, trimesh: Any) -> Any:
    try:
        obj = trimesh.load(str(p), file_type=ext[1:], process=False)
    except Exception as e:  # trimesh raises many kinds
        raise CanocapsInputError(f"{p}: cannot parse as {ext} ({_one_line(e)})") from e
    if isinstance(obj, trimesh.Scene):
        if len(obj.geometry) == 0:
            raise CanocapsInputError(f"{p}: no geometry found in {ext} file")
        try:
            obj = obj.to_geometry()
        except Exception as e:
            raise CanocapsInputError(f"{p}: cannot combine the scene's geometries ({_one_line(e)})") from e
    return obj


_PLY_NUMPY = {"char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1", "short": "i2", "int16": "i2",
              "ushort": "u2", "uint16": "u2", "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
              "float": "f4", "float32": "f4", "double": "f8", "float64": "f8"}


def _read_ply_cloud(p: Path) -> np.ndarray | None:
    """``(N, 3)`` x, y, z of a PLY *point cloud* read with numpy, or None for anything else.

    The fast path of :func:`read_points` (no trimesh import, ~1 s of start-up saved): used
    when the file's only non-empty element is ``vertex`` with scalar ``x y z`` properties
    (ASCII or binary). Meshes, list properties and unusual headers return None and go
    through trimesh. Call after :func:`_check_ply` (the body matches the header).
    """
    raw = p.read_bytes()
    start, fmt, _ = _ply_header(p, raw)
    elements: list[tuple[str, int, list[tuple[str, str]]]] = []
    for line in raw[:start].decode("ascii").splitlines()[1:]:
        tok = line.split()
        if tok and tok[0] == "element":
            elements.append((tok[1], int(tok[2]), []))
        elif tok and tok[0] == "property" and elements:
            if tok[1] == "list" or tok[1] not in _PLY_NUMPY or len(tok) != 3:
                return None
            elements[-1][2].append((tok[2], tok[1]))
    nonempty = [e for e in elements if e[1] > 0]
    if len(nonempty) != 1 or nonempty[0][0] != "vertex" or elements[0][0] != "vertex":
        return None
    _, count, props = nonempty[0]
    names = [n for n, _ in props]
    if len(set(names)) != len(names) or not {"x", "y", "z"} <= set(names):
        return None
    cols = [names.index(c) for c in ("x", "y", "z")]
    if fmt == "ascii":
        try:
            arr = np.loadtxt(_stdio.StringIO(raw[start:].decode("ascii")), dtype=np.float64, ndmin=2,
                             max_rows=count)
        except (ValueError, UnicodeDecodeError):
            return None  # let trimesh give its own message
        if arr.shape != (count, len(props)):
            return None
        return arr[:, cols]
    order = "<" if fmt == "binary_little_endian" else ">"
    dtype = np.dtype([(n, order + _PLY_NUMPY[t]) for n, t in props])
    arr = np.frombuffer(raw, dtype=dtype, count=count, offset=start)
    return np.stack([arr["x"], arr["y"], arr["z"]], axis=1).astype(np.float64)


def _read_trimesh_points(p: Path, ext: str, num_points: int | None, seed: int, as_mesh: bool,
                         first_n: bool) -> np.ndarray:
    if ext == ".ply":
        _check_ply(p)
        cloud = _read_ply_cloud(p)
        if cloud is not None:
            if len(cloud) == 0:
                raise CanocapsInputError(f"{p}: file contains no points")
            return subsample(cloud, num_points, seed, first_n)
    obj = _load_trimesh(p, ext)
    faces = getattr(obj, "faces", None)
    verts = getattr(obj, "vertices", None)
    if verts is None:
        raise CanocapsInputError(f"{p}: no vertices found in {ext} file")
    verts = np.asarray(verts)
    if as_mesh and faces is not None and len(faces) > 0:
        return sample_mesh(obj, DEFAULT_MESH_POINTS if num_points is None else num_points, seed=seed, name=str(p))
    if len(verts) == 0:
        raise CanocapsInputError(f"{p}: file contains no points")
    return subsample(verts, num_points, seed, first_n)


def _read_pcd(p: Path) -> np.ndarray:
    declared = _check_pcd(p)
    with _quiet_open3d() as o3d:
        try:
            pcd = o3d.io.read_point_cloud(str(p), format="pcd")
        except Exception as e:
            raise CanocapsInputError(f"{p}: cannot parse as .pcd ({_one_line(e)})") from e
    pts = np.asarray(pcd.points)
    if len(pts) == 0:  # Open3D returns an empty cloud instead of failing
        raise CanocapsInputError(f"{p}: no points could be read (unreadable or empty .pcd)")
    if len(pts) != declared:
        raise CanocapsInputError(f"{p}: the header declares {declared} points, {len(pts)} were read")
    return pts


_SPLIT = re.compile(r"[,\s;]+")


def _is_data_line(line: str) -> bool:
    toks = [t for t in _SPLIT.split(line.strip()) if t]
    if len(toks) < 3:
        return False
    try:
        [float(t) for t in toks[:3]]
    except ValueError:
        return False
    return True


def _read_text(p: Path) -> np.ndarray:
    try:
        text = p.read_text(encoding="utf-8", errors="strict")
    except UnicodeDecodeError as e:
        raise CanocapsInputError(f"{p}: not a text file ({_one_line(e)})") from e
    lines = text.splitlines()
    start = 0
    while start < len(lines) and start < _HEADER_SCAN_LINES and not _is_data_line(lines[start]):
        start += 1
    if start == len(lines):
        raise CanocapsInputError(f"{p}: no 'x y z' data lines found")
    if start == _HEADER_SCAN_LINES:
        raise CanocapsInputError(f"{p}: no 'x y z' data in the first {_HEADER_SCAN_LINES} lines")
    body = "\n".join(lines[start:]).replace(",", " ").replace(";", " ")
    try:
        arr = np.loadtxt(_stdio.StringIO(body), usecols=(0, 1, 2), comments="#", dtype=np.float64, ndmin=2)
    except ValueError as e:
        raise CanocapsInputError(f"{p}: cannot parse as whitespace/comma separated numbers ({_one_line(e)})") from e
    return arr


def _read_numpy(p: Path, ext: str) -> np.ndarray:
    try:
        data = np.load(str(p), allow_pickle=False)
    except Exception as e:
        raise CanocapsInputError(f"{p}: cannot parse as {ext} ({_one_line(e)})") from e
    if isinstance(data, np.lib.npyio.NpzFile):
        with data:
            keys = list(data.files)
            if not keys:
                raise CanocapsInputError(f"{p}: .npz archive holds no arrays")
            key = "points" if "points" in keys else "data" if "data" in keys else keys[0]
            try:
                arr = data[key]
            except Exception as e:
                raise CanocapsInputError(f"{p}: cannot read array {key!r} ({_one_line(e)})") from e
    else:
        arr = data
    if arr.ndim == 2 and arr.shape[1] > 3:
        arr = arr[:, :3]  # e.g. xyz + normals
    return arr


def read_points(
    path: str | os.PathLike,
    num_points: int | None = None,
    min_points: int = 1,
    seed: int = 0,
    *,
    as_mesh: bool = True,
    first_n: bool = False,
    dtype: Any = np.float32,
) -> np.ndarray:
    """Read a point cloud or sample a mesh: returns ``(N, 3)`` float32 (or ``dtype``: float64).

    Args:
        path: file; format from the extension (see module doc, ``READ_EXTENSIONS``).
        num_points: for meshes, the number of surface samples (default
            ``DEFAULT_MESH_POINTS`` = 2048). For point clouds with more points, a
            random subset of this size (seeded by ``seed``, without replacement,
            original order kept), or the first ``num_points`` if ``first_n``. Clouds
            with fewer points are returned whole (``min_points`` is the lower bound).
        min_points: fewer points raise :class:`CanocapsInputError`.
        seed: seed of mesh sampling and subsetting (same seed, same points).
        as_mesh: ``False`` reads a mesh file's vertices instead of sampling its surface.
        first_n: take the first ``num_points`` points instead of a random subset.

    Raises:
        CanocapsInputError: one line naming the file, for a missing file, a directory,
            an empty file, an unknown extension, unparsable content (including files
            Open3D silently reads as empty), NaN/inf, wrong shape, too few points.
    """
    if num_points is not None and int(num_points) < 1:
        raise CanocapsInputError(f"num_points must be >= 1, got {num_points}")
    p, ext = _check_file(path, READ_EXTENSIONS)
    if ext in (".ply", ".obj", ".off", ".stl"):
        pts = _read_trimesh_points(p, ext, num_points, seed, as_mesh, first_n)
    else:
        if ext == ".pcd":
            pts = _read_pcd(p)
        elif ext in _TEXT_EXTENSIONS:
            pts = _read_text(p)
        else:
            pts = _read_numpy(p, ext)
        pts = validate_points(pts, min_points=0, name=str(p), dtype=dtype)
        pts = subsample(pts, num_points, seed, first_n)
    return validate_points(pts, min_points=min_points, name=str(p), dtype=dtype)


def read_mesh(path: str | os.PathLike) -> Any:
    """Load a triangle mesh (``.obj .off .stl .ply``) as a ``trimesh.Trimesh`` (not processed/merged).

    Raises :class:`CanocapsInputError` if the file is missing/unreadable, has no faces,
    or its vertices are not finite.
    """
    p, ext = _check_file(path, MESH_EXTENSIONS)
    obj = _load_trimesh(p, ext)
    faces = getattr(obj, "faces", None)
    if faces is None or len(faces) == 0:
        raise CanocapsInputError(f"{p}: not a mesh (no faces)")
    if not np.isfinite(np.asarray(obj.vertices)).all():
        raise CanocapsInputError(f"{p}: mesh vertices contain NaN or inf")
    return obj


# ----------------------------------------------------------------------------- writer


def _validate_attr(values: Any, n: int, what: str, path: Path) -> np.ndarray:
    arr = validate_points(values, min_points=0, name=f"{path} {what}")
    if len(arr) != n:
        raise CanocapsInputError(f"{path}: {what} has {len(arr)} rows, points has {n}")
    return arr


def write_points(
    path: str | os.PathLike,
    points: Any,
    force: bool = False,
    normals: Any | None = None,
    colors: Any | None = None,
) -> Path:
    """Write a point cloud ``(N, 3)`` to ``path``; the format follows the extension.

    * ``.ply``: binary little-endian (Open3D), with normals/colors if given.
    * ``.pcd``: binary (Open3D), with normals/colors if given.
    * ``.xyz`` / ``.pts`` / ``.txt``: text, one point per line ``x y z [nx ny nz] [r g b]``.
    * ``.npy``: the ``(N, 3)`` float32 array (no normals/colors: use ``.npz``).
    * ``.npz``: keys ``points`` and, if given, ``normals``, ``colors``.

    ``colors`` are floats in ``[0, 1]`` (uint8 arrays are divided by 255). Points are
    stored as float32 (ply/pcd through Open3D store float64). The file is written to a
    temporary name and moved into place at the end (:func:`canocaps._files.atomic_path`);
    an existing file raises :class:`~canocaps.errors.OutputExistsError` unless
    ``force``. Returns the path written.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise CanocapsInputError(f"expected an output file path, got {type(path).__name__}")
    p = Path(path)
    ext = p.suffix.lower()
    if ext not in WRITE_EXTENSIONS:
        raise CanocapsInputError(f"{p}: cannot write extension {ext or '(none)'!r}; supported: {' '.join(WRITE_EXTENSIONS)}")
    pts = validate_points(points, min_points=1, name=f"{p} points")
    nrm = None if normals is None else _validate_attr(normals, len(pts), "normals", p)
    col = None
    if colors is not None:
        raw = np.asarray(colors.detach().cpu() if hasattr(colors, "detach") else colors)
        col = _validate_attr(raw, len(pts), "colors", p)
        if raw.dtype == np.uint8:
            col = col / 255.0
        if col.min() < 0.0 or col.max() > 1.0:
            raise CanocapsInputError(f"{p}: colors must be in [0, 1] (or uint8)")
    if ext == ".npy" and (nrm is not None or col is not None):
        raise CanocapsInputError(f"{p}: .npy stores points only; use .npz, .ply or .pcd for normals/colors")

    with atomic_path(p, force=force) as tmp:
        if ext in (".ply", ".pcd"):
            with _quiet_open3d() as o3d:
                pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(pts.astype(np.float64)))
                if nrm is not None:
                    pcd.normals = o3d.utility.Vector3dVector(nrm.astype(np.float64))
                if col is not None:
                    pcd.colors = o3d.utility.Vector3dVector(col.astype(np.float64))
                ok = o3d.io.write_point_cloud(str(tmp), pcd, write_ascii=False, compressed=False)
            if not ok:
                raise CanocapsInputError(f"{p}: Open3D could not write the file")
        elif ext in _TEXT_EXTENSIONS:
            cols = [pts] + [a for a in (nrm, col) if a is not None]
            np.savetxt(tmp, np.concatenate(cols, axis=1), fmt="%.9g")
        elif ext == ".npy":
            with open(tmp, "wb") as f:
                np.save(f, pts)
        else:  # .npz
            arrays = {"points": pts}
            if nrm is not None:
                arrays["normals"] = nrm
            if col is not None:
                arrays["colors"] = col.astype(np.float32)
            with open(tmp, "wb") as f:
                np.savez(f, **arrays)
    return p
