"""ShapeNet in the three layouts people have on disk.

1. :class:`ShapeNetCapsulesH5`, the h5 files of the official Canonical Capsules code
   (``data_utils/ShapeNetLoader.py``: AtlasNetV2's ShapeNet point clouds, 30k points per
   model with normals, converted to one h5 per category)::

       <root>/ShapeNetAtlasNetH5/            (or <root> itself)
           train_cat.txt, valid_cat.txt      optional: h5 file names, one a line, label order
           train/<category>.h5               groups pcd/point/<i> (M, 3), pcd/normal/<i> (M, 3)
           valid/<category>.h5

   with the 13 categories below. The official loader maps ``test`` to ``valid`` ("only
   valid set is available as the test") and so do we (``val`` too). The 80/20 split was
   made when the h5 files were written (first 80 % of each category's sorted model names
   -> train, the rest -> valid). Labels are the index of the category file in the list
   (``<split>_cat.txt`` order when present, else the official sorted order), as in the
   official ``d_index``.
2. :class:`ShapeNetH5`, the flat 1024/2048-point releases (``shapenetcorev2_hdf5_2048``:
   ``train0.h5 ... val0.h5 ... test0.h5``; ShapeNetPart ``ply_data_{train,val,test}*.h5``):
   datasets ``data (S, N, 3)``, ``label (S,)``; files whose name contains the split.
3. :class:`ShapeNetCoreMeshes`, ShapeNetCore v2 meshes
   ``<root>/<synset>/<model>/models/model_normalized.obj`` sampled to points on the fly
   (convert once with ``tools/convert_meshes.py`` for speed), labelled by synset, split
   80/20 per category over sorted model ids like the official preparation.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from canocaps.data.base import PointCloudDataset, check_split
from canocaps.data.flat_h5 import FlatH5Dataset
from canocaps.data.modelnet import read_class_names
from canocaps.errors import CanocapsInputError

__all__ = [
    "SHAPENET_SYNSETS", "CAPSULES_CATEGORIES", "resolve_category", "split_ids",
    "ShapeNetCapsulesH5", "ShapeNetH5", "ShapeNetCoreMeshes", "find_shapenetcore_models",
]

#: ShapeNetCore v2 synset id -> category name (the 55 categories).
SHAPENET_SYNSETS = {
    "02691156": "airplane", "02747177": "trash_bin", "02773838": "bag", "02801938": "basket", "02808440": "bathtub",
    "02818832": "bed", "02828884": "bench", "02843684": "birdhouse", "02871439": "bookshelf", "02876657": "bottle",
    "02880940": "bowl", "02924116": "bus", "02933112": "cabinet", "02942699": "camera", "02946921": "can",
    "02954340": "cap", "02958343": "car", "02992529": "cellphone", "03001627": "chair", "03046257": "clock",
    "03085013": "keyboard", "03207941": "dishwasher", "03211117": "display", "03261776": "earphone",
    "03325088": "faucet", "03337140": "file_cabinet", "03467517": "guitar", "03513137": "helmet", "03593526": "jar",
    "03624134": "knife", "03636649": "lamp", "03642806": "laptop", "03691459": "loudspeaker", "03710193": "mailbox",
    "03759954": "microphone", "03761084": "microwave", "03790512": "motorbike", "03797390": "mug", "03928116": "piano",
    "03938244": "pillow", "03948459": "pistol", "03991062": "pot", "04004475": "printer", "04074963": "remote",
    "04090263": "rifle", "04099429": "rocket", "04225987": "skateboard", "04256520": "sofa", "04330267": "stove",
    "04379243": "table", "04401088": "telephone", "04460130": "tower", "04468005": "train", "04530566": "watercraft",
    "04554684": "washer",
}

#: The 13 categories of the Canonical Capsules / AtlasNet ShapeNet set, in the official label
#: order (``cat_id`` 0..12 of the official README) -> synset.
CAPSULES_CATEGORIES = {
    "bench": "02828884", "cabinet": "02933112", "car": "02958343", "cellphone": "04401088", "chair": "03001627",
    "couch": "04256520", "firearm": "04090263", "lamp": "03636649", "monitor": "03211117", "plane": "02691156",
    "speaker": "03691459", "table": "04379243", "watercraft": "04530566",
}

# other names of the same categories (AtlasNet names, ShapeNet names, common words)
_ALIASES = {
    "airplane": "plane", "aeroplane": "plane", "sofa": "couch", "rifle": "firearm", "gun": "firearm",
    "vessel": "watercraft", "boat": "watercraft", "ship": "watercraft", "display": "monitor", "screen": "monitor",
    "loudspeaker": "speaker", "telephone": "cellphone", "phone": "cellphone",
}


def resolve_category(name: str, known: Sequence[str]) -> str:
    """Map a category name, alias or synset id onto one of ``known`` (case-insensitive)."""
    key = str(name).strip().lower()
    lower = {k.lower(): k for k in known}
    candidates = [key, _ALIASES.get(key, key), SHAPENET_SYNSETS.get(key, key)]
    candidates += [_ALIASES.get(c, c) for c in list(candidates)]
    candidates += [CAPSULES_CATEGORIES.get(c, c) for c in list(candidates)]  # a name -> its synset
    syn_to_caps = {v: k for k, v in CAPSULES_CATEGORIES.items()}
    candidates += [syn_to_caps.get(c, c) for c in list(candidates)]
    candidates += [SHAPENET_SYNSETS.get(c, c) for c in list(candidates)]
    for c in candidates:
        if c in lower:
            return lower[c]
    raise CanocapsInputError(f"unknown category {name!r}; available: {', '.join(known)}")


def split_ids(ids: Sequence[str], split: str, train_fraction: float = 0.8) -> list[str]:
    """The official 80/20 rule: sort, first ``int(len * 0.8)`` -> train, the rest -> val/test; ``all`` keeps all."""
    ids = sorted(ids)
    if split == "all":
        return ids
    cut = int(len(ids) * train_fraction)
    return ids[:cut] if check_split(split) == "train" else ids[cut:]


def _official_rank(stem: str) -> tuple[int, str]:
    """Sort key: the official label order for the 13 known categories (any spelling), then by name."""
    official = list(CAPSULES_CATEGORIES)
    try:
        return official.index(resolve_category(stem, official)), stem
    except CanocapsInputError:
        return len(official), stem


def _locate_capsules_root(root: Path) -> Path:
    for cand in (root / "ShapeNetAtlasNetH5", root):
        if (cand / "train").is_dir() or (cand / "valid").is_dir():
            return cand
    raise CanocapsInputError(f"{root}: no train/ or valid/ folder (expected the ShapeNetAtlasNetH5 layout)")


class ShapeNetCapsulesH5(PointCloudDataset):
    """The official Canonical Capsules ShapeNet h5 files (see the module docstring).

    Args:
        root: the ``ShapeNetAtlasNetH5`` folder or its parent.
        split: ``train``; ``val``/``valid``/``test`` all read ``valid/`` (as the official code).
        categories: names, aliases or synsets (e.g. ``["airplane"]``, ``["02691156"]``); None = all.
        **kw: ``num_points``, ``sampling``, ``resample_views``, ``seed``, ``normalize``.
    """

    def __init__(self, root: str | os.PathLike, split: str = "train", num_points: int = 1024,
                 categories: Sequence[str] | None = None, **kw: Any) -> None:
        super().__init__(num_points, **kw)
        import h5py

        base = _locate_capsules_root(Path(root))
        self.split = check_split(split)
        folder = base / ("train" if self.split == "train" else "valid")
        if not folder.is_dir():
            raise CanocapsInputError(f"{folder}: missing (split {split!r})")
        cat_file = base / f"{folder.name}_cat.txt"
        if cat_file.is_file():
            stems = [Path(line.strip()).stem for line in cat_file.read_text().splitlines() if line.strip()]
        else:
            stems = sorted((p.stem for p in folder.glob("*.h5")), key=_official_rank)
        if not stems:
            raise CanocapsInputError(f"{folder}: no category .h5 files")
        if categories is not None:
            if isinstance(categories, str):
                categories = [categories]
            stems = list(dict.fromkeys(resolve_category(c, stems) for c in categories))
        self.class_names = stems
        self.files: list[Path] = []
        self.keys: list[list[str]] = []
        for stem in stems:
            path = folder / f"{stem}.h5"
            if not path.is_file():
                raise CanocapsInputError(f"{path}: listed category file is missing")
            if path.stat().st_size == 0:
                raise CanocapsInputError(f"{path}: empty file")
            try:
                with h5py.File(path, "r") as f:
                    if "pcd" not in f or "point" not in f["pcd"]:
                        raise CanocapsInputError(f"{path}: missing group 'pcd/point'")
                    keys = sorted(f["pcd"]["point"].keys(), key=lambda k: (len(k), k))
            except OSError as e:
                raise CanocapsInputError(f"{path}: not a readable h5 file ({str(e).splitlines()[0]})") from None
            if keys != [str(i) for i in range(len(keys))]:
                raise CanocapsInputError(f"{path}: pcd/point must hold datasets named 0..{len(keys) - 1}")
            if not keys:
                raise CanocapsInputError(f"{path}: pcd/point is empty")
            self.files.append(path)
            self.keys.append(keys)
        self.cuts = np.cumsum([len(k) for k in self.keys])
        self._handles: dict[int, Any] = {}
        self._pid = -1

    def __len__(self) -> int:
        return int(self.cuts[-1])

    def _locate(self, index: int) -> tuple[int, str]:
        d = int(np.searchsorted(self.cuts, index, side="right"))
        local = index - (int(self.cuts[d - 1]) if d > 0 else 0)
        return d, self.keys[d][local]

    def _file(self, d: int) -> Any:
        import h5py

        if self._pid != os.getpid():  # h5py handles must not cross a fork (DataLoader workers)
            self._handles, self._pid = {}, os.getpid()
        if d not in self._handles:
            self._handles[d] = h5py.File(self.files[d], "r")
        return self._handles[d]

    def get_cloud(self, index: int) -> np.ndarray:
        d, key = self._locate(index)
        arr = np.asarray(self._file(d)["pcd"]["point"][key])
        if arr.ndim != 2 or arr.shape[1] != 3 or len(arr) == 0:
            raise CanocapsInputError(f"{self.files[d]}: pcd/point/{key} must have shape (M, 3), got {tuple(arr.shape)}")
        return arr

    def get_label(self, index: int) -> int:
        return int(np.searchsorted(self.cuts, index, side="right"))

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_handles"], state["_pid"] = {}, -1
        return state


class ShapeNetH5(FlatH5Dataset):
    """Flat ShapeNet h5 releases: every ``*.h5`` in ``root`` whose name contains the split name.

    Class names from ``shape_names.txt`` or ``all_object_categories.txt`` (first token a line) when present.
    """

    def __init__(self, root: str | os.PathLike, split: str = "train", num_points: int = 1024, **kw: Any) -> None:
        root = Path(root)
        if not root.is_dir():
            raise CanocapsInputError(f"{root}: not a folder (expected ShapeNet *{split}*.h5 files)")
        split = check_split(split)
        words = {"train": ("train",), "val": ("val",), "test": ("test",)}[split]
        files = sorted((p for p in root.glob("*.h5") if any(w in p.stem for w in words)), key=lambda p: (len(p.name), p.name))
        if not files:
            raise CanocapsInputError(f"{root}: no *{split}*.h5 files")
        names = None
        for cand in ("shape_names.txt", "all_object_categories.txt"):
            if (root / cand).is_file():
                names = read_class_names(root / cand)
                break
        super().__init__(files, num_points, class_names=names, **kw)
        self.split = split


def find_shapenetcore_models(root: str | os.PathLike, mesh_name: str = "models/model_normalized.obj") -> dict[str, list[Path]]:
    """``{synset: [mesh paths sorted by model id]}`` for ``<root>/<synset>/<model>/<mesh_name>``."""
    root = Path(root)
    if not root.is_dir():
        raise CanocapsInputError(f"{root}: not a folder (expected ShapeNetCore <synset>/<model>/{mesh_name})")
    out: dict[str, list[Path]] = {}
    for syn in sorted(p for p in root.iterdir() if p.is_dir()):
        meshes = sorted((m / mesh_name for m in syn.iterdir() if (m / mesh_name).is_file()), key=lambda p: p.parts[-3])
        if meshes:
            out[syn.name] = meshes
    if not out:
        raise CanocapsInputError(f"{root}: no <synset>/<model>/{mesh_name} files")
    return out


class ShapeNetCoreMeshes(PointCloudDataset):
    """ShapeNetCore v2 meshes sampled on the fly (``canocaps.io.read_points``, seeded per model).

    Each model is sampled to ``points_per_model`` surface points (default ``2 * num_points``
    so that ``resample_views`` gets two disjoint halves); the sample of a model is fixed
    (seed = its index), the selection of N out of it follows ``sampling``.
    """

    def __init__(self, root: str | os.PathLike, split: str = "train", num_points: int = 1024,
                 categories: Sequence[str] | None = None, points_per_model: int | None = None,
                 train_fraction: float = 0.8, **kw: Any) -> None:
        super().__init__(num_points, **kw)
        models = find_shapenetcore_models(root)
        synsets = list(models)
        if categories is not None:
            if isinstance(categories, str):
                categories = [categories]
            named = {SHAPENET_SYNSETS.get(s, s): s for s in synsets}
            synsets = list(dict.fromkeys(named[resolve_category(c, list(named))] if not str(c).isdigit()
                                         else resolve_category(c, synsets) for c in categories))
        self.split = "all" if split == "all" else check_split(split)
        self.synsets = synsets
        self.class_names = [SHAPENET_SYNSETS.get(s, s) for s in synsets]
        self.paths: list[Path] = []
        labels = []
        for label, syn in enumerate(synsets):
            by_id = {p.parts[-3]: p for p in models[syn]}
            for mid in split_ids(list(by_id), self.split, train_fraction):
                self.paths.append(by_id[mid])
                labels.append(label)
        if not self.paths:
            raise CanocapsInputError(f"{root}: no models in split {split!r}")
        self.labels = np.asarray(labels, dtype=np.int64)
        self.points_per_model = int(points_per_model or 2 * self.num_points)

    def __len__(self) -> int:
        return len(self.paths)

    def get_cloud(self, index: int) -> np.ndarray:
        from canocaps.io import read_points

        return read_points(self.paths[index], num_points=self.points_per_model, seed=index)

    def get_label(self, index: int) -> int:
        return int(self.labels[index])
