"""The bundled procedural shape set: 14 classes of parametric meshes, generated on first use and cached.

See :mod:`canocaps.data.procedural.generator` for the conventions (pose, normalisation,
seeding) and :class:`ProceduralShapes` for the dataset.
"""
from canocaps.data.procedural.generator import CLASS_NAMES, generate_split, make_mesh, sample_shape
from canocaps.data.procedural.dataset import DEFAULT_PER_CLASS, ProceduralShapes, cache_dir, cache_path, load_or_generate

__all__ = ["CLASS_NAMES", "DEFAULT_PER_CLASS", "ProceduralShapes", "cache_dir", "cache_path", "generate_split",
           "load_or_generate", "make_mesh", "sample_shape"]
