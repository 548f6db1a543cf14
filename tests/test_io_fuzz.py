"""Fuzzing the readers: random bytes, truncations of valid files at many offsets and
header/body mismatches, for every extension. Every failure is a CanocapsInputError of
one line naming the file (never another exception type); a file whose header declares
counts never reads as fewer points. Seeded; a few seconds."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from canocaps.errors import CanocapsInputError
from canocaps.io import READ_EXTENSIONS, read_points, write_points

ROOT = Path(__file__).resolve().parents[1]
RNG_SEED = 20240614


def check(path: Path) -> str:
    """'ok' (a valid (N, 3) float32 cloud) or 'error' (one line naming the file); anything else fails."""
    try:
        arr = read_points(path)
    except CanocapsInputError as exc:
        msg = str(exc)
        assert msg and "\n" not in msg, repr(msg)
        assert str(path) in msg or path.name in msg, msg
        return "error"
    assert arr.dtype == np.float32 and arr.ndim == 2 and arr.shape[1] == 3 and len(arr) >= 1
    assert np.isfinite(arr).all()
    return "ok"


def _ascii_ply(pts: np.ndarray) -> bytes:
    head = ("ply\nformat ascii 1.0\nelement vertex {n}\nproperty float x\nproperty float y\nproperty float z\n"
            "end_header\n").format(n=len(pts))
    return (head + "".join(f"{x:.6f} {y:.6f} {z:.6f}\n" for x, y, z in pts)).encode()


def _ascii_pcd(pts: np.ndarray) -> bytes:
    head = ("# .PCD v0.7\nVERSION 0.7\nFIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nCOUNT 1 1 1\nWIDTH {n}\nHEIGHT 1\n"
            "VIEWPOINT 0 0 0 1 0 0 0\nPOINTS {n}\nDATA ascii\n").format(n=len(pts))
    return (head + "".join(f"{x:.6f} {y:.6f} {z:.6f}\n" for x, y, z in pts)).encode()


@pytest.fixture(scope="module")
def valid(tmp_path_factory) -> dict[str, tuple[Path, str]]:
    """name -> (a valid file, kind): kind 'binary' (any cut is an error), 'counted-text' (a cut
    that drops a whole line is an error), 'free' (a cut may still be a valid, smaller file)."""
    import trimesh

    d = tmp_path_factory.mktemp("valid")
    pts = np.random.default_rng(0).normal(size=(40, 3)).astype(np.float32)
    files: dict[str, tuple[Path, str]] = {}
    for ext in (".ply", ".pcd", ".npy", ".npz"):
        files[f"bin{ext}"] = (write_points(d / f"bin{ext}", pts), "binary")
    for ext in (".xyz", ".pts", ".txt"):
        files[ext] = (write_points(d / f"t{ext}", pts), "free")
    (d / "ascii.ply").write_bytes(_ascii_ply(pts))
    files["ascii.ply"] = (d / "ascii.ply", "counted-text")
    (d / "ascii.pcd").write_bytes(_ascii_pcd(pts))
    files["ascii.pcd"] = (d / "ascii.pcd", "counted-text")
    mesh = trimesh.creation.icosphere(subdivisions=1)
    for name, ext, kind, kw in (("mesh.ply", ".ply", "binary", {}), ("mesh.off", ".off", "counted-text", {}),
                                ("mesh.stl", ".stl", "binary", {}), ("ascii.stl", ".stl", "ascii-stl", {}),
                                ("mesh.obj", ".obj", "free", {})):
        p = d / name
        if name == "ascii.stl":
            p.write_bytes(trimesh.exchange.stl.export_stl_ascii(mesh).encode())
        else:
            mesh.export(p, file_type=ext[1:], **kw)
        files[name] = (p, kind)
    for name, (p, _) in files.items():
        assert check(p) == "ok", name
    return files


def test_every_extension_is_covered(valid):
    assert {p.suffix for p, _ in valid.values()} == set(READ_EXTENSIONS)


def test_random_bytes(valid, tmp_path):
    rng = np.random.default_rng(RNG_SEED)
    magics = [b"", b"ply\n", b"ply\nformat ascii 1.0\nelement vertex 5\nend_header\n", b"OFF\n", b"OFF\n3 1 0\n",
              b"solid x\n", b"# .PCD v0.7\nFIELDS x y z\nPOINTS 3\nDATA binary\n", b"\x93NUMPY", b"PK\x03\x04", b"v 1 2 3\n"]
    for ext in READ_EXTENSIONS:
        for i, magic in enumerate(magics):
            for size in (1, 40, 700):
                p = tmp_path / f"r{i}_{size}{ext}"
                p.write_bytes(magic + rng.integers(0, 256, size, dtype=np.uint8).tobytes())
                check(p)


def test_truncations_at_many_offsets(valid, tmp_path):
    rng = np.random.default_rng(RNG_SEED)
    for name, (src, kind) in valid.items():
        data = src.read_bytes()
        offsets = sorted(set(np.linspace(1, len(data) - 1, 10).astype(int).tolist()
                             + rng.integers(1, len(data), 4).tolist()))
        last_line = len(data.rstrip(b"\n").rsplit(b"\n", 1)[-1]) + 1
        for cut in offsets:
            p = tmp_path / f"cut{cut}_{name}"
            p.write_bytes(data[:cut])
            outcome = check(p)
            if kind == "binary" or (kind == "counted-text" and cut < len(data) - last_line):
                assert outcome == "error", (name, cut, len(data))
            if kind == "ascii-stl" and cut < len(data) - len(b"endsolid"):
                assert outcome == "error", (name, cut, len(data))


def _mismatches(valid: dict[str, tuple[Path, str]]) -> dict[str, bytes]:
    ply = valid["ascii.ply"][0].read_bytes()
    pcd = valid["ascii.pcd"][0].read_bytes()
    bpcd = valid["bin.pcd"][0].read_bytes()
    off = valid["mesh.off"][0].read_bytes()
    stl = valid["mesh.stl"][0].read_bytes()
    bply = valid["bin.ply"][0].read_bytes()
    return {
        "ply_more_declared.ply": ply.replace(b"element vertex 40", b"element vertex 2048"),
        "ply_fewer_declared.ply": ply.replace(b"element vertex 40", b"element vertex 10"),
        "ply_extra_line.ply": ply + b"1 2 3\n",
        "bply_more_declared.ply": bply.replace(b"element vertex 40", b"element vertex 41"),
        "bply_trailing.ply": bply + b"\x00" * 24,
        "pcd_points.pcd": pcd.replace(b"POINTS 40", b"POINTS 50"),
        "pcd_width.pcd": pcd.replace(b"WIDTH 40", b"WIDTH 20"),
        "pcd_fewer_lines.pcd": b"\n".join(pcd.split(b"\n")[:-5]) + b"\n",
        "pcd_more_lines.pcd": pcd + b"1 2 3\n",
        "bpcd_points.pcd": bpcd.replace(b"POINTS 40", b"POINTS 80").replace(b"WIDTH 40", b"WIDTH 80"),
        "off_counts.off": off.replace(b"42 80 0", b"60 80 0", 1),
        "stl_count.stl": stl[:80] + (int.from_bytes(stl[80:84], "little") + 3).to_bytes(4, "little") + stl[84:],
    }


def test_header_body_mismatches_are_errors(valid, tmp_path):
    for name, data in _mismatches(valid).items():
        assert data != b"" and name
        p = tmp_path / name
        p.write_bytes(data)
        assert check(p) == "error", name


def _run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "canocaps", *args], capture_output=True, text=True,
                          timeout=300, cwd=cwd, env=env)


def test_cli_bad_inputs_one_line_no_partial_output(valid, tmp_path):
    bad = tmp_path / "short.ply"
    bad.write_bytes(valid["ascii.ply"][0].read_bytes().replace(b"element vertex 40", b"element vertex 2048"))
    binary_cfg = tmp_path / "cfg.yaml"
    binary_cfg.write_bytes(b"\xff\xfe\x00binary\x80\x81")
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.csv").write_bytes(os.urandom(64) + b"\xff")
    cases = [(("canonicalize", str(bad), "-o", "out.ply"), "out.ply", "truncated PLY"),
             (("train", "--config", str(binary_cfg), "--out", "newrun"), "newrun", "not a text"),
             (("plot", str(run), "-o", "curves.png"), "curves.png", "not a text")]
    for args, output, words in cases:
        proc = _run_cli(*args, cwd=tmp_path)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, (args, proc.stderr[-1500:])
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("canocaps: error: ") and words in lines[0], (args, lines)
        assert not (tmp_path / output).exists(), args
        assert not [q for q in tmp_path.iterdir() if ".canocaps-tmp" in q.name]
