"""Atomic, no-clobber file output shared by every writer in the package.

Writers never leave a half-written file behind: they write to a temporary file in the
same folder and ``os.replace`` it onto the target at the end. An existing target is
only replaced when ``force=True``.
"""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from canocaps.errors import OutputExistsError


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_current_umask()  # what open() would give a new file


def check_outputs(force: bool, *paths: str | os.PathLike | None) -> None:
    """The one "exists, use --force" check: raise :class:`OutputExistsError` for the first of
    ``paths`` (None entries skipped) that exists when ``force`` is False.

    Commands call it before any heavy work, so a refused output costs nothing.
    """
    if force:
        return
    for p in paths:
        if p is not None and Path(p).exists():
            raise OutputExistsError(f"{p} exists (use --force / force=True to overwrite)")


def check_output_path(path: str | os.PathLike, force: bool = False) -> Path:
    """Return ``path`` as a Path; raise :class:`OutputExistsError` if it exists and not ``force``.

    The parent folder is created when missing.
    """
    out = Path(path)
    check_outputs(force, out)
    if out.exists() and out.is_dir():
        raise OutputExistsError(f"{out} is a directory, not a file")
    out.parent.mkdir(parents=True, exist_ok=True)
    return out


@contextmanager
def atomic_path(path: str | os.PathLike, force: bool = False, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success move it onto ``path`` atomically.

    ``suffix`` defaults to the target's own suffix, so libraries that choose a format
    from the file name (Open3D, trimesh, numpy) still see the right extension. On an
    exception the temporary file is removed and the target is left untouched.
    """
    out = check_output_path(path, force)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=suffix if suffix is not None else out.suffix,
                                    dir=out.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        check_outputs(force, out)  # it may have appeared while we were writing
        os.chmod(tmp, _FILE_MODE)  # mkstemp makes 0600 files
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_bytes(path: str | os.PathLike, data: bytes, force: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_path(path, force) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str, force: bool = False) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically (see :func:`atomic_path`)."""
    return atomic_write_bytes(path, text.encode("utf-8"), force)
