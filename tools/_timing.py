"""Timing helpers shared by the tools/ benchmarks that compare two implementations side by side."""
from __future__ import annotations

import statistics
import time
from typing import Any, Callable


def median_us(fn: Callable[[], Any], repeats: int) -> float:
    """Median wall time of ``repeats`` calls of ``fn``, in microseconds."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e6 * statistics.median(times)


def paired_medians(ours: Callable[[], Any], theirs: Callable[[], Any], repeats: int) -> tuple[float, float]:
    """Medians (microseconds) of five alternating blocks of both (shared-machine load hits both alike)."""
    ours(), theirs()  # warm-up (imports, caches)
    a, b = [], []
    for _ in range(5):
        a.append(median_us(ours, max(1, repeats // 5)))
        b.append(median_us(theirs, max(1, repeats // 5)))
    return statistics.median(a), statistics.median(b)
