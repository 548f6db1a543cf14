"""The tools/ scripts use the package's one error guard (:func:`canocaps._guard.guarded`)."""
from __future__ import annotations

from typing import Any, Callable


def guarded(prog: str, body: Callable[[], int]) -> int:
    """Return ``body()``; failures become ``PROG: error: ...`` on stderr (2 bad input, 1 I/O, 130 Ctrl-C)."""
    from canocaps._guard import guarded as _guarded

    return _guarded(prog, body)


def write_study_json(args: Any, **payload: Any) -> None:
    """Write ``{"args": vars(args), **payload}`` as JSON to ``args.json`` (atomically; an existing file only
    with ``args.force``); nothing when ``args.json`` is empty."""
    if not args.json:
        return
    import json

    from canocaps._files import atomic_write_text

    atomic_write_text(args.json, json.dumps({"args": vars(args), **payload}, indent=2) + "\n", force=args.force)
