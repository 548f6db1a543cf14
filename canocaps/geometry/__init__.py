"""Geometry on torch tensors: rotations, rigid transforms, weighted Procrustes, metrics.

Everything is batched (leading dimensions), works on any device and dtype, and is
differentiable where that makes sense. Conventions (see the submodules for details):

* rotations act on column vectors, ``x' = R x``; row-stored clouds ``(B, N, 3)`` are moved
  with ``points @ R^T + t`` (:func:`apply_transform`);
* quaternions are ``(w, x, y, z)``, unit, sign-canonical ``w >= 0``;
* axis-angle is the rotation vector in radians; 6D is the first two columns of ``R``;
* angles are radians everywhere except in :func:`rotation_error_deg` (degrees).

Submodules: :mod:`.rotations`, :mod:`.transforms`, :mod:`.procrustes`, :mod:`.metrics`.
This package imports only torch (no Open3D/trimesh).
"""
from __future__ import annotations

from canocaps.geometry.metrics import (
    chamfer_distance,
    pca_frame,
    registration_rmse,
    rotation_error_deg,
    translation_error,
)
from canocaps.geometry.procrustes import safe_svd, weighted_procrustes, weighted_procrustes_reference
from canocaps.geometry.rotations import (
    axis_angle_to_matrix,
    axis_angle_to_quaternion,
    matrix_to_axis_angle,
    matrix_to_quaternion,
    matrix_to_rotation_6d,
    quaternion_to_axis_angle,
    quaternion_to_matrix,
    random_quaternion,
    random_rotation,
    rotation_6d_to_matrix,
    rotation_angle,
    skew,
    standardize_quaternion,
)
from canocaps.geometry.transforms import (
    apply_rotation,
    apply_transform,
    compose_transforms,
    invert_transform,
    make_transform,
    random_transform,
    split_transform,
)

__all__ = [
    "apply_rotation",
    "apply_transform",
    "axis_angle_to_matrix",
    "axis_angle_to_quaternion",
    "chamfer_distance",
    "compose_transforms",
    "invert_transform",
    "make_transform",
    "matrix_to_axis_angle",
    "matrix_to_quaternion",
    "matrix_to_rotation_6d",
    "pca_frame",
    "quaternion_to_axis_angle",
    "quaternion_to_matrix",
    "random_quaternion",
    "random_rotation",
    "random_transform",
    "registration_rmse",
    "rotation_6d_to_matrix",
    "rotation_angle",
    "rotation_error_deg",
    "safe_svd",
    "skew",
    "split_transform",
    "standardize_quaternion",
    "translation_error",
    "weighted_procrustes",
    "weighted_procrustes_reference",
]
