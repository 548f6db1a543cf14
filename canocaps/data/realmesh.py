"""Real meshes: surface samples of the meshes shipped in pybullet's ``pybullet_data`` (a dev benchmark).

The file is written by ``tools/build_realmesh_set.py`` (format and provenance:
:mod:`canocaps.data.realmesh_build`, data/REALMESH.md): ``points (S, P, 3)`` float16 unit-sphere
surface samples (P = 8192), ``split``, ``label`` (coarse source: random_object / robot_part /
mechanical_part / everyday_object), ``name``, ``group``, ``license``.

Where it is read from (``root=None``): the cache file :func:`default_path`
(``$CANOCAPS_CACHE/realmesh_v1.h5``, default ``~/.cache/canocaps/``); when that is absent the
``test`` split falls back to the bundled subset :func:`bundled_path` (``data/realmesh_test.h5``,
at most 96 test meshes x 4096 points), so the benchmark runs without pybullet.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from canocaps.data.base import ArrayDataset, cache_root, check_split
from canocaps.errors import CanocapsInputError

__all__ = ["RealMeshes", "default_path", "bundled_path", "resolve_path", "FILE_NAME", "BUNDLED_NAME"]

FILE_NAME = "realmesh_v1.h5"
BUNDLED_NAME = "realmesh_test.h5"
_REQUIRED = ("points", "split", "label", "name")


def default_path() -> Path:
    """The cache file: ``$CANOCAPS_CACHE/realmesh_v1.h5`` or ``~/.cache/canocaps/realmesh_v1.h5``."""
    return cache_root() / FILE_NAME


def bundled_path() -> Path:
    """The bundled test subset: ``$CANOCAPS_DATA_DIR/realmesh_test.h5`` or the package data (``canocaps/resources/data``)."""
    from canocaps.data.test_transforms import data_dir

    return data_dir() / BUNDLED_NAME


def resolve_path(root: str | os.PathLike | None, split: str) -> Path:
    """``root`` if given, else the cache file, else (split ``test`` only) the bundled subset."""
    if root is not None:
        return Path(root)
    full = default_path()
    if full.is_file() or check_split(split) != "test" or not bundled_path().is_file():
        if not full.is_file():
            raise CanocapsInputError(f"realmesh: {full} not found; build it with `python tools/build_realmesh_set.py` "
                                     "(needs `pip install pybullet` or --source DIR); only the test split is bundled")
        return full
    print(f"canocaps: realmesh: {full} not found, using the bundled test subset {bundled_path()}", file=sys.stderr)
    return bundled_path()


class RealMeshes(ArrayDataset):
    """One split of the real-mesh set (items as every :class:`~canocaps.data.base.PointCloudDataset`).

    Args:
        root: the ``.h5`` file (None: :func:`resolve_path`).
        split: ``train`` / ``val`` (``valid``) / ``test``.
        num_points: points per item N (<= P stored points for disjoint ``points_b``: N <= P / 2).
        **kw: ``sampling``, ``resample_views``, ``seed``, ``normalize``.

    Attributes: ``names``, ``groups``, ``licenses`` (per item), ``path``, ``attrs`` (the file's).
    """

    def __init__(self, root: str | os.PathLike | None = None, split: str = "test", num_points: int = 1024,
                 **kw: Any) -> None:
        import h5py

        split = check_split(split)
        p = resolve_path(root, split)
        if not p.is_file() or p.stat().st_size == 0:
            raise CanocapsInputError(f"{p}: missing or empty file")
        try:
            with h5py.File(p, "r") as f:
                missing = [k for k in _REQUIRED if k not in f]
                if missing:
                    raise CanocapsInputError(f"{p}: missing dataset(s) {missing} (not written by build_realmesh_set?)")
                splits = np.asarray([_str(s) for s in f["split"][()]])
                rows = np.flatnonzero(splits == split)
                if not len(rows):
                    raise CanocapsInputError(f"{p}: no meshes in split {split!r}")
                points = np.asarray(f["points"])[rows]
                labels = np.asarray(f["label"])[rows]
                strings = {k: [_str(x) for x in f[k][()][rows]] if k in f else [""] * len(rows)
                           for k in ("name", "group", "license")}
                attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
                class_names = json.loads(attrs["class_names"])
        except OSError as e:
            raise CanocapsInputError(f"{p}: not a readable h5 file ({str(e).splitlines()[0]})") from None
        except (KeyError, ValueError) as e:
            raise CanocapsInputError(f"{p}: malformed realmesh file ({e})") from None
        super().__init__(points, labels, class_names, num_points, **kw)
        self.split = split
        self.path = p
        self.names, self.groups, self.licenses = strings["name"], strings["group"], strings["license"]
        self.attrs = attrs


def _str(x: Any) -> str:
    return x.decode() if isinstance(x, bytes) else str(x)
