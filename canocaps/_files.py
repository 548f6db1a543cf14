"""Atomic, no-clobber file output shared by every writer in the package.

Writers never leave a half-written file behind: they write to a temporary file in the
same folder and ``os.replace`` it onto the target at the end. An existing target is
only replaced when ``force=True``.

Temporary files are named ``.<target name>.<pid>.<random>.canocaps-tmp<suffix>``. They
are removed when the write fails, on Ctrl-C, and on SIGTERM (the process then still
ends by SIGTERM, after one line on stderr). What a SIGKILL or a power cut leaves is
swept by the next write to the same folder: temporaries of that pattern whose process
is gone (and that are over a minute old), or that are over a day old whatever their pid.
"""
from __future__ import annotations

import os
import re
import signal
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from canocaps.errors import CanocapsInputError, OutputExistsError

TMP_MARK = ".canocaps-tmp"
_TMP_RE = re.compile(r"^\..+\.(?P<pid>\d+)\.[A-Za-z0-9_]{6,}" + re.escape(TMP_MARK) + r"(\.[^./]*)?$")
DEAD_PID_AGE_S = 60.0  # a dead writer's temporary is swept after this (guards a writer on another host)
STALE_AGE_S = 24 * 3600.0  # any temporary this old is swept
_swept: set[str] = set()  # folders this process has swept already


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


def check_suffix(suffix: str, *paths: str | os.PathLike | None) -> None:
    """Refuse (:class:`CanocapsInputError`, one line) an output path not ending in ``suffix``
    (e.g. ``".png"``: ``--png out.txt`` would write PNG bytes into a .txt); None entries skipped."""
    for p in paths:
        if p is not None and Path(p).suffix.lower() != suffix:
            raise CanocapsInputError(f"{p}: expected a {suffix} file name (the output is written as {suffix})")


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


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists, owned by someone else (or we cannot tell: keep it)
    return True


def sweep_stale_temporaries(folder: str | os.PathLike, now: float | None = None) -> list[Path]:
    """Remove our temporaries in ``folder`` left by writers that died (see the module doc).

    Returns the removed paths. Never raises for files it cannot inspect or remove.
    """
    now = time.time() if now is None else now
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        m = _TMP_RE.match(entry.name)
        if not m:
            continue
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            age = now - entry.stat(follow_symlinks=False).st_mtime
            pid = int(m.group("pid"))
            stale = age > STALE_AGE_S or (pid != os.getpid() and age > DEAD_PID_AGE_S and not _pid_alive(pid))
            if stale:
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:
            continue
    return removed


class _Terminated(BaseException):
    """SIGTERM arrived during an atomic write (BaseException: ``except Exception`` lets it pass)."""


def _raise_terminated(signum, frame):
    raise _Terminated()


def _target_error(exc: OSError, tmp: Path | None, out: Path) -> OSError:
    """The same OSError, naming the target instead of the temporary file."""
    if exc.filename is not None and tmp is not None and str(exc.filename) != str(tmp):
        return exc  # about another file: leave it alone
    try:
        return type(exc)(exc.errno, exc.strerror or str(exc), str(out))
    except Exception:
        return OSError(exc.errno, exc.strerror or str(exc), str(out))


@contextmanager
def atomic_path(path: str | os.PathLike, force: bool = False, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success move it onto ``path`` atomically.

    ``suffix`` defaults to the target's own suffix, so libraries that choose a format
    from the file name (Open3D, trimesh, numpy) still see the right extension. On an
    exception, Ctrl-C or SIGTERM the temporary file is removed and the target is left
    untouched; an ``OSError`` about the temporary file is re-raised naming the target.
    """
    out = check_output_path(path, force)
    folder = str(out.parent.resolve())
    if folder not in _swept:
        _swept.add(folder)
        sweep_stale_temporaries(out.parent)
    in_main = threading.current_thread() is threading.main_thread()
    catch_term = in_main and signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None)
    previous = signal.signal(signal.SIGTERM, _raise_terminated) if catch_term else None
    tmp: Path | None = None
    try:
        try:
            fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.{os.getpid()}.",
                                            suffix=TMP_MARK + (suffix if suffix is not None else out.suffix),
                                            dir=out.parent)
        except OSError as exc:
            raise _target_error(exc, None, out) from None
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            yield tmp
            check_outputs(force, out)  # it may have appeared while we were writing
            os.chmod(tmp, _FILE_MODE)  # mkstemp makes 0600 files
            os.replace(tmp, out)
        except OSError as exc:
            if isinstance(exc, OutputExistsError):
                raise
            raise _target_error(exc, tmp, out) from exc
    except _Terminated:
        if tmp is not None and tmp.exists():
            tmp.unlink()
        if catch_term:  # the outermost write: say so, then end by SIGTERM as the sender asked
            print(f"canocaps: terminated (SIGTERM): {out} not written, unfinished temporary file removed",
                  file=sys.stderr, flush=True)
            signal.signal(signal.SIGTERM, previous)
            os.kill(os.getpid(), signal.SIGTERM)
        raise
    finally:
        if tmp is not None and tmp.exists():
            tmp.unlink()
        if catch_term and signal.getsignal(signal.SIGTERM) is _raise_terminated:
            signal.signal(signal.SIGTERM, previous)


def read_text(path: str | os.PathLike, what: str = "file") -> str:
    """The UTF-8 text of ``path``; a missing, unreadable or binary file is a
    :class:`CanocapsInputError` with one line naming it (``what``: "config file", ...)."""
    p = Path(path)
    try:
        return p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise CanocapsInputError(f"{p}: not a text {what} (byte {exc.start} is not UTF-8; binary file?)") from None
    except FileNotFoundError:
        raise CanocapsInputError(f"{p}: {what} not found") from None
    except IsADirectoryError:
        raise CanocapsInputError(f"{p}: is a directory, expected a {what}") from None
    except OSError as exc:
        raise CanocapsInputError(f"{p}: cannot read {what} ({exc.strerror or type(exc).__name__})") from None


def atomic_write_bytes(path: str | os.PathLike, data: bytes, force: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_path(path, force) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str, force: bool = False) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically (see :func:`atomic_path`)."""
    return atomic_write_bytes(path, text.encode("utf-8"), force)
