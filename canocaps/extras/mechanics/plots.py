"""Plots of measured vs predicted quantities (headless matplotlib, atomic output)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from canocaps._files import atomic_path

__all__ = ["plot_experiment"]

_STYLE = {"discrete": ("exact discrete recursion", ":"), "gradient_flow": ("gradient flow", "--"),
          "modified": ("modified equation (damped-oscillator ODE)", "-."),
          "paper": ("Kunin et al. closed form (as written)", (0, (1, 3)))}
_ERR_COLOR = {"sgd_step": "C0", "discrete": "C1", "gradient_flow": "C2", "modified": "C3", "paper": "C4"}


def _title(kind: str, name: str, width: int = 42) -> str:
    if len(name) <= width:
        return f"{kind}: {name}"
    return f"{kind}:\n" + "\n~".join(name.split("~"))


def plot_experiment(payload: dict[str, Any], path: str | Path, force: bool = False) -> Path:
    """One column per symmetry kind (first group of that kind): top, the first slots'
    measured quantity (solid) and predictions; bottom, max relative error over slots per step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    first: dict[str, dict[str, Any]] = {}
    for item in payload["series"]:
        first.setdefault(item["kind"], item)
    kinds = [k for k in ("translation", "scale", "rescale") if k in first]
    fig, axes = plt.subplots(2, len(kinds), figsize=(4.6 * len(kinds), 6.4), squeeze=False)
    for col, kind in enumerate(kinds):
        item = first[kind]
        steps = list(range(len(item["measured"])))
        ax = axes[0, col]
        for s in range(item["slots_shown"]):
            color = f"C{s}"
            ax.plot(steps, [r[s] for r in item["measured"]], color=color, lw=2.0, alpha=0.5,
                    label="measured" if s == 0 else None)
            for name, (label, ls) in _STYLE.items():
                ys = [r[s] for r in item[name]]
                if all(y is None for y in ys[1:]):
                    continue
                ax.plot(steps, [float("nan") if y is None else y for y in ys], color=color, ls=ls, lw=1.0,
                        label=label if s == 0 else None)
        ax.set_title(_title(kind, item["name"]), fontsize=9)
        ax.set_xlabel("step")
        ax.set_ylabel("Q per group")
        ax.legend(fontsize=7)
        ax = axes[1, col]
        for name, (label, ls) in [("sgd_step", ("exact one-step SGD", "-"))] + list(_STYLE.items()):
            e = item.get(f"rel_error_{name}", [])[1:]
            if not e or all(v is None for v in e):
                continue
            ax.semilogy(steps[1:], [max(v, 1e-18) if v is not None else float("nan") for v in e], ls=ls,
                        color=_ERR_COLOR[name], label=label)
        ax.set_xlabel("step")
        ax.set_ylabel("max |meas - pred| / magnitude")
        ax.legend(fontsize=7)
    fig.suptitle(payload.get("title", ""), fontsize=10)
    fig.tight_layout()
    with atomic_path(path, force=force) as tmp:
        fig.savefig(tmp, dpi=90)
    plt.close(fig)
    return Path(path)
