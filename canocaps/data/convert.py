"""Turn a folder of meshes into one h5 of surface samples, resumably; read such a file back.

Sources: the ShapeNetCore v2 layout (``<synset>/<model>/models/model_normalized.obj``,
classes named by synset) or any folder accepted by :class:`canocaps.data.folder.PointFolder`
(class = sub-folder). Output (flat layout, readable by :class:`ConvertedH5` and by
:class:`canocaps.data.flat_h5.FlatH5Dataset`)::

    data      (S, P, 3) float32   surface samples (raw mesh coordinates, not normalised)
    label     (S,) int64          index into attrs["class_names"]; -1 for a mesh that failed
    model_id  (S,) str            model folder (ShapeNetCore) or path relative to the source
    attrs: class_names (json), source, num_points, seed, failed (json list of model ids)

Resuming (:func:`fill_rows`, reused by other converters): work goes to ``DST.partial`` in
chunks; after each chunk the number of finished models is recorded (``attrs["done"]``) and
the file flushed. Re-running the same command
continues after the last finished chunk (a changed file list or settings starts over).
At the end the partial file is renamed onto ``DST`` atomically.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from canocaps.data.base import ArrayDataset
from canocaps._files import check_outputs
from canocaps.errors import CanocapsInputError

__all__ = ["collect_meshes", "convert_meshes", "fill_rows", "ConvertedH5"]


def collect_meshes(src: str | os.PathLike) -> tuple[list[Path], list[int], list[str], list[str]]:
    """(files, labels, class names, model ids) of a ShapeNetCore-like or class-folder source."""
    from canocaps.data.folder import list_folder
    from canocaps.data.shapenet import SHAPENET_SYNSETS, find_shapenetcore_models

    src = Path(src)
    if not src.is_dir():
        raise CanocapsInputError(f"{src}: not a folder")
    subdirs = [p for p in src.iterdir() if p.is_dir()]
    if subdirs and all(p.name.isdigit() and len(p.name) == 8 for p in subdirs):
        models = find_shapenetcore_models(src)
        files, labels, ids = [], [], []
        for k, (syn, paths) in enumerate(models.items()):
            files += paths
            labels += [k] * len(paths)
            ids += [p.parts[-3] for p in paths]
        return files, labels, [SHAPENET_SYNSETS.get(s, s) for s in models], ids
    files, labels, names = list_folder(src)
    return files, labels, names, [str(p.relative_to(src).with_suffix("")) for p in files]


def _signature(files: Sequence[Path], src: Path, num_points: int, seed: int) -> str:
    h = hashlib.sha1(f"{num_points}:{seed}".encode())
    for f in files:
        h.update(str(f.relative_to(src)).encode() + b"\0")
    return h.hexdigest()


def fill_rows(partial: str | os.PathLike, signature: str, total: int, create: Callable[[Any], None],
              compute: Callable[[int], dict[str, Any]], *, chunk: int = 64, limit: int | None = None,
              progress: bool = True, desc: str = "convert") -> int:
    """Compute rows ``0..total-1`` of an h5 file chunk by chunk, resumably; return the rows done so far.

    The machinery behind :func:`convert_meshes` (and ``canocaps.data.realmesh_build``).

    * A fresh file (none at ``partial``, or one whose ``attrs["signature"]`` differs or that
      cannot be read: it is replaced, with a note on stderr) is made by ``create(f)``, which
      creates the row datasets (length ``total`` along axis 0) and attributes; then
      ``attrs["signature"] = signature`` and ``attrs["done"] = 0``.
    * Rows ``attrs["done"]`` onwards are computed by ``compute(i) -> {dataset name: row value}``
      and written one chunk of ``chunk`` rows at a time; ``attrs["done"]`` is advanced only
      after the chunk's data and the file flushed, so a crash redoes at most one chunk.
    * ``limit`` stops after that many rows in this call (the file stays resumable).
    """
    import h5py
    from tqdm.auto import tqdm

    partial = Path(partial)
    if int(chunk) < 1:
        raise CanocapsInputError(f"chunk must be >= 1, got {chunk}")
    if partial.exists():
        try:
            with h5py.File(partial, "r") as f:
                same = f.attrs.get("signature") == signature
        except OSError:
            same = False
        if not same:
            print(f"canocaps: {partial} is from another source/settings, starting over", file=sys.stderr)
            partial.unlink()
    if not partial.exists():
        partial.parent.mkdir(parents=True, exist_ok=True)
        with h5py.File(partial, "w") as f:
            create(f)
            f.attrs.update(signature=signature, done=0)
    with h5py.File(partial, "r+") as f:
        done = int(f.attrs["done"])
        stop = total if limit is None else min(total, done + int(limit))
        bar = tqdm(total=total, initial=done, desc=desc, unit="mesh", disable=not progress)
        try:
            while done < stop:
                end = min(done + int(chunk), stop)
                rows: dict[str, list[Any]] = {}
                for i in range(done, end):
                    for key, value in compute(i).items():
                        rows.setdefault(key, []).append(value)
                    bar.update(1)
                for key, values in rows.items():
                    ds = f[key]
                    f[key][done:end] = (np.asarray(values, dtype=object) if ds.dtype.kind == "O"
                                        else np.asarray(values, dtype=ds.dtype))
                done = end
                f.attrs["done"] = done  # recorded only after the chunk's data: a crash redoes at most one chunk
                f.flush()
        finally:
            bar.close()
    return done


def convert_meshes(src: str | os.PathLike, dst: str | os.PathLike, num_points: int = 2048, *, seed: int = 0,
                   chunk: int = 64, force: bool = False, skip_errors: bool = True, progress: bool = True,
                   limit: int | None = None) -> Path:
    """Sample every mesh of ``src`` to ``num_points`` surface points into ``dst`` (see the module docstring).

    Args:
        skip_errors: a mesh that cannot be read gets label -1 (and is listed in ``attrs["failed"]``)
            instead of stopping the conversion.
        limit: stop after this many models in this call (the partial file is kept; for tests and
            for splitting a long job). Returns the partial path then.
    Returns:
        ``dst`` when complete (else the ``.partial`` path when ``limit`` stopped it).
    """
    import h5py

    from canocaps.io import read_points

    src, dst = Path(src), Path(dst)
    check_outputs(force, dst)
    if int(num_points) < 1 or int(chunk) < 1:
        raise CanocapsInputError(f"num_points and chunk must be >= 1, got {num_points}, {chunk}")
    files, labels, names, ids = collect_meshes(src)
    partial = dst.with_name(dst.name + ".partial")

    def create(f: Any) -> None:
        S = len(files)
        f.create_dataset("data", (S, num_points, 3), dtype="f4", chunks=(1, num_points, 3))
        f.create_dataset("label", data=np.asarray(labels, dtype=np.int64))
        f.create_dataset("model_id", data=np.asarray(ids, dtype=object), dtype=h5py.string_dtype())
        f.attrs.update(class_names=json.dumps(names), source=str(src), num_points=int(num_points), seed=int(seed),
                       failed="[]")

    def compute(i: int) -> dict[str, Any]:
        try:
            return {"data": read_points(files[i], num_points=num_points, seed=int(seed) + i), "label": labels[i]}
        except CanocapsInputError as e:
            if not skip_errors:
                raise
            print(f"canocaps: skipping {files[i]}: {e}", file=sys.stderr)
            return {"data": np.zeros((num_points, 3), np.float32), "label": -1}

    done = fill_rows(partial, _signature(files, src, int(num_points), int(seed)), len(files), create, compute,
                     chunk=chunk, limit=limit, progress=progress, desc=f"convert {src.name}")
    with h5py.File(partial, "r+") as f:
        lab = np.asarray(f["label"][:done])
        f.attrs["failed"] = json.dumps([ids[i] for i in np.flatnonzero(lab == -1)])
    if done < len(files):
        return partial
    check_outputs(force, dst)
    os.replace(partial, dst)
    return dst


class ConvertedH5(ArrayDataset):
    """A file written by :func:`convert_meshes`; ``split`` = ``all`` or the official 80/20 split per class.

    The split sorts each class' model ids and sends the first 80 % to ``train`` and the rest
    to ``val``/``test`` (the same models for both, as in the official ShapeNet preparation).
    Failed models (label -1) are left out. ``categories`` selects classes by name/synset.
    """

    def __init__(self, path: str | os.PathLike, split: str = "all", num_points: int = 1024,
                 categories: Sequence[str] | None = None, train_fraction: float = 0.8, **kw: Any) -> None:
        import h5py

        from canocaps.data.shapenet import resolve_category, split_ids

        p = Path(path)
        if not p.is_file() or p.stat().st_size == 0:
            raise CanocapsInputError(f"{p}: missing or empty file")
        try:
            with h5py.File(p, "r") as f:
                for key in ("data", "label", "model_id"):
                    if key not in f:
                        raise CanocapsInputError(f"{p}: missing dataset {key!r} (not written by convert_meshes?)")
                if int(f.attrs.get("done", len(f["label"]))) < len(f["label"]):
                    raise CanocapsInputError(f"{p}: conversion not finished")
                names = json.loads(f.attrs["class_names"])
                data = np.asarray(f["data"])
                labels = np.asarray(f["label"]).astype(np.int64)
                ids = [x.decode() if isinstance(x, bytes) else str(x) for x in f["model_id"][()]]
        except OSError as e:
            raise CanocapsInputError(f"{p}: not a readable h5 file ({str(e).splitlines()[0]})") from None
        classes = list(range(len(names)))
        if categories is not None:
            classes = list(dict.fromkeys(names.index(resolve_category(c, names)) for c in
                                         ([categories] if isinstance(categories, str) else categories)))
        rows = []
        for c in classes:
            members = {ids[i]: i for i in np.flatnonzero(labels == c)}
            rows += [members[m] for m in split_ids(list(members), split, train_fraction)]
        if not rows:
            raise CanocapsInputError(f"{p}: no models in split {split!r}")
        rows = np.asarray(rows)
        remap = np.full(len(names), -1)
        remap[classes] = np.arange(len(classes))
        super().__init__(data[rows], remap[labels[rows]], [names[c] for c in classes], num_points, **kw)
        self.model_ids = [ids[i] for i in rows]
        self.split = split
