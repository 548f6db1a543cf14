"""PNG figures of the DNI experiments (matplotlib, Agg backend), written atomically."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from canocaps._files import atomic_path

__all__ = ["plot_result"]

_COLORS = {"backprop": "k", "dni": "tab:blue", "cdni": "tab:orange", "dfa": "tab:green", "fa": "tab:red",
           "kickback": "tab:purple", "cdni_delay1": "tab:brown", "cdni_delay2": "tab:pink",
           "dni_delay1": "tab:cyan", "dni_delay2": "tab:olive"}


def _figure(ncols: int, width: float = 4.6, height: float = 3.6):
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, ncols, figsize=(width * ncols, height), squeeze=False)
    return plt, fig, axes[0]


def _lstsq(result: dict[str, Any], axes) -> None:
    for mode, r in result["results"].items():
        c = r["curve"]
        axes[0].semilogy(c["step"], np.maximum(c["loss_gap"], 1e-16), label=mode, color=_COLORS.get(mode))
        axes[1].semilogy(c["step"], np.maximum(c["param_dist"], 1e-16), label=mode, color=_COLORS.get(mode))
    axes[0].set(xlabel="step", ylabel="loss - optimal loss", title="linear regression: loss gap")
    axes[1].set(xlabel="step", ylabel="||theta - theta*||", title="distance to least squares")


def _deeplinear(result: dict[str, Any], axes) -> None:
    for mode, r in result["results"].items():
        c = r["curve"]
        axes[0].semilogy(c["step"], np.maximum(c["loss"], 1e-16), label=mode, color=_COLORS.get(mode))
    cfg = result["config"]
    axes[0].set(xlabel="step", ylabel="MSE loss (global optimum 0)",
                title=f"deep linear net, depth {cfg['depth']}, realisable data")


def _representations(result: dict[str, Any], axes) -> None:
    layers = result["layers"]
    cka = {**result["cka"], **result.get("cka_matched", {})}
    pairs = list(cka)
    width = 0.8 / len(pairs)
    for j, label in enumerate(pairs):
        axes[0].bar(np.arange(len(layers)) + j * width, cka[label]["mean"], width, yerr=cka[label]["std"], label=label)
    axes[0].set_xticks(np.arange(len(layers)) + 0.4 - width / 2, layers)
    axes[0].set(ylabel="linear CKA", ylim=(0, 1.4), title="representation similarity (test set)")
    axes[0].legend(fontsize=7, loc="upper center", ncol=2)
    for name, r in result["runs"].items():
        axes[1].plot(layers, r["effective_rank"], marker="o", label=f"{name} (acc {r['test_acc']:.3f})")
    axes[1].set(ylabel="effective rank", title="effective rank of hidden layers")
    axes[1].legend(fontsize=7)


def _classify(result: dict[str, Any], axes) -> None:
    for mode, seeds in result["runs"].items():
        curves = [r["curve"]["test_acc"] for r in seeds.values()]
        n = min(len(c) for c in curves)
        if n == 0:
            continue
        acc = np.array([c[:n] for c in curves])
        epochs = np.array(next(iter(seeds.values()))["curve"]["epoch"][:n])
        mean = acc.mean(0)
        axes[0].plot(epochs, mean, label=mode, color=_COLORS.get(mode))
        if acc.shape[0] > 1:
            axes[0].fill_between(epochs, acc.min(0), acc.max(0), alpha=0.2, color=_COLORS.get(mode))
    cfg = result["config"]
    n = len(cfg["seeds"])
    spread = f"mean of {n} seeds, band min-max" if n > 1 else "1 seed"
    axes[0].set(xlabel="epoch", ylabel="test accuracy", title=f"{cfg['data']} ({cfg['arch']}), {spread}")


_PLOTTERS = {"lstsq": (_lstsq, 2), "deeplinear": (_deeplinear, 1), "representations": (_representations, 2),
             "classify": (_classify, 1)}


def plot_result(result: dict[str, Any], path: str | Path, force: bool = False) -> Path:
    """Draw an experiment's result dict (from :mod:`canocaps.extras.dni.experiments`) to a PNG."""
    draw, ncols = _PLOTTERS[result["experiment"]]
    plt, fig, axes = _figure(ncols)
    try:
        draw(result, axes)
        for ax in axes:
            ax.grid(alpha=0.3)
        if axes[0].get_legend() is None:
            axes[0].legend(fontsize=8)
        fig.tight_layout()
        with atomic_path(path, force) as tmp:
            fig.savefig(tmp, dpi=110)
    finally:
        plt.close(fig)
    return Path(path)
