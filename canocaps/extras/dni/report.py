"""Markdown tables of the DNI experiments' result dicts (what the CLI prints)."""
from __future__ import annotations

import math
from typing import Any

__all__ = ["format_table", "json_safe"]


def json_safe(obj: Any) -> Any:
    """Replace non-finite floats by ``None`` (strict JSON) throughout nested dicts/lists."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def _g(v: Any, fmt: str = ".3g") -> str:
    return "-" if v is None else format(v, fmt)


def format_table(result: dict[str, Any]) -> str:
    """A Markdown table summarising one experiment result."""
    exp = result["experiment"]
    lines: list[str] = []
    if exp == "lstsq":
        lines += ["| method | final loss | optimum | loss gap | param dist (rel) | SG ‖A−I‖ | SG ‖B+I‖ | s |",
                  "|---|---|---|---|---|---|---|---|"]
        for m, r in result["results"].items():
            lines.append(f"| {m} | {r['final_loss']:.6f} | {r['optimum_loss']:.6f} | {r['loss_gap']:.2e} | "
                         f"{r['param_dist']:.2e} ({r['param_dist_rel']:.1e}) | {_g(r.get('sg_A_minus_I'), '.1e')} | "
                         f"{_g(r.get('sg_B_plus_I'), '.1e')} | {r['seconds']:.1f} |")
    elif exp == "deeplinear":
        lines += ["| method | final loss | global optimum | SG cosine to true grad | s |", "|---|---|---|---|---|"]
        for m, r in result["results"].items():
            lines.append(f"| {m} | {r['final_loss']:.2e} | {r['optimum_loss']:.1e} | "
                         f"{_g(r.get('final_sg_cos'), '.3f')} | {r['seconds']:.1f} |")
    elif exp == "representations":
        layers = result["layers"]
        lines += ["| pair (mean ± std over seeds / seed pairs) | " + " | ".join(f"CKA {l}" for l in layers) + " |",
                  "|---" * (len(layers) + 1) + "|"]
        for label, vals in {**result["cka"], **result.get("cka_matched", {})}.items():
            lines.append(f"| {label} | " + " | ".join(f"{m:.3f} ± {sd:.3f}" for m, sd in zip(vals["mean"], vals["std"]))
                         + " |")
        lines += ["", "| run | test acc | " + " | ".join(f"eff. rank {l}" for l in layers) + " |",
                  "|---" * (len(layers) + 2) + "|"]
        for name, r in result["runs"].items():
            lines.append(f"| {name} | {r['test_acc']:.4f} | " + " | ".join(f"{v:.2f}" for v in r["effective_rank"]) + " |")
    elif exp == "classify":
        n = len(result["config"]["seeds"])
        lines += [f"| method | test acc at best val epoch (mean ± std, {n} seeds) | final test acc (mean ± std) "
                  "| s / run |", "|---|---|---|---|"]
        for m, s in result["summary"].items():
            lines.append(f"| {m} | {s['selected_test_acc_mean']:.4f} ± {s['selected_test_acc_std']:.4f} | "
                         f"{s['test_acc_mean']:.4f} ± {s['test_acc_std']:.4f} | {s['seconds_mean']:.1f} |")
    else:  # pragma: no cover
        raise ValueError(exp)
    return "\n".join(lines)
