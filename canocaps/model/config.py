"""Hyper-parameters of the Canonical Capsules network and its losses.

``CapsulesConfig()`` holds the paper / official-code defaults (K = 10 capsules,
C = 128 features, N = 1024 points, 3 residual blocks of 2 ACN layers, decoder
bottleneck 1280, grid dimension 10, loss weights 1 / 1 / 1e-3 / 5 / 1 / 1).
``CapsulesConfig.preset("cpu")`` is a smaller network that trains meaningfully on one
CPU core. The config round-trips through plain dicts and YAML.
"""
from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

import yaml

from canocaps._files import read_text
from canocaps._yaml import load_yaml_mapping
from canocaps.errors import CanocapsInputError

__all__ = ["CapsulesConfig", "LossWeights"]


@dataclass
class LossWeights:
    """Weights of the training losses: the paper's six (official defaults) and two for the
    moment frame (``frame_stability``, ``frame_conditioning``, ``frame_weights``; 0 = off, the paper)."""

    reconstruction: float = 1.0
    localization: float = 1.0
    equilibrium: float = 1e-3
    equivariance: float = 5.0
    invariance: float = 1.0
    canonical: float = 1.0
    frame_stability: float = 0.0
    frame_conditioning: float = 0.0
    frame_weights: float = 0.0

    def __post_init__(self) -> None:
        _check_types(self, "model config: loss_weights")


@dataclass
class CapsulesConfig:
    """Architecture of :class:`canocaps.model.CanonicalCapsules`.

    Attributes:
        num_points: N, points per input cloud during training; the decoder emits
            ``num_capsules * (num_points // num_capsules)`` points.
        num_capsules: K, number of capsules (parts / keypoints).
        feat_dim: C, width of the point features and of the descriptors.
        num_blocks: residual blocks in the encoder.
        layers_per_block: point-wise layers (linear -> ACN -> BN -> ReLU) per block.
        acn_groups: attention branches of each ACN layer (0 = ``num_capsules``).
        knn_k: neighbours of the optional local edge-feature layer (0 = off, the paper).
        canon_hidden: hidden widths of the canonicaliser MLP (K*C -> ... -> K*3).
        procrustes_weights: ``"uniform"`` (every capsule counts the same) or ``"mass"``
            (capsule weight = its attention mass sum_n A_nk).
        grid_dim: dimension of the learned per-point grid coordinates of the decoder.
        decoder_bottleneck: first hidden width of each per-capsule decoder MLP
            (then /2, /4, 3).
        center_input: subtract the point mean before encoding (makes keypoints exactly
            translation equivariant; the points themselves are pooled uncentred).
        eps: numerical floor of ACN standard deviations.
        encoder: ``"acn"`` (the paper's attentive context normalisation on coordinates;
            equivariance is learned) or ``"invariant"`` (rotation-invariant geometry per
            point, :class:`canocaps.model.invariant_encoder.InvariantEncoder`: attention
            and descriptors exactly invariant, keypoints exactly equivariant).
        frame: ``"procrustes"`` (the paper: descriptors -> canonical keypoints ->
            weighted Procrustes) or ``"moments"`` (learned weighted second/third moments
            of the points, :mod:`canocaps.model.moment_frame`; starts as PCA).
        local_k: neighbours of the invariant encoder's local geometry and edge layer.
        moment_weight_power: exponent on the moment frame's learned point weights (1 = as
            trained, 0 = uniform weights, i.e. the PCA frame); a shrinkage chosen on
            validation data after training.
        moment_sign_power: the same for the third-moment (sign) weights (None: as
            ``moment_weight_power``).
        moment_area_k: neighbours of the moment frame's area weights (each point weighted
            by the surface area it stands for, :func:`canocaps.model.moment_frame.point_areas`;
            0 = off, as the weights trained before session 7).
        routing_iterations: rounds of distance routing in the capsule pooling
            (:class:`canocaps.model.capsules.CapsulePooling`; 0 = none, as the paper and the
            weights trained before session 13).
        routing_init: the routing's per-capsule distance scale ``gamma`` at initialisation
            (>= 0; 0: a routed model starts as the unrouted one).
        loss_weights: see :class:`LossWeights`.
    """

    num_points: int = 1024
    num_capsules: int = 10
    feat_dim: int = 128
    num_blocks: int = 3
    layers_per_block: int = 2
    acn_groups: int = 0
    knn_k: int = 0
    canon_hidden: tuple[int, ...] = (512, 256)
    procrustes_weights: str = "uniform"
    grid_dim: int = 10
    decoder_bottleneck: int = 1280
    center_input: bool = True
    eps: float = 1e-3
    encoder: str = "acn"
    frame: str = "procrustes"
    local_k: int = 16
    moment_weight_power: float = 1.0
    moment_sign_power: float | None = None
    moment_area_k: int = 0
    routing_iterations: int = 0
    routing_init: float = 0.0
    loss_weights: LossWeights = field(default_factory=LossWeights)

    def __post_init__(self) -> None:
        if isinstance(self.loss_weights, Mapping):
            self.loss_weights = _from_mapping(LossWeights, self.loss_weights, "loss_weights")
        _check_types(self, "model config")
        self.canon_hidden = tuple(int(h) for h in self.canon_hidden)
        self.validate()

    # ------------------------------------------------------------------ checks
    def validate(self) -> None:
        """Raise :class:`CanocapsInputError` on an impossible setting."""
        positive = ("num_points", "num_capsules", "feat_dim", "num_blocks", "grid_dim", "decoder_bottleneck")
        for name in positive:
            if int(getattr(self, name)) < 1:
                raise CanocapsInputError(f"model config: {name} must be >= 1, got {getattr(self, name)}")
        for name in ("layers_per_block", "acn_groups", "knn_k", "moment_area_k", "routing_iterations"):
            if int(getattr(self, name)) < 0:
                raise CanocapsInputError(f"model config: {name} must be >= 0, got {getattr(self, name)}")
        if self.num_points < self.num_capsules:
            raise CanocapsInputError(
                f"model config: num_points ({self.num_points}) must be >= num_capsules ({self.num_capsules})")
        if self.decoder_bottleneck < 4:
            raise CanocapsInputError("model config: decoder_bottleneck must be >= 4")
        if self.procrustes_weights not in ("uniform", "mass"):
            raise CanocapsInputError(
                f"model config: procrustes_weights must be 'uniform' or 'mass', got {self.procrustes_weights!r}")
        if self.encoder not in ("acn", "invariant"):
            raise CanocapsInputError(f"model config: encoder must be 'acn' or 'invariant', got {self.encoder!r}")
        if self.frame not in ("procrustes", "moments"):
            raise CanocapsInputError(f"model config: frame must be 'procrustes' or 'moments', got {self.frame!r}")
        if int(self.local_k) < 2:
            raise CanocapsInputError(f"model config: local_k must be >= 2, got {self.local_k}")
        if not float(self.routing_init) >= 0:
            raise CanocapsInputError(f"model config: routing_init must be >= 0, got {self.routing_init}")
        if self.eps <= 0:
            raise CanocapsInputError("model config: eps must be > 0")

    @property
    def num_groups(self) -> int:
        """ACN attention branches actually used."""
        return self.acn_groups or self.num_capsules

    @property
    def points_per_capsule(self) -> int:
        """Points decoded per capsule, ``num_points // num_capsules``."""
        return self.num_points // self.num_capsules

    # --------------------------------------------------------------- presets
    @classmethod
    def preset(cls, name: str, **overrides: Any) -> "CapsulesConfig":
        """``"paper"`` (official defaults) or ``"cpu"`` (small, trains on one core)."""
        presets: dict[str, dict[str, Any]] = {
            "paper": {},
            "cpu": dict(num_points=512, num_capsules=10, feat_dim=64, num_blocks=2, layers_per_block=2,
                        canon_hidden=(256, 128), grid_dim=4, decoder_bottleneck=128),
        }
        if name not in presets:
            raise CanocapsInputError(f"unknown model preset {name!r} (choose from {sorted(presets)})")
        return cls.from_dict({**presets[name], **overrides})

    # ----------------------------------------------------------- round trip
    def to_dict(self) -> dict[str, Any]:
        """Plain-python dict (tuples as lists), suitable for YAML/JSON/checkpoints."""
        d = asdict(self)
        d["canon_hidden"] = list(self.canon_hidden)
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> "CapsulesConfig":
        """Build from a mapping; unknown keys raise :class:`CanocapsInputError`."""
        return _from_mapping(cls, data or {}, "model config")

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @classmethod
    def from_yaml(cls, text_or_path: str | Path) -> "CapsulesConfig":
        """Parse YAML text, or read it from a path (a ``model:`` section is accepted)."""
        text = str(text_or_path)
        p = Path(text)
        if "\n" not in text and p.suffix in (".yaml", ".yml"):
            if not p.is_file():
                raise CanocapsInputError(f"{p}: config file not found")
            text = read_text(p, "config file")
        return cls.from_dict(load_yaml_mapping(text, "model config", section="model"))

    def replace(self, **changes: Any) -> "CapsulesConfig":
        return dataclasses.replace(self, **changes)


_KINDS: dict[str, tuple[type, ...]] = {"int": (int, float), "float": (int, float), "bool": (bool,), "str": (str,)}


def _check_types(obj: Any, what: str) -> None:
    """Raise :class:`CanocapsInputError` (one line) when a field annotated ``int``, ``float``, ``bool``
    or ``str`` (optionally ``| None``) holds another kind of value, e.g. ``--set model.num_capsules=x``."""
    for f in fields(obj):
        annotation = str(f.type)
        optional = annotation.endswith(" | None")
        kind = annotation.removesuffix(" | None")
        value = getattr(obj, f.name)
        if kind not in _KINDS or (optional and value is None):
            continue
        bad = not isinstance(value, _KINDS[kind]) or (isinstance(value, bool) and kind != "bool")
        if kind == "int" and not bad and isinstance(value, float):
            bad = not value.is_integer()
        if bad:
            expected = {"int": "an integer", "float": "a number", "bool": "true or false", "str": "a string"}[kind]
            raise CanocapsInputError(f"{what}: {f.name} must be {expected}, got {value!r}")


def _from_mapping(cls: type, data: Mapping[str, Any], what: str) -> Any:
    if not isinstance(data, Mapping):
        raise CanocapsInputError(f"{what}: expected a mapping, got {type(data).__name__}")
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise CanocapsInputError(f"{what}: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(names))})")
    return cls(**dict(data))
