"""The one error guard of the tools/ scripts: a canocaps error becomes one line on stderr, exit 2."""
from __future__ import annotations

import sys
from typing import Callable


def guarded(prog: str, body: Callable[[], int]) -> int:
    """Return ``body()``; on :class:`canocaps.errors.CanocapsError` print ``PROG: error: ...`` and return 2."""
    from canocaps.cli import _one_line
    from canocaps.errors import CanocapsError

    try:
        return body()
    except CanocapsError as exc:
        print(f"{prog}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
