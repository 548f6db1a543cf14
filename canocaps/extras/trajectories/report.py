"""Results tables: mean +- std over seeds of the JSON reports written by ``eval``.

Runs are grouped by model (and macro LF); every column is the mean +- standard deviation
(``ddof = 0``) over the group's runs of one number of the report. The last row is the
real data (the ground-truth statistics of the same rollout starts).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from canocaps.errors import CanocapsInputError

COLUMNS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("bound (nats/seq)", ("bound", "loss"), "{:.1f}"),
    ("IWAE bound", ("bound", "iw_loss"), "{:.1f}"),
    ("avg speed", ("rollouts", "generated", "avg_speed"), "{:.4f}"),
    ("path length", ("rollouts", "generated", "path_length"), "{:.2f}"),
    ("OOB rate", ("rollouts", "generated", "oob_rate"), "{:.3f}"),
    ("generated friendly", ("friendliness", "generated_friendly_fraction"), "{:.2f}"),
    ("fixed friendly: classified so", ("friendliness", "conditioned_friendly_classified_as_intended"), "{:.2f}"),
    ("fixed unfriendly: classified so", ("friendliness", "conditioned_unfriendly_classified_as_intended"), "{:.2f}"),
    ("OOB, fixed friendly", ("friendliness", "conditioned_friendly_stats", "oob_rate"), "{:.3f}"),
    ("OOB, fixed unfriendly", ("friendliness", "conditioned_unfriendly_stats", "oob_rate"), "{:.3f}"),
)
REAL = {"avg speed": ("rollouts", "ground_truth", "avg_speed"), "path length": ("rollouts", "ground_truth", "path_length"),
        "OOB rate": ("rollouts", "ground_truth", "oob_rate"), "generated friendly": ("friendliness", "real_friendly_fraction")}


def _get(d: dict[str, Any], path: tuple[str, ...]) -> float | None:
    for k in path:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return float(d) if isinstance(d, (int, float)) else None


def _cell(values: list[float], fmt: str) -> str:
    if not values:
        return "—"
    a = np.asarray(values, dtype=np.float64)
    return f"{fmt.format(a.mean())} ± {fmt.format(a.std())}" if len(a) > 1 else fmt.format(a[0])


def summarize_evals(paths: Sequence[str | Path]) -> dict[str, Any]:
    """Read ``eval`` reports, group them by model, return ``{"groups": {...}, "table": markdown}``."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for p in paths:
        p = Path(p)
        try:
            rep = json.loads(p.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise CanocapsInputError(f"{p}: not a readable eval JSON ({exc.__class__.__name__})") from None
        if not isinstance(rep, dict) or "model" not in rep or "bound" not in rep:
            raise CanocapsInputError(f"{p}: not a report written by 'eval'")
        run = json.loads((Path(rep["run_dir"]) / "run.json").read_text()) if (Path(rep["run_dir"]) / "run.json").is_file() else {}
        name = rep["model"] + (f" ({run['macro_lf']} LF)" if run.get("macro_lf") else "")
        groups.setdefault(name, []).append(rep)
    header = ["model", "runs", *(c[0] for c in COLUMNS)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out: dict[str, Any] = {}
    for name, reps in groups.items():
        stats = {}
        cells = []
        for label, path, fmt in COLUMNS:
            vals = [v for v in (_get(r, path) for r in reps) if v is not None]
            stats[label] = {"mean": float(np.mean(vals)), "std": float(np.std(vals)), "n": len(vals)} if vals else None
            cells.append(_cell(vals, fmt))
        out[name] = stats
        lines.append(f"| {name} | {len(reps)} | " + " | ".join(cells) + " |")
    real_cells = []
    first = next(iter(groups.values()))
    for label, _, fmt in COLUMNS:
        path = REAL.get(label)
        vals = [v for v in (_get(r, path) for r in first) if v is not None] if path else []
        real_cells.append(fmt.format(np.mean(vals)) if vals else "")
    lines.append("| real data | | " + " | ".join(real_cells) + " |")
    return {"groups": out, "table": "\n".join(lines)}
