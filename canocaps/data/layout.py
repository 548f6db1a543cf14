"""Which loader a path belongs to: ``--data PATH`` without a ``NAME:`` prefix.

:func:`detect_layout` looks at names only (plus the keys of one ``.h5`` file), in this order:

=====================================================================  ================
what is at the path                                                    dataset name
=====================================================================  ================
a ``.h5`` file with ``points`` and ``split`` datasets                  ``realmesh``
any other file                                                         ``converted``
a folder with ``ply_data_train*.h5`` / ``ply_data_test*.h5``           ``modelnet40``
a folder with ``train/*.h5`` or ``valid/*.h5`` (also one level down    ``shapenet``
in ``ShapeNetAtlasNetH5/``)
a folder with ``*.h5`` whose names contain train / val / test          ``shapenet_h5``
a folder of ``<synset>/<model>/models/model_normalized.obj``           ``shapenetcore``
any other folder                                                       ``folder``
=====================================================================  ================
"""
from __future__ import annotations

import os
from pathlib import Path

from canocaps.errors import CanocapsInputError

__all__ = ["detect_layout"]

_SHAPENETCORE_MESH = ("models", "model_normalized.obj")


def _h5_keys(p: Path) -> set[str]:
    import h5py

    try:
        with h5py.File(p, "r") as f:
            return set(f.keys())
    except OSError as e:
        raise CanocapsInputError(f"{p}: not a readable h5 file ({str(e).splitlines()[0]})") from None


def _has_h5(folder: Path) -> bool:
    return folder.is_dir() and any(folder.glob("*.h5"))


def _is_shapenetcore(root: Path, probe: int = 4) -> bool:
    for syn in sorted(p for p in root.iterdir() if p.is_dir())[:probe]:
        for model in sorted(m for m in syn.iterdir() if m.is_dir())[:probe]:
            if model.joinpath(*_SHAPENETCORE_MESH).is_file():
                return True
    return False


def detect_layout(path: str | os.PathLike) -> str:
    """The dataset name (:data:`canocaps.data.DATASETS`) for ``path`` (table in the module doc)."""
    p = Path(path).expanduser()
    if not p.exists():
        raise CanocapsInputError(f"{p}: no such file or folder")
    if p.is_file():
        if p.suffix.lower() == ".h5" and p.stat().st_size > 0 and {"points", "split"} <= _h5_keys(p):
            return "realmesh"
        return "converted"
    if any(p.glob("ply_data_train*.h5")) or any(p.glob("ply_data_test*.h5")):
        return "modelnet40"
    for cand in (p / "ShapeNetAtlasNetH5", p):
        if _has_h5(cand / "train") or _has_h5(cand / "valid"):
            return "shapenet"
    if any(w in h.stem.lower() for h in p.glob("*.h5") for w in ("train", "val", "test")):
        return "shapenet_h5"
    if _is_shapenetcore(p):
        return "shapenetcore"
    return "folder"
