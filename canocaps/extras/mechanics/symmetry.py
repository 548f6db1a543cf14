"""Automatic detection of a model's continuous symmetries from its torch.fx graph.

Three families (Kunin et al. 2020, "Neural Mechanics", Sec. 3):

- **translation** ``theta_A -> theta_A + alpha 1``: the parameters of an affine layer
  (Linear / 1-group Conv) whose output goes straight into a softmax / log_softmax /
  cross-entropy over its channel axis, or into a LayerNorm over its features. Adding the
  same vector ``v`` to every row of ``W`` (and the same scalar to every bias) shifts all
  logits equally. Groups: one per input column ``j`` (``W[:, j]``, for Conv one per
  ``(in_channel, kernel position)``) plus one for the bias. Quantity ``<theta_A, 1>``.
- **scale** ``theta_A -> alpha theta_A``: an affine layer whose output goes straight into a
  normalisation with batch/instance statistics (training mode). BatchNorm / InstanceNorm:
  one group per output channel ``(W[o], b[o])``; GroupNorm: one per channel group;
  LayerNorm over the features: the whole layer is one group. Quantity ``||theta_A||^2``.
  (With the normaliser's ``eps > 0`` the invariance is exact only up to ``eps / var``.)
- **rescale** ``theta_1 -> alpha theta_1, theta_2 -> theta_2 / alpha``: a per-channel affine
  map (Linear, Conv, or the affine part of a BatchNorm / LayerNorm / GroupNorm /
  InstanceNorm) followed by positively homogeneous per-channel ops (ReLU, LeakyReLU,
  identity, dropout, max/avg pooling, flatten) and then a Linear / 1-group Conv that is
  the only consumer. One group per hidden channel ``i``. Quantity
  ``||W_out[:, i]||^2 - ||W_in[i]||^2 - b_in[i]^2``.

Every edge on a path must have a single user (a residual ``x + f(x)`` breaks the
symmetry), and a module called more than once or a parameter read with ``get_attr`` is
left out of every group. Models whose loss applies the softmax outside ``forward`` (the
usual classifier returning logits) pass ``output_softmax=True``.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Iterable, Literal, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, fx, nn

from canocaps.errors import CanocapsInputError

__all__ = ["Member", "SymmetryGroup", "SymmetryReport", "detect_symmetries", "detect_in_submodules", "trace_model"]

Kind = Literal["translation", "scale", "rescale"]
Layout = Literal["rows", "cols", "columns", "all"]
KINDS: tuple[str, ...] = ("translation", "scale", "rescale")


@dataclass(frozen=True)
class Member:
    """One parameter tensor's share of a symmetry group.

    ``view(p)`` turns the parameter into a ``(slots, entries)`` matrix whose row ``s`` holds
    the entries that belong to group slot ``offset + s``:

    - ``"rows"``: slot = index along axis 0 (output channel), ``block`` consecutive
      channels per slot (GroupNorm groups);
    - ``"cols"``: slot = index along axis 1 (input channel), ``block`` consecutive input
      features per slot (a flattened ``C x H x W`` map gives ``block = H * W``);
    - ``"columns"``: slot = column of ``p.reshape(p.shape[0], -1)`` (translation);
    - ``"all"``: the whole tensor is one slot.
    """

    param: str
    layout: Layout
    sign: int = 1
    offset: int = 0
    block: int = 1

    def view(self, p: Tensor) -> Tensor:
        """``(slots, entries)`` view of ``p`` (see the class docstring)."""
        if self.layout == "all":
            return p.reshape(1, -1)
        if self.layout == "columns":
            return p.reshape(p.shape[0], -1).transpose(0, 1)
        if self.layout == "rows":
            return p.reshape(p.shape[0] // self.block, -1)
        q = p.movedim(1, 0)
        return q.reshape(q.shape[0] // self.block, -1)

    def num_slots(self, p: Tensor) -> int:
        return int(self.view(p).shape[0])


@dataclass
class SymmetryGroup:
    """A family of symmetry groups of one kind sharing parameters, one per slot.

    ``slots``: number of independent groups (neurons / channels / columns);
    ``members``: the parameter shares; ``where``: human-readable location in the graph.
    """

    kind: Kind
    name: str
    slots: int
    members: list[Member]
    where: str

    @property
    def params(self) -> list[str]:
        return sorted({m.param for m in self.members})

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "slots": self.slots, "where": self.where,
                "members": [asdict(m) for m in self.members]}


@dataclass
class SymmetryReport:
    """All groups found in a model, plus what was left out and why."""

    model: str
    groups: list[SymmetryGroup] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def by_kind(self, kind: str) -> list[SymmetryGroup]:
        return [g for g in self.groups if g.kind == kind]

    def summary(self) -> dict[str, int]:
        """``{kind: number of group families}`` for the three kinds."""
        return {k: len(self.by_kind(k)) for k in KINDS}

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "summary": self.summary(),
                "groups": [g.to_dict() for g in self.groups], "notes": list(self.notes)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def format(self) -> str:
        """Human-readable table, one line per group family."""
        lines = [f"symmetries of {self.model}: " + ", ".join(f"{k} {n}" for k, n in self.summary().items())]
        for g in self.groups:
            lines.append(f"  {g.kind:<11} {g.name:<40} {g.slots:>5} groups  {g.where}")
        for n in self.notes:
            lines.append(f"  note: {n}")
        return "\n".join(lines)


# ----------------------------------------------------------------------------- tracing

_NORMS = (nn.modules.batchnorm._BatchNorm, nn.LayerNorm, nn.GroupNorm, nn.modules.instancenorm._InstanceNorm)
_AFFINE = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
_HOMOG_MODULES = (nn.ReLU, nn.LeakyReLU, nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d,
                  nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d,
                  nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d,
                  nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d)
_LEAF = _NORMS + _AFFINE + _HOMOG_MODULES + (nn.Flatten, nn.Softmax, nn.LogSoftmax, nn.CrossEntropyLoss)
_HOMOG_FUNCS = {torch.relu, F.relu, F.leaky_relu, F.dropout, torch.dropout, F.max_pool1d, F.max_pool2d,
                F.max_pool3d, F.avg_pool1d, F.avg_pool2d, F.avg_pool3d, F.adaptive_avg_pool1d,
                F.adaptive_avg_pool2d, F.adaptive_avg_pool3d, F.adaptive_max_pool1d, F.adaptive_max_pool2d,
                F.adaptive_max_pool3d, torch.nn.functional.relu_}
_HOMOG_METHODS = {"relu", "relu_", "contiguous", "clone"}
_SOFTMAX_FUNCS = {torch.softmax, F.softmax, torch.log_softmax, F.log_softmax, F.cross_entropy}
_SOFTMAX_METHODS = {"softmax", "log_softmax"}


class _Tracer(fx.Tracer):
    """Keeps layers we reason about (and their subclasses) as leaves."""

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return isinstance(m, _LEAF) or super().is_leaf_module(m, qualname)


def trace_model(model: nn.Module, example_inputs: Sequence[Any]) -> fx.GraphModule:
    """Symbolically trace ``model`` and annotate every node with its output shape.

    Raises :class:`CanocapsInputError` (one line) when torch.fx cannot trace the model
    (data-dependent control flow, unsupported Python). ``example_inputs`` are only run
    through the model in eval mode without gradients (no running-stat update).
    """
    name = type(model).__name__
    try:
        graph = _Tracer().trace(model)
    except Exception as exc:  # torch.fx raises many types (TraceError, TypeError, ...)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CanocapsInputError(
            f"model {name} cannot be traced by torch.fx ({type(exc).__name__}: {first}); "
            "make forward traceable (no data-dependent control flow) or pass a traceable sub-module") from None
    gm = fx.GraphModule(model, graph, name)
    was_training = {m: m.training for m in model.modules()}
    try:
        model.eval()
        with torch.no_grad():
            from torch.fx.passes.shape_prop import ShapeProp
            ShapeProp(gm).propagate(*example_inputs)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CanocapsInputError(f"example input does not run through {name}: {first}") from None
    finally:
        for m, t in was_training.items():
            m.train(t)
    return gm


# ----------------------------------------------------------------------------- helpers

def _shape(node: fx.Node) -> tuple[int, ...] | None:
    meta = node.meta.get("tensor_meta")
    return tuple(meta.shape) if meta is not None and hasattr(meta, "shape") else None


def _norm_dim(dim: int, ndim: int) -> int:
    return dim + ndim if dim < 0 else dim


class _Graph:
    def __init__(self, gm: fx.GraphModule):
        self.gm = gm
        self.modules = dict(gm.named_modules())
        self.nodes = list(gm.graph.nodes)
        self.calls: dict[str, int] = {}
        self.attr_params: set[str] = set()
        for n in self.nodes:
            if n.op == "call_module":
                self.calls[n.target] = self.calls.get(n.target, 0) + 1
            elif n.op == "get_attr":
                self.attr_params.add(str(n.target))

    def module(self, node: fx.Node) -> nn.Module | None:
        return self.modules.get(node.target) if node.op == "call_module" else None

    def only_user(self, node: fx.Node) -> fx.Node | None:
        users = list(node.users)
        return users[0] if len(users) == 1 else None

    def affine_channel_axis(self, node: fx.Node) -> int | None:
        """Channel axis of an affine-layer output (Linear: last; Conv: 1)."""
        m, shp = self.module(node), _shape(node)
        if shp is None:
            return None
        if isinstance(m, nn.Linear):
            return len(shp) - 1
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            return 1
        return None

    def norm_channel_axis(self, node: fx.Node) -> int | None:
        """Channel axis a BatchNorm/InstanceNorm/GroupNorm normalises per channel."""
        m = self.module(node)
        shp = _shape(node.args[0]) if node.args and isinstance(node.args[0], fx.Node) else None
        if shp is None or m is None:
            return None
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            base_forward = type(m).forward in (nn.BatchNorm1d.forward, nn.BatchNorm2d.forward,
                                               nn.BatchNorm3d.forward, nn.modules.batchnorm._BatchNorm.forward)
            if base_forward or len(shp) == 2:
                return 1
            # a subclass with its own forward (e.g. batch norm over the last axis of (B, N, C))
            return len(shp) - 1 if shp[-1] == m.num_features else None
        if isinstance(m, (nn.GroupNorm, nn.modules.instancenorm._InstanceNorm)):
            return 1
        return None


def _is_homogeneous(g: _Graph, node: fx.Node) -> bool:
    if node.op == "call_module":
        m = g.module(node)
        return isinstance(m, _HOMOG_MODULES)
    if node.op == "call_function":
        return node.target in _HOMOG_FUNCS
    if node.op == "call_method":
        return node.target in _HOMOG_METHODS
    return False


def _flatten_block(g: _Graph, node: fx.Node, axis: int) -> tuple[int, int] | None:
    """If ``node`` flattens ``(B, C, *S)`` into ``(B, C * prod(S))`` with channels on ``axis == 1``,
    return ``(new_axis, block)``; else None."""
    src = node.args[0] if node.args and isinstance(node.args[0], fx.Node) else None
    ins, outs = (_shape(src) if src is not None else None), _shape(node)
    if ins is None or outs is None or axis != 1 or len(outs) != 2 or outs[0] != ins[0]:
        return None
    is_flat = ((node.op == "call_module" and isinstance(g.module(node), nn.Flatten))
               or (node.op == "call_function" and node.target is torch.flatten)
               or (node.op == "call_method" and node.target in ("flatten", "view", "reshape")))
    if not is_flat:
        return None
    block = 1
    for s in ins[2:]:
        block *= s
    return (1, block) if outs[1] == ins[1] * block else None


def _softmax_dim(g: _Graph, node: fx.Node) -> int | None:
    """The normalised softmax axis if ``node`` is a softmax-like op, else None."""
    shp = _shape(node.args[0]) if node.args and isinstance(node.args[0], fx.Node) else None
    if shp is None:
        return None
    nd = len(shp)
    if node.op == "call_module":
        m = g.module(node)
        if isinstance(m, (nn.Softmax, nn.LogSoftmax)):
            return _norm_dim(m.dim if m.dim is not None else 1, nd)
        if isinstance(m, nn.CrossEntropyLoss):
            return 1 if nd > 1 else 0
        return None
    if node.op == "call_function" and node.target in _SOFTMAX_FUNCS:
        if node.target is F.cross_entropy:
            return 1 if nd > 1 else 0
        dim = node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else None)
        return _norm_dim(int(dim), nd) if dim is not None else None
    if node.op == "call_method" and node.target in _SOFTMAX_METHODS:
        dim = node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else None)
        return _norm_dim(int(dim), nd) if dim is not None else None
    return None


def _pname(target: str, attr: str) -> str:
    return f"{target}.{attr}" if target else attr


def _has_param(m: nn.Module, attr: str) -> bool:
    return isinstance(getattr(m, attr, None), nn.Parameter)


# ----------------------------------------------------------------------------- detection

def _translation(g: _Graph, node: fx.Node, output_softmax: bool) -> SymmetryGroup | None:
    m = g.module(node)
    if not isinstance(m, _AFFINE) or getattr(m, "groups", 1) != 1:
        return None
    axis = g.affine_channel_axis(node)
    user = g.only_user(node)
    if axis is None or user is None:
        return None
    shp = _shape(node)
    reason = None
    if user.op == "output" and output_softmax and axis == len(shp) - 1 and user.args[0] is node:
        reason = "softmax at the model output (output_softmax=True)"
    elif _softmax_dim(g, user) == axis and user.args[0] is node:
        reason = f"{user.op} {getattr(user.target, '__name__', user.target)}"
    elif isinstance(g.module(user), nn.LayerNorm) and axis == len(shp) - 1 \
            and tuple(g.module(user).normalized_shape) == (shp[-1],):
        reason = f"LayerNorm {user.target}"
    if reason is None:
        return None
    members = [Member(_pname(node.target, "weight"), "columns", 1, 0)]
    ncols = members[0].num_slots(m.weight)
    if _has_param(m, "bias"):
        members.append(Member(_pname(node.target, "bias"), "all", 1, ncols))
    slots = ncols + (1 if _has_param(m, "bias") else 0)
    return SymmetryGroup("translation", node.target, slots, members, f"{node.target} -> {reason}")


def _scale(g: _Graph, node: fx.Node) -> SymmetryGroup | None:
    m = g.module(node)
    if not isinstance(m, _AFFINE):
        return None
    axis = g.affine_channel_axis(node)
    user = g.only_user(node)
    if axis is None or user is None or user.op != "call_module":
        return None
    norm = g.module(user)
    shp = _shape(node)
    out_ch = m.weight.shape[0]
    has_b = _has_param(m, "bias")
    if isinstance(norm, (nn.modules.batchnorm._BatchNorm, nn.modules.instancenorm._InstanceNorm, nn.GroupNorm)):
        if g.norm_channel_axis(user) != axis:
            return None
        if isinstance(norm, nn.modules.batchnorm._BatchNorm) and not norm.training \
                and norm.track_running_stats:
            return None
        block = out_ch // norm.num_groups if isinstance(norm, nn.GroupNorm) else 1
        members = [Member(_pname(node.target, "weight"), "rows", 1, 0, block)]
        if has_b:
            members.append(Member(_pname(node.target, "bias"), "rows", 1, 0, block))
        return SymmetryGroup("scale", node.target, out_ch // block, members,
                             f"{node.target} -> {type(norm).__name__} {user.target}")
    if isinstance(norm, nn.LayerNorm) and axis == len(shp) - 1 \
            and tuple(norm.normalized_shape) == (shp[-1],):
        members = [Member(_pname(node.target, "weight"), "all", 1, 0)]
        if has_b:
            members.append(Member(_pname(node.target, "bias"), "all", 1, 0))
        return SymmetryGroup("scale", node.target, 1, members, f"{node.target} -> LayerNorm {user.target}")
    return None


def _incoming(g: _Graph, node: fx.Node) -> tuple[list[Member], int, int] | None:
    """Per-channel affine map at ``node``: (members with sign -1, channel axis, channels)."""
    m = g.module(node)
    shp = _shape(node)
    if m is None or shp is None:
        return None
    if isinstance(m, _AFFINE):
        axis = g.affine_channel_axis(node)
        members = [Member(_pname(node.target, "weight"), "rows", -1)]
        if _has_param(m, "bias"):
            members.append(Member(_pname(node.target, "bias"), "rows", -1))
        return members, axis, m.weight.shape[0]
    if isinstance(m, (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.modules.instancenorm._InstanceNorm)):
        if not _has_param(m, "weight"):
            return None
        axis = g.norm_channel_axis(node)
        if axis is None:
            return None
        members = [Member(_pname(node.target, "weight"), "rows", -1)]
        if _has_param(m, "bias"):
            members.append(Member(_pname(node.target, "bias"), "rows", -1))
        return members, axis, m.weight.shape[0]
    if isinstance(m, nn.LayerNorm) and _has_param(m, "weight") and len(m.normalized_shape) == 1:
        members = [Member(_pname(node.target, "weight"), "rows", -1)]
        if _has_param(m, "bias"):
            members.append(Member(_pname(node.target, "bias"), "rows", -1))
        return members, len(shp) - 1, m.weight.shape[0]
    return None


def _rescale(g: _Graph, node: fx.Node) -> SymmetryGroup | None:
    inc = _incoming(g, node)
    if inc is None:
        return None
    members, axis, channels = inc
    block = 1
    path = [str(node.target)]
    cur = node
    for _ in range(64):
        nxt = g.only_user(cur)
        if nxt is None or nxt.args[:1] != (cur,):
            return None
        out_m = g.module(nxt)
        if isinstance(out_m, _AFFINE):
            if getattr(out_m, "groups", 1) != 1:
                return None
            in_shape = _shape(cur)
            want_axis = len(in_shape) - 1 if isinstance(out_m, nn.Linear) else 1
            if axis != want_axis or out_m.weight.shape[1] != channels * block:
                return None
            members = members + [Member(_pname(nxt.target, "weight"), "cols", 1, 0, block)]
            path.append(str(nxt.target))
            return SymmetryGroup("rescale", f"{node.target}~{nxt.target}", channels, members, " -> ".join(path))
        if _is_homogeneous(g, nxt):
            path.append(str(getattr(nxt.target, "__name__", nxt.target)))
            cur = nxt
            continue
        fl = _flatten_block(g, nxt, axis)
        if fl is not None and block == 1:
            axis, block = fl
            path.append("flatten")
            cur = nxt
            continue
        return None
    return None


def detect_symmetries(model: nn.Module, example_inputs: Sequence[Any] | Tensor, *,
                      output_softmax: bool = False, kinds: Iterable[str] = KINDS) -> SymmetryReport:
    """Find the translation / scale / rescale symmetry groups of ``model``.

    ``model``: any torch.fx-traceable module; ``example_inputs``: one input tensor or a
    tuple of positional inputs for ``forward`` (used for shapes only, run in eval mode
    without gradients). ``output_softmax=True`` declares that the loss applies a softmax
    (cross-entropy) over the last axis of the model's output, as for classifiers that
    return logits. Scale groups assume normalisation layers in training mode (batch
    statistics), which is how the model is trained. Parameter names are those of
    ``model.named_parameters()``.
    """
    if isinstance(example_inputs, Tensor):
        example_inputs = (example_inputs,)
    kinds = tuple(kinds)
    bad = [k for k in kinds if k not in KINDS]
    if bad:
        raise CanocapsInputError(f"unknown symmetry kind {bad[0]!r} (choose from {', '.join(KINDS)})")
    gm = trace_model(model, example_inputs)
    g = _Graph(gm)
    report = SymmetryReport(type(model).__name__)
    found: list[SymmetryGroup] = []
    for node in g.nodes:
        if node.op != "call_module":
            continue
        if "translation" in kinds and (grp := _translation(g, node, output_softmax)) is not None:
            found.append(grp)
        if "scale" in kinds and (grp := _scale(g, node)) is not None:
            found.append(grp)
        if "rescale" in kinds and (grp := _rescale(g, node)) is not None:
            found.append(grp)
    shared = {t for t, c in g.calls.items() if c > 1}
    named = dict(model.named_parameters())
    for grp in found:
        mods = {p.rsplit(".", 1)[0] for p in grp.params}
        if mods & shared:
            report.notes.append(f"{grp.kind} {grp.name} dropped: module called more than once")
        elif set(grp.params) & g.attr_params:
            report.notes.append(f"{grp.kind} {grp.name} dropped: a parameter is also used functionally")
        elif any(p not in named or not named[p].requires_grad for p in grp.params):
            report.notes.append(f"{grp.kind} {grp.name} dropped: a parameter is frozen or missing")
        else:
            report.groups.append(grp)
    if not report.groups:
        report.notes.append("no symmetry found (for a classifier returning logits, pass output_softmax=True)")
    return report


def detect_in_submodules(model: nn.Module, inputs: dict[str, Sequence[Any] | Tensor], **kwargs: Any) -> SymmetryReport:
    """Detect in each named sub-module of ``model`` (for models whose whole ``forward`` is not
    traceable) and merge the groups, with parameter names relative to ``model``.

    ``inputs``: ``{submodule name: example inputs}``. A group found inside a sub-module is a
    symmetry of the whole model as long as the sub-module's parameters are used only by
    that sub-module's ``forward`` (true unless the model reads them directly or calls the
    sub-module's children from elsewhere).
    """
    merged = SymmetryReport(type(model).__name__)
    for name, example in inputs.items():
        try:
            sub = model.get_submodule(name)
        except AttributeError:
            raise CanocapsInputError(f"{type(model).__name__} has no sub-module {name!r}") from None
        rep = detect_symmetries(sub, example, **kwargs)
        pre = f"{name}." if name else ""
        for g in rep.groups:
            gname = "~".join(pre + part for part in g.name.split("~"))
            merged.groups.append(SymmetryGroup(g.kind, gname, g.slots,
                                               [replace(m, param=pre + m.param) for m in g.members],
                                               f"in {name}: {g.where}" if name else g.where))
        merged.notes.extend(f"{name}: {n}" for n in rep.notes if not n.startswith("no symmetry found"))
    return merged
