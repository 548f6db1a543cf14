"""Block-split networks trained with synthetic gradients, on the shared trainer.

A network is a list of *blocks* ``f_0 ... f_{K-1}``; the interfaces are the block outputs
``h_i = f_i(h_{i-1})`` for ``i < K-1``, and ``f_{K-1}`` produces the output on which the
per-sample loss ``l_n`` is taken (task loss ``L = mean_n l_n``).

:class:`DNIModule` is a trainer module (see ``canocaps.train``): its ``training_step``
returns a *surrogate* loss whose gradient is exactly the update of the chosen method:

- ``backprop``: ``L`` itself (full backprop between blocks, the reference);
- ``fa``: ``L`` on a network whose linear/conv layers use fixed random feedback
  (:mod:`canocaps.extras.dni.feedback`);
- ``dni`` / ``cdni``: every block ``i < K-1`` runs on the *detached* output of the
  previous one and is updated with the synthetic gradient
  ``g_i = SG_i(h_i.detach(), c)`` (``c`` = one-hot label or regression target for cDNI);
  the last block gets the true gradient;
- ``dfa``: as ``dni`` but ``g_i = e B_i`` with ``e`` the output error (fixed random ``B_i``).

Surrogate (``B`` = batch size, ``sg`` = stop-gradient)::

    loss = L + sum_i sum(h_i * sg(g_i)) / B + w * sum_i mean_n ||SG_i(sg(h_i), c)_n - t_i,n||^2

so that dloss/dtheta_i = J_i^T g_i / B for block i, the last block gets dL/dtheta, and the SG
parameters get the gradient of their regression loss. SGs predict *per-sample* gradients
(of ``sum_n l_n``), hence the ``1 / B``. The regression targets ``t_i`` are

- ``target="true"``: the true per-sample gradient ``d(sum_n l_n)/dh_i``, obtained by
  vector-Jacobian products through one block at a time (``torch.autograd.grad`` on the
  detached block input), chained from the output error;
- ``target="bootstrap"`` (Jaderberg et al.): the next SG's prediction pulled back through
  the next block only, ``t_i = J_{i+1}^T sg(g_{i+1})`` (the true error for the last block).

``kickback`` (Balduzzi et al. 2015, in Czarnecki et al.'s unified view): a fixed-form SG
fed by the *scalar* global error, ``g_i = (1^T e_n) J_{i+1}^T 1`` per sample: the summed
output error times the sum of the next block's outgoing weights (through its active
units). For softmax cross-entropy ``1^T e = 0``, so it is only meaningful with a scalar
(or same-sign) error, e.g. regression with one output.

**Update-decoupled (pipelined) training**, ``delay = d >= 1`` (dni / cdni, bootstrapped
targets): the blocks run as a pipeline, as in Jaderberg et al.'s timelines. At trainer step
t block 0 reads batch t and updates at once from its SG; block i >= 1 reads the activation
that block i - 1 produced ``d`` steps earlier (a FIFO queue, computed with block i - 1's
parameters of that time: stale), updates from its own SG (the last block: the true loss),
and sends back the bootstrapped target ``J_{i}^T g_i`` for SG_{i-1}, which then regresses
on the stale activation it was computed from. No block waits for the blocks above it;
during the first ``i * d`` steps block i has nothing to read and stays idle. The queues are
not checkpointed: a resumed run refills its pipeline.
"""
from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from canocaps.errors import CanocapsInputError
from canocaps.extras.dni.feedback import DirectFeedbackSG, to_feedback_alignment
from canocaps.extras.dni.synthetic import make_sg
from canocaps.train.optim import build_optimizer

if TYPE_CHECKING:  # pragma: no cover
    from canocaps.train import TrainConfig

__all__ = ["MODES", "DNIModule", "split_sequential", "mlp_layers", "cnn_layers", "per_sample_loss"]

MODES = ("backprop", "dni", "cdni", "dfa", "fa", "kickback")
_DECOUPLED = ("dni", "cdni", "dfa", "kickback")


def per_sample_loss(out: torch.Tensor, y: torch.Tensor, loss: str) -> torch.Tensor:
    """``(B,)`` per-sample losses. ``"ce"``: softmax cross-entropy, out ``(B, K)`` logits, y ``(B,)``
    int64. ``"mse"``: ``0.5 * ||out - y||^2`` summed over features, out and y ``(B, K)``."""
    if loss == "ce":
        return F.cross_entropy(out, y, reduction="none")
    if loss == "mse":
        return 0.5 * (out - y).pow(2).flatten(1).sum(1)
    raise CanocapsInputError(f"unknown loss {loss!r} (expected 'ce' or 'mse')")


def split_sequential(layers: Sequence[nn.Module], cuts: Sequence[int]) -> list[nn.Sequential]:
    """Split a layer list into blocks before each index in ``cuts`` (strictly increasing, in (0, len)).

    ``split_sequential([l0, l1, l2, l3], [2])`` -> ``[Sequential(l0, l1), Sequential(l2, l3)]``.
    """
    layers = list(layers)
    cuts = [int(c) for c in cuts]
    if any(b <= a for a, b in zip(cuts, cuts[1:])) or any(not 0 < c < len(layers) for c in cuts):
        raise CanocapsInputError(f"block cuts must be strictly increasing in (0, {len(layers)}), got {cuts}")
    bounds = [0, *cuts, len(layers)]
    return [nn.Sequential(*layers[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]


def mlp_layers(sizes: Sequence[int], activation: str = "relu", bias: bool = True) -> list[nn.Sequential]:
    """One block per layer: ``Linear(sizes[i], sizes[i+1])`` followed by the activation
    (``"relu"``, ``"tanh"`` or ``"linear"`` = none), no activation after the last layer."""
    acts = {"relu": nn.ReLU, "tanh": nn.Tanh, "linear": None}
    if activation not in acts:
        raise CanocapsInputError(f"unknown activation {activation!r} (expected relu, tanh or linear)")
    if len(sizes) < 2 or any(s < 1 for s in sizes):
        raise CanocapsInputError(f"MLP sizes must be >= 2 positive integers, got {list(sizes)}")
    blocks = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        mods: list[nn.Module] = [nn.Linear(a, b, bias=bias)]
        if i < len(sizes) - 2 and acts[activation] is not None:
            mods.append(acts[activation]())
        blocks.append(nn.Sequential(*mods))
    return blocks


def cnn_layers(in_channels: int = 1, image_size: int = 8, num_classes: int = 10,
               channels: tuple[int, int] = (16, 32)) -> list[nn.Sequential]:
    """Three blocks: ``conv3x3 -> ReLU`` (``(B, c0, S, S)``), ``conv3x3 stride 2 -> ReLU``
    (``(B, c1, S/2, S/2)``), ``flatten -> Linear`` (logits). Input ``(B, in_channels, S, S)``."""
    c0, c1 = channels
    s = (image_size + 1) // 2
    return [nn.Sequential(nn.Conv2d(in_channels, c0, 3, padding=1), nn.ReLU()),
            nn.Sequential(nn.Conv2d(c0, c1, 3, stride=2, padding=1), nn.ReLU()),
            nn.Sequential(nn.Flatten(), nn.Linear(c1 * s * s, num_classes))]


class DNIModule(nn.Module):
    """A block-split network plus its gradient estimators; a ``canocaps.train`` module.

    Args:
        blocks: the network, ``K >= 1`` blocks (``K >= 2`` for the decoupled modes).
            For ``mode="fa"`` their Linear/Conv2d layers are replaced in place by FA layers.
        example_input: one input batch ``(b, ...)`` used to infer the interface shapes.
        mode: one of :data:`MODES`.
        loss: ``"ce"`` (y int64 labels ``(B,)``) or ``"mse"`` (y ``(B, K)`` targets).
        sg: ``"linear"`` or ``"mlp"`` (SG kind for dni/cdni).
        target: ``"true"`` or ``"bootstrap"`` (SG regression target, see module docstring).
        num_classes: number of classes (``"ce"``), used for the cDNI one-hot context.
        sg_hidden, sg_hidden_layers, sg_kernel_size: MLP / conv SG settings.
        sg_lr_scale: SG learning rate = ``config.lr * sg_lr_scale``.
        sg_loss_weight: ``w`` in the surrogate.
        feedback_seed: seed of the fixed DFA matrices.
        delay: 0 (synchronous, default) or ``d >= 1``: pipelined update-decoupled training
            (module docstring), dni / cdni with ``target="bootstrap"`` only.

    Batches are dicts ``{"x": (B, ...), "y": (B,) int64 or (B, K) float}``.
    """

    def __init__(self, blocks: Sequence[nn.Module], example_input: torch.Tensor, mode: str = "backprop",
                 loss: str = "ce", sg: str = "mlp", target: str = "true", num_classes: int | None = None,
                 sg_hidden: int = 256, sg_hidden_layers: int = 2, sg_kernel_size: int | None = None,
                 sg_lr_scale: float = 1.0, sg_loss_weight: float = 1.0, feedback_seed: int = 0, delay: int = 0):
        super().__init__()
        if delay < 0:
            raise CanocapsInputError(f"delay must be >= 0, got {delay}")
        if delay and (mode not in ("dni", "cdni") or target != "bootstrap"):
            raise CanocapsInputError("delay > 0 (pipelined training) needs mode dni or cdni with target 'bootstrap': "
                                     "the true gradient is not available without waiting for the blocks above")
        self.delay = int(delay)
        self._queues: list[deque] = []
        if mode not in MODES:
            raise CanocapsInputError(f"unknown mode {mode!r} (expected one of {', '.join(MODES)})")
        if target not in ("true", "bootstrap"):
            raise CanocapsInputError(f"SG target must be 'true' or 'bootstrap', got {target!r}")
        if loss not in ("ce", "mse"):
            raise CanocapsInputError(f"unknown loss {loss!r} (expected 'ce' or 'mse')")
        blocks = list(blocks)
        if not blocks or (mode in _DECOUPLED and len(blocks) < 2):
            raise CanocapsInputError(f"mode {mode!r} needs at least {2 if mode in _DECOUPLED else 1} blocks")
        if mode == "fa":
            blocks = [to_feedback_alignment(b) for b in blocks]
        self.blocks = nn.ModuleList(blocks)
        self.mode, self.loss_name, self.target = mode, loss, target
        self.sg_lr_scale, self.sg_loss_weight = float(sg_lr_scale), float(sg_loss_weight)

        with torch.no_grad():
            h, shapes = example_input, []
            for blk in self.blocks:
                h = blk(h)
                shapes.append(tuple(h.shape[1:]))
        self.interface_shapes: list[tuple[int, ...]] = shapes[:-1]
        out_dim = shapes[-1][0] if len(shapes[-1]) == 1 else None
        if loss == "ce":
            if num_classes is None:
                num_classes = out_dim
            if out_dim != num_classes:
                raise CanocapsInputError(f"the last block gives {shapes[-1]} but num_classes is {num_classes}")
        self.num_classes = num_classes
        self.context_dim = (num_classes if loss == "ce" else out_dim) or 0

        self.sgs = nn.ModuleList()
        if mode in ("dni", "cdni"):
            ctx = self.context_dim if mode == "cdni" else 0
            for s in self.interface_shapes:
                self.sgs.append(make_sg(sg, s, ctx, hidden=sg_hidden, hidden_layers=sg_hidden_layers,
                                        kernel_size=sg_kernel_size))
        elif mode == "dfa":
            if out_dim is None:
                raise CanocapsInputError("DFA needs a last block with (B, K) output")
            gen = torch.Generator().manual_seed(feedback_seed)
            for s in self.interface_shapes:
                self.sgs.append(DirectFeedbackSG(out_dim, s, generator=gen))

    # -- plain network ---------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The network's output, connected end to end: x ``(B, ...)`` -> ``(B, K)``."""
        for blk in self.blocks:
            x = blk(x)
        return x

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Every block's output (interfaces then output), each ``(B, ...)``."""
        outs = []
        for blk in self.blocks:
            x = blk(x)
            outs.append(x)
        return outs

    def context(self, y: torch.Tensor) -> torch.Tensor:
        """cDNI context: one-hot labels ``(B, num_classes)`` for "ce", the targets ``(B, K)`` for "mse"."""
        if self.loss_name == "ce":
            return F.one_hot(y, self.num_classes).float()
        return y.flatten(1).float()

    @property
    def decoupled(self) -> bool:
        return self.mode in _DECOUPLED

    # -- trainer protocol ------------------------------------------------------------
    def training_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        """Surrogate ``"loss"`` (see module docstring) plus logs: ``task_loss``, ``acc`` ("ce"),
        ``sg_loss`` and ``sg_cos`` (cosine between estimate and true gradient) when decoupled."""
        x, y = batch["x"], batch["y"]
        n = x.shape[0]
        if self.delay:
            return self._pipelined_step(x, y)
        if not self.decoupled:
            out = self(x)
            task = per_sample_loss(out, y, self.loss_name).mean()
            return {"loss": task, "task_loss": task.detach(), **self._acc(out, y)}

        hs: list[torch.Tensor] = []    # block outputs h_0 .. h_{K-1}
        ins: list[torch.Tensor] = []   # ins[i] = detached h_i, the input of block i + 1
        h = x
        for i, blk in enumerate(self.blocks):
            if i > 0:
                h = h.detach().requires_grad_(True)
                ins.append(h)
            h = blk(h)
            hs.append(h)
        out = hs[-1]
        per = per_sample_loss(out, y, self.loss_name)
        task = per.mean()
        k = len(self.blocks)
        # output error: per-sample gradient of sum_n l_n w.r.t. the output
        err = torch.autograd.grad(per.sum(), out, retain_graph=True)[0]

        true_grads: list[torch.Tensor | None] = [None] * (k - 1)
        if self.target == "true" or self.mode == "dfa":
            g = err
            for i in range(k - 2, -1, -1):
                g = torch.autograd.grad(hs[i + 1], ins[i], grad_outputs=g, retain_graph=True)[0]
                true_grads[i] = g

        logs: dict[str, torch.Tensor] = {}
        surrogate = task
        if self.mode == "dfa":
            deltas = [sg(err.detach()) for sg in self.sgs]
        elif self.mode == "kickback":
            scalar = err.detach().flatten(1).sum(1)  # (B,) the global error 1^T e
            deltas = []
            for i in range(k - 1):
                ones = torch.ones_like(hs[i + 1])
                fan = torch.autograd.grad(hs[i + 1], ins[i], grad_outputs=ones, retain_graph=True)[0]
                deltas.append(scalar.view(-1, *[1] * (fan.dim() - 1)) * fan.detach())
        else:
            ctx = self.context(y) if self.mode == "cdni" else None
            preds = [sg(hs[i].detach(), ctx) for i, sg in enumerate(self.sgs)]
            deltas = [p.detach() for p in preds]
            if self.target == "true":
                targets = true_grads
            else:
                targets = [torch.autograd.grad(hs[i + 1], ins[i],
                                               grad_outputs=err if i == k - 2 else deltas[i + 1],
                                               retain_graph=True)[0] for i in range(k - 1)]
            sg_loss = sum((p - t).pow(2).flatten(1).sum(1).mean() for p, t in zip(preds, targets))
            surrogate = surrogate + self.sg_loss_weight * sg_loss
            logs["sg_loss"] = sg_loss.detach()
        for i, d in enumerate(deltas):
            surrogate = surrogate + (hs[i] * d).sum() / n
        if true_grads[0] is not None:
            cos = [F.cosine_similarity(d.flatten(), t.flatten(), dim=0, eps=1e-12) for d, t in zip(deltas, true_grads)]
            logs["sg_cos"] = torch.stack(cos).mean().detach()
        return {"loss": surrogate, "task_loss": task.detach(), **self._acc(out, y), **logs}

    def _pipelined_step(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        """One tick of the pipeline (module docstring): every block that has an input updates
        from its SG (the last block from the task loss) on its own, possibly stale, batch."""
        k = len(self.blocks)
        if len(self._queues) != k - 1:
            self._queues = [deque() for _ in range(k - 1)]
        surrogate = x.new_zeros(())
        logs: dict[str, torch.Tensor] = {}
        sg_losses = []
        inp, lab = x, y
        for i, blk in enumerate(self.blocks):
            if i > 0:
                q = self._queues[i - 1]
                q.append((h.detach(), lab))
                if len(q) <= self.delay:
                    break  # the pipeline is still filling: blocks i.. have nothing to read yet
                inp, lab = q.popleft()
                inp = inp.requires_grad_(True)
            h = blk(inp)
            n = h.shape[0]
            if i == k - 1:
                per = per_sample_loss(h, lab, self.loss_name)
                surrogate = surrogate + per.mean()
                logs["task_loss"] = per.mean().detach()
                logs.update(self._acc(h, lab))
                back = torch.autograd.grad(per.sum(), h, retain_graph=True)[0]
            else:
                ctx = self.context(lab) if self.mode == "cdni" else None
                g = self.sgs[i](h.detach(), ctx).detach()
                surrogate = surrogate + (h * g).sum() / n
                back = g
            if i > 0:  # bootstrapped target for SG_{i-1}, on the stale activation block i read
                target = torch.autograd.grad(h, inp, grad_outputs=back, retain_graph=True)[0].detach()
                ctx = self.context(lab) if self.mode == "cdni" else None
                pred = self.sgs[i - 1](inp.detach(), ctx)
                sg_losses.append((pred - target).pow(2).flatten(1).sum(1).mean())
        if sg_losses:
            sg_loss = sum(sg_losses)
            surrogate = surrogate + self.sg_loss_weight * sg_loss
            logs["sg_loss"] = sg_loss.detach()
        return {"loss": surrogate, **logs}

    @torch.no_grad()
    def validation_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``loss`` (task loss, mean over the batch) and ``acc`` ("ce") of the connected network."""
        out = self(batch["x"])
        return {"loss": per_sample_loss(out, batch["y"], self.loss_name).mean(), **self._acc(out, batch["y"])}

    def _acc(self, out: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.loss_name != "ce":
            return {}
        return {"acc": (out.detach().argmax(1) == y).float().mean()}

    def configure_optimizers(self, config: "TrainConfig") -> torch.optim.Optimizer:
        """``config.optimizer`` over two groups: network (``lr``) and SGs (``lr * sg_lr_scale``)."""
        net = [p for p in self.blocks.parameters() if p.requires_grad]
        sgs = [p for p in self.sgs.parameters() if p.requires_grad]
        groups = [{"params": net, "lr": config.lr}]
        if sgs:
            groups.append({"params": sgs, "lr": config.lr * self.sg_lr_scale})
        return build_optimizer(groups, config)
