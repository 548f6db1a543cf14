"""Datasets of point clouds and the SE(3) pair sampler.

* :func:`build_dataset` ``(name, split, num_points, ...)``: one entry point for every source
  (:func:`open_dataset` takes the same as one command-line string, ``NAME``, ``NAME:ROOT`` or a path):

  ==================  ==========================================================  =========================
  name                what                                                        root
  ==================  ==========================================================  =========================
  ``procedural``      the bundled offline default: 14 procedural classes          none (generated, cached)
  ``shapenet``        the Canonical Capsules h5 files (``pcd/point/<i>``)         ShapeNetAtlasNetH5 folder
  ``shapenet_h5``     flat ShapeNet releases (``data``/``label``, 1024/2048 pts)  folder of ``*.h5``
  ``shapenetcore``    ShapeNetCore v2 meshes, sampled on the fly                  ``<synset>/<model>/...``
  ``converted``       an h5 written by ``tools/convert_meshes.py``                the ``.h5`` file
  ``modelnet40``      ModelNet40 ``ply_data_{train,test}*.h5``                    folder
  ``folder``          any folder of files ``canocaps.io`` reads                   folder
  ``realmesh``        pybullet_data meshes (``tools/build_realmesh_set.py``)      the ``.h5`` (default: cache,
                                                                                  bundled test subset)
  ==================  ==========================================================  =========================

* Items: ``{"points": (N, 3) float32, "label": () int64, "index": int}`` (+ ``"points_b"``
  with ``resample_views=True``), normalised into the unit sphere (see :mod:`.base`).
* :class:`~canocaps.data.pairs.SE3PairSampler` makes the two-view training batches.
* :func:`~canocaps.data.test_transforms.load_test_transforms` gives the fixed test poses.
"""
from __future__ import annotations

import os
from typing import Any

from canocaps.data.base import ArrayDataset, PointCloudDataset, normalize_unit_sphere
from canocaps.data.pairs import PairBatch, SE3PairSampler
import numpy as np

from canocaps.errors import CanocapsInputError

__all__ = ["build_dataset", "open_dataset", "pick", "DATASETS", "PointCloudDataset", "ArrayDataset", "normalize_unit_sphere",
           "PairBatch", "SE3PairSampler", "load_test_transforms"]

DATASETS = ("procedural", "shapenet", "shapenet_h5", "shapenetcore", "converted", "modelnet40", "folder", "realmesh")


def load_test_transforms(path: str | os.PathLike | None = None):  # noqa: ANN201 - re-export without importing h5py early
    """See :func:`canocaps.data.test_transforms.load_test_transforms`."""
    from canocaps.data.test_transforms import load_test_transforms as _load

    return _load(path)


def build_dataset(name: str = "procedural", split: str = "train", num_points: int = 1024,
                  root: str | os.PathLike | None = None, **kw: Any) -> PointCloudDataset:
    """Build a dataset by name (table in the module docstring).

    Args:
        name: one of :data:`DATASETS` (``modelnet`` is accepted for ``modelnet40``).
        split: ``train`` / ``val`` (``valid``) / ``test`` (``folder`` also takes None: the whole folder).
        num_points: points per item N.
        root: data location (all but ``procedural``; optional for ``realmesh``).
        **kw: passed on: ``sampling`` ("random"/"first"), ``resample_views``, ``seed``, ``normalize``,
            ``categories`` (ShapeNet), ``per_class``/``classes`` (procedural) ...
    """
    key = str(name).lower().replace("-", "_")
    if key == "modelnet":
        key = "modelnet40"
    if key not in DATASETS:
        raise CanocapsInputError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    if key == "procedural":
        from canocaps.data.procedural import ProceduralShapes

        return ProceduralShapes(split, num_points, **kw)
    if key == "realmesh":
        from canocaps.data.realmesh import RealMeshes

        return RealMeshes(root, split, num_points, **kw)
    if root is None:
        raise CanocapsInputError(f"dataset {name!r} needs root= (where the data is); see docs/data.md")
    if key == "shapenet":
        from canocaps.data.shapenet import ShapeNetCapsulesH5

        return ShapeNetCapsulesH5(root, split, num_points, **kw)
    if key == "shapenet_h5":
        from canocaps.data.shapenet import ShapeNetH5

        return ShapeNetH5(root, split, num_points, **kw)
    if key == "shapenetcore":
        from canocaps.data.shapenet import ShapeNetCoreMeshes

        return ShapeNetCoreMeshes(root, split, num_points, **kw)
    if key == "converted":
        from canocaps.data.convert import ConvertedH5

        return ConvertedH5(root, split, num_points, **kw)
    if key == "modelnet40":
        from canocaps.data.modelnet import ModelNet40H5

        return ModelNet40H5(root, split, num_points, **kw)
    from canocaps.data.folder import PointFolder

    return PointFolder(root, split, num_points, **kw)


def pick(total: int, limit: int | None) -> np.ndarray:
    """Indices of ``limit`` items spread evenly over ``range(total)`` (all when ``limit`` is None).

    Datasets are often ordered by class, so the first N items would be one class only.
    """
    if limit is None or limit >= total:
        return np.arange(total)
    if limit < 1:
        raise CanocapsInputError(f"--limit must be >= 1, got {limit}")
    return np.unique(np.linspace(0, total - 1, int(limit)).round().astype(np.int64))


def open_dataset(data: str, split: str, num_points: int, **kwargs: Any) -> Any:
    """:func:`canocaps.data.build_dataset` from one string.

    ``data`` is a dataset name (``"procedural"``), ``"NAME:ROOT"`` (e.g.
    ``"modelnet40:/data/modelnet"``), or a path whose layout names the loader
    (:func:`canocaps.data.layout.detect_layout`: a ModelNet40 folder of ``ply_data_*.h5``,
    the ShapeNet layouts, a realmesh or converted ``.h5``, else a folder of point-cloud/mesh files).
    """
    from pathlib import Path

    from canocaps.data.layout import detect_layout

    name, root = data, None
    if data not in DATASETS:
        head, sep, tail = data.partition(":")
        if sep and head.lower() in DATASETS + ("modelnet",) and len(head) > 1:
            name, root = head, tail
        else:
            p = Path(data).expanduser()
            if not p.exists():
                raise CanocapsInputError(f"--data {data}: not a dataset name ({', '.join(DATASETS)}), "
                                         "NAME:ROOT, or an existing path")
            name, root = detect_layout(p), str(p)
    kwargs.setdefault("seed", 0)  # fixed point selection: evaluations must be reproducible
    return build_dataset(name, split, num_points, root=root, **kwargs)
