"""The tools/ scripts use the package's one error guard (:func:`canocaps._guard.guarded`)."""
from __future__ import annotations

from typing import Callable


def guarded(prog: str, body: Callable[[], int]) -> int:
    """Return ``body()``; failures become ``PROG: error: ...`` on stderr (2 bad input, 1 I/O, 130 Ctrl-C)."""
    from canocaps._guard import guarded as _guarded

    return _guarded(prog, body)
