"""The package's error types.

Every problem caused by what a user passed in (a file, an array, a flag) raises
:class:`CanocapsInputError` with a one-line message that names the culprit. The CLI
prints that line to stderr and exits with status 2; it never shows a traceback for it.
"""
from __future__ import annotations


class CanocapsError(Exception):
    """Base class of every error canocaps raises on purpose."""


class CanocapsInputError(CanocapsError, ValueError):
    """Bad user input: missing/empty/unreadable file, NaN/inf, wrong shape, too few points.

    The message is a single line, suitable for printing as-is.
    """


class CanocapsWeightsError(CanocapsError):
    """Missing, unreadable or incompatible model weights."""


class OutputExistsError(CanocapsError, FileExistsError):
    """An output file exists and ``force`` was not given."""


class CanocapsWarning(UserWarning):
    """Input that works but may give a poor answer (e.g. a flat cloud: its pose may be flipped).

    The message is a single line; the CLI prints it as ``canocaps: warning: MESSAGE``.
    """
