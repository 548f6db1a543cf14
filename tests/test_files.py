"""Atomic, no-clobber output files."""
from __future__ import annotations

import os
import stat

import pytest

from canocaps._files import atomic_path, atomic_write_text, check_output_path
from canocaps.errors import OutputExistsError


def test_write_refuse_overwrite_and_force(tmp_path):
    out = atomic_write_text(tmp_path / "sub" / "x.txt", "one")
    assert out.read_text() == "one"
    with pytest.raises(OutputExistsError, match="--force"):
        atomic_write_text(out, "two")
    assert out.read_text() == "one"
    atomic_write_text(out, "two", force=True)
    assert out.read_text() == "two"


def test_failed_write_leaves_nothing_behind(tmp_path):
    target = tmp_path / "y.bin"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"partial")
            raise RuntimeError("writer crashed")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_directory_is_not_a_valid_output(tmp_path):
    with pytest.raises(OutputExistsError, match="directory"):
        check_output_path(tmp_path, force=True)


def test_outputs_get_normal_file_permissions(tmp_path):
    out = atomic_write_text(tmp_path / "x.txt", "hi")
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~mask


# -- interrupted writes: nothing left behind, stale temporaries swept ----------------------
import errno  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from canocaps import _files  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
WRITER = """
import sys, time
from canocaps._files import atomic_path
with atomic_path(sys.argv[1]) as tmp:
    with open(tmp, "wb") as f:
        f.write(b"x" * 1_000_000)
        f.flush()
        print("writing", flush=True)
        time.sleep(60)
"""


def start_writer(target: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(target)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.stdout.readline().strip() == "writing", proc.stderr.read()
    return proc


def test_sigterm_mid_write_removes_the_temporary_and_says_so(tmp_path):
    target = tmp_path / "big.bin"
    proc = start_writer(target)
    assert len(list(tmp_path.iterdir())) == 1  # the temporary, full size, while writing
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGTERM  # it still ends by the signal
    assert list(tmp_path.iterdir()) == []
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("canocaps: terminated (SIGTERM): ") and str(target) in lines[0]


def test_sigkill_leftover_is_swept_by_the_next_write_to_that_folder(tmp_path):
    target = tmp_path / "big.bin"
    proc = start_writer(target)
    proc.kill()
    proc.wait(timeout=60)
    (left,) = list(tmp_path.iterdir())
    assert left.name.startswith(f".big.bin.{proc.pid}.") and left.stat().st_size == 1_000_000
    mine = tmp_path / ".notes.tmp"  # not our pattern: never touched
    mine.write_text("user file")
    alive = tmp_path / f".other.txt.{os.getpid()}.abcdefgh.canocaps-tmp.txt"  # a live writer's (this process)
    alive.write_text("in flight")
    assert _files.sweep_stale_temporaries(tmp_path) == []  # a dead writer's, but only seconds old
    old = time.time() - 2 * _files.DEAD_PID_AGE_S
    for p in (left, mine, alive):
        os.utime(p, (old, old))
    _files._swept.discard(str(tmp_path.resolve()))
    atomic_write_text(tmp_path / "next.txt", "hello")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([mine.name, alive.name, "next.txt"])
    very_old = time.time() - 2 * _files.STALE_AGE_S
    os.utime(alive, (very_old, very_old))
    assert _files.sweep_stale_temporaries(tmp_path) == [alive]


def test_failed_write_names_the_target_not_the_temporary(tmp_path, monkeypatch):
    target = tmp_path / "out.txt"
    with pytest.raises(OSError) as info:
        with atomic_path(target) as tmp:
            raise OSError(errno.ENOSPC, "No space left on device", str(tmp))
    assert info.value.filename == str(target) and info.value.errno == errno.ENOSPC
    assert list(tmp_path.iterdir()) == []

    def no_mkstemp(prefix, suffix, dir):
        raise PermissionError(errno.EACCES, "Permission denied", os.path.join(dir, prefix + "abcdefgh" + suffix))

    monkeypatch.setattr(_files.tempfile, "mkstemp", no_mkstemp)
    with pytest.raises(PermissionError) as info:
        atomic_write_text(target, "x")
    assert info.value.filename == str(target)
