"""The one error guard of every entry point: ``canocaps``, ``canocaps extras NAME``, tools/.

:func:`guarded` runs a command body and turns every failure into one line on stderr,
``PROG: error: MESSAGE``, and an exit status:

====================================================  ======
what                                                  status
====================================================  ======
bad input (:class:`canocaps.errors.CanocapsError`:     2
files, flags, missing weights, existing outputs)
an I/O failure (:class:`OSError`)                      1
an unexpected internal error (``CANOCAPS_DEBUG=1``     1
re-raises it with its traceback)
Ctrl-C / SIGTERM (``PROG: interrupted``)               130
a doubtful result under ``--strict`` (``canocaps          3
register --strict``: the result is printed and written,
then this status)
====================================================  ======

Warnings of :class:`canocaps.errors.CanocapsWarning` (input that works but may give a poor
answer, e.g. a flat cloud) print as one line, ``PROG: warning: MESSAGE``, and do not change
the status. Bad command-line flags are argparse's: its usage line and ``PROG: error: ...``, status 2
(``SystemExit`` passes through the guard). A closed stdout pipe (``canocaps register ... | head -1``) ends quietly with status 1.
Standard library only: importing it costs nothing.
"""
from __future__ import annotations

import os
import sys
import warnings
from typing import Any, Callable

from canocaps.errors import CanocapsError, CanocapsWarning

__all__ = ["guarded", "one_line", "EXIT_INPUT", "EXIT_FAILURE", "EXIT_INTERRUPTED", "EXIT_DOUBTFUL"]

EXIT_INPUT = 2
EXIT_FAILURE = 1
EXIT_INTERRUPTED = 130
#: ``--strict`` and the result's quality verdict is "doubtful" (not an error: the result is out)
EXIT_DOUBTFUL = 3


def one_line(exc: BaseException) -> str:
    """``exc`` as one line (``OSError``: ``FILE: strerror``; whitespace runs collapsed)."""
    if isinstance(exc, OSError) and exc.strerror:
        where = f"{exc.filename}: " if exc.filename else ""
        msg = f"{where}{exc.strerror}"
    else:
        msg = str(exc) or type(exc).__name__
    return " ".join(msg.split())


def _fail(prog: str, msg: str, code: int) -> int:
    print(f"{prog}: error: {msg}", file=sys.stderr)
    return code


def guarded(prog: str, body: Callable[[], int | None], interrupted: str = "interrupted") -> int:
    """Run ``body()`` and return its exit status (None -> 0); failures as in the module table.

    ``prog`` starts every message (``canocaps``, ``canocaps extras dni``, ``bench_ops``);
    ``interrupted`` is what Ctrl-C prints after ``PROG: ``.
    """
    with warnings.catch_warnings():  # restores showwarning afterwards
        previous = warnings.showwarning

        def show(message: Any, category: type, filename: str, lineno: int, file: Any = None,
                 line: Any = None) -> None:
            if issubclass(category, CanocapsWarning):
                print(f"{prog}: warning: {' '.join(str(message).split())}", file=sys.stderr)
            else:
                previous(message, category, filename, lineno, file, line)

        warnings.showwarning = show
        return _run(prog, body, interrupted)


def _run(prog: str, body: Callable[[], int | None], interrupted: str) -> int:
    try:
        return int(body() or 0)
    except KeyboardInterrupt:
        print(f"{prog}: {interrupted}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except CanocapsError as exc:
        return _fail(prog, one_line(exc), EXIT_INPUT)
    except BrokenPipeError:
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return EXIT_FAILURE
    except OSError as exc:
        return _fail(prog, one_line(exc), EXIT_FAILURE)
    except Exception as exc:  # noqa: BLE001 - the promise is "never a traceback"
        if os.environ.get("CANOCAPS_DEBUG"):
            raise
        return _fail(prog, f"internal error: {type(exc).__name__}: {one_line(exc)} "
                           "(set CANOCAPS_DEBUG=1 for the traceback)", EXIT_FAILURE)
