"""Small classifiers on scikit-learn's bundled 8x8 digits, and the trainer module around them.

Every network maps ``(B, 64)`` pixels (or ``(B, 1, 8, 8)`` images for the conv net) to
``(B, 10)`` logits; :class:`Classifier` adds the softmax cross-entropy loss in
``training_step``, so detection uses ``output_softmax=True``.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from canocaps.errors import CanocapsInputError

__all__ = ["MODEL_KINDS", "LogisticRegression", "MLP", "MLPBatchNorm", "ConvNet", "build_model",
           "Classifier", "example_input", "VGGNet", "IMAGE_SIZE"]

MODEL_KINDS = ("logreg", "mlp", "mlp_bn", "conv", "vgg")
IMAGE_SIZE = {"conv": 8, "vgg": 16}  # image models and their input side (vgg: digits upsampled x2)


class LogisticRegression(nn.Module):
    """Multinomial logistic regression: ``(B, 64) -> (B, 10)``."""

    def __init__(self, in_features: int = 64, classes: int = 10) -> None:
        super().__init__()
        self.fc = nn.Linear(in_features, classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(x)


class MLP(nn.Module):
    """``64 -> hidden -> hidden -> 10`` with ReLU: ``(B, 64) -> (B, 10)``."""

    def __init__(self, in_features: int = 64, hidden: int = 32, classes: int = 10) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.fc3 = nn.Linear(hidden, classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc3(torch.relu(self.fc2(torch.relu(self.fc1(x)))))


class MLPBatchNorm(nn.Module):
    """``(Linear -> BatchNorm1d -> ReLU) x 2 -> Linear``: ``(B, 64) -> (B, 10)``."""

    def __init__(self, in_features: int = 64, hidden: int = 32, classes: int = 10, bn_eps: float = 1e-5) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden)
        self.bn1 = nn.BatchNorm1d(hidden, eps=bn_eps)
        self.fc2 = nn.Linear(hidden, hidden)
        self.bn2 = nn.BatchNorm1d(hidden, eps=bn_eps)
        self.fc3 = nn.Linear(hidden, classes)

    def forward(self, x: Tensor) -> Tensor:
        x = torch.relu(self.bn1(self.fc1(x)))
        x = torch.relu(self.bn2(self.fc2(x)))
        return self.fc3(x)


class ConvNet(nn.Module):
    """``conv3x3 -> ReLU -> conv3x3 -> BN -> ReLU -> maxpool2 -> flatten -> Linear``.

    ``(B, 1, 8, 8) -> (B, 10)``.
    """

    def __init__(self, channels: int = 8, classes: int = 10, bn_eps: float = 1e-5) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.bn = nn.BatchNorm2d(channels, eps=bn_eps)
        self.pool = nn.MaxPool2d(2)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(channels * 16, classes)

    def forward(self, x: Tensor) -> Tensor:
        x = torch.relu(self.conv1(x))
        x = self.pool(torch.relu(self.bn(self.conv2(x))))
        return self.fc(self.flatten(x))


class VGGNet(nn.Module):
    """A small VGG-style net with batch norm: two stages of ``[conv3x3 -> BN -> ReLU] x 2 ->
    maxpool2`` (``channels``, ``2 * channels``), then ``flatten -> Linear``.

    ``(B, 1, 16, 16)`` (the digits upsampled x2) ``-> (B, 10)``.
    """

    def __init__(self, channels: int = 8, classes: int = 10, bn_eps: float = 1e-5) -> None:
        super().__init__()
        c1, c2 = channels, 2 * channels
        layers: list[nn.Module] = []
        for cin, cout in ((1, c1), (c1, c2)):
            for a, b in ((cin, cout), (cout, cout)):
                layers += [nn.Conv2d(a, b, 3, padding=1), nn.BatchNorm2d(b, eps=bn_eps), nn.ReLU()]
            layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(c2 * 16, classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.flatten(self.features(x)))


def build_model(kind: str, hidden: int | None = None, bn_eps: float = 1e-5) -> nn.Module:
    """One of :data:`MODEL_KINDS` (``hidden``: MLP width, default 32 / conv channels, default 8).

    ``bn_eps``: the batch norms' epsilon. The scale symmetry is exact only as ``eps -> 0``
    (``BN(alpha z)`` differs from ``BN(z)`` by ``O(eps / var)``).
    """
    if hidden is not None and hidden < 1:
        raise CanocapsInputError(f"hidden must be >= 1, got {hidden}")
    if not bn_eps > 0:
        raise CanocapsInputError(f"bn_eps must be > 0 (torch's batch norm rejects 0), got {bn_eps}")
    if kind == "logreg":
        return LogisticRegression()
    if kind == "mlp":
        return MLP(hidden=hidden or 32)
    if kind == "mlp_bn":
        return MLPBatchNorm(hidden=hidden or 32, bn_eps=bn_eps)
    if kind == "conv":
        return ConvNet(channels=hidden or 8, bn_eps=bn_eps)
    if kind == "vgg":
        return VGGNet(channels=hidden or 8, bn_eps=bn_eps)
    raise CanocapsInputError(f"unknown model {kind!r} (choose from {', '.join(MODEL_KINDS)})")


def example_input(kind: str, batch: int = 4, dtype: torch.dtype = torch.float32) -> Tensor:
    """A zero input of the right shape for ``kind``: ``(B, 64)``, ``(B, 1, 8, 8)`` (conv) or ``(B, 1, 16, 16)`` (vgg)."""
    side = IMAGE_SIZE.get(kind)
    return torch.zeros((batch, 1, side, side) if side else (batch, 64), dtype=dtype)


class Classifier(nn.Module):
    """Trainer module: softmax cross-entropy on ``net(batch["x"])`` logits ``(B, classes)``."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    def training_step(self, batch: dict[str, Any], step: int) -> dict[str, Tensor]:
        logits = self.net(batch["x"])
        loss = nn.functional.cross_entropy(logits, batch["y"])
        acc = (logits.argmax(-1) == batch["y"]).double().mean()
        return {"loss": loss, "acc": acc.detach()}

    def validation_step(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        logits = self.net(batch["x"])
        return {"loss": nn.functional.cross_entropy(logits, batch["y"]),
                "acc": (logits.argmax(-1) == batch["y"]).double().mean()}
