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
