"""The ``canocaps`` command: through the real console script for the error contract,
in-process (``canocaps.cli.main``) for the rest (each subprocess pays the torch import)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from canocaps.cli import main
from canocaps.io import write_points
from canocaps.model import CanonicalCapsules, CapsulesConfig

SCRIPT = Path(sys.executable).with_name("canocaps")


def cloud(n: int, seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, 3))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    v *= [1.0, 0.6, 0.3]
    v[v[:, 0] > 0.5, 0] += 0.3
    v[v[:, 1] > 0.3, 1] += 0.2
    return v.astype(np.float32)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("cli")
    torch.manual_seed(0)
    CanonicalCapsules(CapsulesConfig.preset("cpu", num_points=128, feat_dim=16, num_capsules=8,
                                            canon_hidden=(32,), decoder_bottleneck=32, num_blocks=1)).save(d / "tiny.pt")
    a = cloud(600, 1)
    R = np.array([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]])
    write_points(d / "a.ply", a)
    write_points(d / "b.ply", (a @ R.T + [0.1, 0.0, 0.05]).astype(np.float32))
    (d / "empty.xyz").write_text("")
    np.savetxt(d / "nan.xyz", np.array([[0, 0, 0], [np.nan, 1, 1], [1, 1, 1]]))
    np.savetxt(d / "few.xyz", np.random.default_rng(0).random((5, 3)))
    (d / "exists.ply").write_text("keep me")
    return d


def run_script(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    exe = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "canocaps"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CANOCAPS_WEIGHTS_DIR": str(cwd / "no-weights-here")}
    return subprocess.run(exe + args, cwd=cwd, capture_output=True, text=True, timeout=120, env=env)


def test_console_script_register_json(files):
    r = run_script(["register", "a.ply", "b.ply", "--weights", "tiny.pt", "--json", "-o", "moved.ply"], files)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    T = np.asarray(d["transform"])
    assert T.shape == (4, 4) and np.allclose(T[3], [0, 0, 0, 1])
    assert {"fitness", "inlier_rmse", "time_s", "hypothesis"} <= set(d)
    assert (files / "moved.ply").is_file() and "Traceback" not in r.stderr


@pytest.mark.parametrize("args, words", [
    (["register", "empty.xyz", "b.ply", "--weights", "tiny.pt"], ["empty.xyz", "empty"]),
    (["register", "nan.xyz", "b.ply", "--weights", "tiny.pt"], ["nan.xyz", "NaN"]),
    (["register", "missing.ply", "b.ply", "--weights", "tiny.pt"], ["missing.ply"]),
    (["register", "few.xyz", "b.ply", "--weights", "tiny.pt"], ["few.xyz", "5 points"]),
    (["register", "a.ply", "b.ply", "--weights", "not_shipped"], ["weights", "not_shipped", "no-weights-here"]),
    (["register", "a.ply", "b.ply", "--weights", "tiny.pt", "-o", "exists.ply"], ["exists.ply", "--force"]),
    (["register", "a.ply", "--no-such-flag"], ["usage"]),
])
def test_console_script_errors_are_one_line(files, args, words):
    r = run_script(args, files)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr and r.stdout == ""
    err = r.stderr.strip()
    for w in words:
        assert w in err, err
    if args[-1] != "--no-such-flag":  # argparse prints its usage first; ours is one line
        assert err.count("\n") == 0 and err.startswith("canocaps: error: ")
    assert (files / "exists.ply").read_text() == "keep me"


def test_help_and_version_are_fast_and_light(files):
    r = run_script(["--version"], files)
    assert r.returncode == 0 and r.stdout.startswith("canocaps ")
    code = ("import sys, canocaps.cli as c; c.build_parser(); "
            "print(sorted(m for m in ('torch', 'open3d', 'sklearn') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_register_text_output_and_force(files, capsys):
    args = ["register", str(files / "a.ply"), str(files / "b.ply"), "--weights", str(files / "tiny.pt"),
            "-o", str(files / "again.ply"), "--icp", "point_to_point"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "transform (maps A onto B)" in out and "fitness" in out
    assert main(args) == 2 and "exists" in capsys.readouterr().err
    assert main(args + ["--force"]) == 0
    capsys.readouterr()
    assert main(["register", str(files / "a.ply"), str(files / "b.ply"), "--method", "pca", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["method"] == "pca" and d["fitness"] > 0.9


def test_canonicalize_and_reconstruct(files, capsys):
    from canocaps.io import read_points

    w = ["--weights", str(files / "tiny.pt")]
    out = files / "canon.ply"
    assert main(["canonicalize", str(files / "a.ply"), "-o", str(out), "--json", *w]) == 0
    d = json.loads(capsys.readouterr().out)
    R, t = np.asarray(d["R"]), np.asarray(d["t"])
    a = read_points(files / "a.ply")
    np.testing.assert_allclose(read_points(out), a @ R.T + t, atol=1e-4)
    assert np.asarray(d["keypoints"]).shape == (8, 3)
    rec = files / "rec.xyz"
    assert main(["reconstruct", str(files / "a.ply"), "-o", str(rec), *w]) == 0
    assert "chamfer" in capsys.readouterr().out
    assert read_points(rec).shape == (8 * (128 // 8), 3)


def test_errors_in_process(files, capsys, monkeypatch):
    assert main(["extras", "no_such_extra"]) == 2
    assert "unknown extra" in capsys.readouterr().err
    assert main(["train"]) == 2 and "--config" in capsys.readouterr().err
    assert main(["train", "--config", "nope", "--out", str(files / "run")]) == 2
    assert "capsules_cpu" in capsys.readouterr().err  # names the bundled configs
    assert main(["train", "--resume", str(files / "run")]) == 2  # nothing to resume
    assert "resume" in capsys.readouterr().err
    assert main(["plot", str(files / "nowhere")]) == 2
    assert main(["register", str(files / "a.ply"), str(files / "b.ply"), "--device", "warp"]) == 2
    capsys.readouterr()

    import canocaps.commands.register as reg

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(reg, "run", interrupted)
    assert main(["register", "x", "y"]) == 130
    assert capsys.readouterr().err.strip() == "canocaps: interrupted"

    def bug(args):
        raise ZeroDivisionError("oops")

    monkeypatch.setattr(reg, "run", bug)
    assert main(["register", "x", "y"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("canocaps: error: internal error: ZeroDivisionError") and "\n" not in err


def test_eval_tasks_on_procedural_data(files, capsys):
    w = ["--weights", str(files / "tiny.pt"), "--per-class", "1", "--no-progress"]
    out = files / "reg.json"
    assert main(["eval", "registration", "--limit", "3", "--methods", "canocaps,pca", "--json-out", str(out), *w]) == 0
    table = capsys.readouterr().out
    assert "| canocaps" in table and "| pca" in table and "recall" in table
    d = json.loads(out.read_text())
    assert d["summary"]["pca"]["pairs"] == 3 and len(d["records"]["canocaps"]) == 3
    assert 0 <= d["summary"]["canocaps"]["recall"] <= 1
    assert main(["eval", "reconstruction", "--limit", "3", "--json", *w]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["shapes"] == 3 and rec["chamfer_mean"] > 0 and "squared" in rec["convention"]
    assert rec["num_input"] == 128 and rec["num_decoded"] == 8 * (128 // 8)  # the model's N by default
    assert main(["eval", "stability", "--limit", "2", "--num-copies", "3", "--json", *w]) == 0
    st = json.loads(capsys.readouterr().out)
    assert set(st) == {"canocaps", "pca"} and all(v["rre_deg"] >= 0 for v in st.values())
    assert main(["eval", "classification", "--json", *w]) == 0
    cl = json.loads(capsys.readouterr().out)
    assert cl["num_classes"] == 14 and cl["num_train"] == cl["num_test"] == 14
    assert 0 <= cl["svm_accuracy"] <= 1 and 0 <= cl["kmeans_accuracy"] <= 1
    assert cl["num_val"] == 14 and 0 <= cl["validated_svm_accuracy"] <= 1 and cl["validated_svm_C"] in (0.01, 0.1, 1.0)
    assert main(["eval", "registration", "--data", str(files / "nowhere"), *w]) == 2
    assert "--data" in capsys.readouterr().err


def test_demo_writes_its_picture_once(files, capsys):
    from canocaps.commands.demo import demo_dir

    if not (demo_dir() / "gt_transform.txt").is_file():
        pytest.fail(f"bundled demo pair missing in {demo_dir()}")
    outdir = files / "demo"
    args = ["demo", "--weights", str(files / "tiny.pt"), "--out-dir", str(outdir)]
    assert main(args + ["--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert (outdir / "demo_registration.png").stat().st_size > 1000
    assert d["rre_deg"] >= 0 and np.asarray(d["transform"]).shape == (4, 4)
    assert main(args) == 2 and "exists" in capsys.readouterr().err


def test_extras_dispatch(capsys):
    from canocaps.commands.extras import available

    names = available()
    assert {"dni", "mechanics", "trajectories"} <= set(names)
    with pytest.raises(SystemExit) as ei:
        main(["extras", "--help"])
    out = capsys.readouterr().out
    assert ei.value.code == 0 and all(n in out for n in names), out
    try:  # the extra's own parser prints its help and exits 0 (or returns 0)
        code = main(["extras", "dni", "--help"])
    except SystemExit as exc:
        code = exc.code
    assert code == 0 and "usage" in capsys.readouterr().out.lower()


def test_png_needs_the_png_extension(files, capsys):
    w = ["--weights", str(files / "tiny.pt")]
    for args in (["register", str(files / "a.ply"), str(files / "b.ply"), "--png", str(files / "out.txt")],
                 ["canonicalize", str(files / "a.ply"), "--png", str(files / "out.txt")],
                 ["canonicalize", str(files / "a.ply"), "--capsules-png", str(files / "caps.jpg")]):
        assert main(args + w) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("canocaps: error: ") and "\n" not in err and ".png" in err
    assert not (files / "out.txt").exists() and not (files / "caps.jpg").exists()


def test_degenerate_clouds_refused_or_warned_in_one_line(files, capsys):
    w = ["--weights", str(files / "tiny.pt")]
    rng = np.random.default_rng(0)
    np.savetxt(files / "same.xyz", np.tile([1.0, 2.0, 3.0], (50, 1)))
    np.savetxt(files / "line.xyz", np.outer(rng.normal(size=50), [1.0, 2.0, -1.0]) + [4.0, 0.0, 0.0])
    flat = rng.normal(size=(300, 3)) * [2.0, 1.0, 0.0]
    np.savetxt(files / "flat.xyz", flat)
    for name, words in (("same.xyz", ["all 50 points are equal"]), ("line.xyz", ["one line"])):
        assert main(["canonicalize", str(files / name), *w]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"canocaps: error: {files / name}") and "\n" not in err
        assert all(x in err for x in words), err
    assert main(["canonicalize", str(files / "flat.xyz"), "--json", *w]) == 0
    cap = capsys.readouterr()
    assert json.loads(cap.out)["transform"]
    warnings = [ln for ln in cap.err.splitlines() if ln.startswith("canocaps: warning: ")]
    assert len(warnings) == 1 and "one plane" in warnings[0]  # the warning is one line
    assert "Traceback" not in cap.err


def test_eval_data_folder_is_recognised_without_a_prefix(files, capsys, tmp_path):
    """A ModelNet40 h5 folder (ply_data_*.h5) works as ``--data DIR``."""
    import h5py

    root = tmp_path / "modelnet40_ply_hdf5_2048"
    root.mkdir()
    rng = np.random.default_rng(1)
    for name in ("ply_data_train0.h5", "ply_data_test0.h5"):
        with h5py.File(root / name, "w") as f:
            f.create_dataset("data", data=np.stack([cloud(2048, i) for i in range(3)]))
            f.create_dataset("label", data=rng.integers(0, 40, size=(3, 1)).astype(np.uint8))
    args = ["eval", "reconstruction", "--data", str(root), "--limit", "2", "--json", "--no-progress",
            "--weights", str(files / "tiny.pt")]
    assert main(args) == 0, capsys.readouterr().err
    assert json.loads(capsys.readouterr().out)["shapes"] == 2
# ----------------------------------------------------------------- issue 15: a newcomer's first hour
def test_demo_runs_any_number_of_times_into_its_own_folder(files, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    args = ["demo", "--weights", str(files / "tiny.pt")]
    assert main(args) == 0
    png = tmp_path / "canocaps_demo" / "demo_registration.png"
    first = png.stat()
    out = capsys.readouterr()
    assert "quality" in out.out and str(Path("canocaps_demo") / "demo_registration.png") in out.err
    assert main(args) == 0, capsys.readouterr().err  # the second run replaces its own picture
    second = png.stat()
    assert second.st_size > 1000 and (second.st_ino, second.st_mtime_ns) != (first.st_ino, first.st_mtime_ns)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["canocaps_demo"]  # nothing else in the folder
    root = Path(__file__).resolve().parents[1]
    if (root / ".git").exists():
        r = subprocess.run(["git", "-C", str(root), "check-ignore", "-q", "canocaps_demo/demo_registration.png"])
        assert r.returncode == 0, "canocaps_demo/ must be git-ignored"


def test_register_says_when_it_is_doubtful_and_strict_exits_3(files, capsys, tmp_path):
    from canocaps._guard import EXIT_DOUBTFUL

    a = str(files / "a.ply")
    b = tmp_path / "cube.xyz"  # another shape: no rigid motion puts A on it
    write_points(b, np.random.default_rng(5).uniform(-1, 1, size=(600, 3)).astype(np.float32))
    bad = ["register", a, str(b), "--method", "pca"]
    assert main(bad) == 0  # without --strict a doubtful result is a result, said in the summary
    out = capsys.readouterr().out
    assert "quality DOUBTFUL" in out and "fitness" in out.splitlines()[-1]
    assert main(bad + ["--strict"]) == EXIT_DOUBTFUL == 3
    capsys.readouterr()
    assert main(bad + ["--strict", "--json"]) == 3
    cap = capsys.readouterr()
    d = json.loads(cap.out)
    assert d["quality"] == "doubtful" and d["quality_reasons"] and "DOUBTFUL" in cap.err
    assert main(["register", a, a, "--method", "pca", "--strict"]) == 0  # a cloud onto itself: good
    assert "quality good" in capsys.readouterr().out


def _all_parsers() -> dict:
    import importlib

    from canocaps._options import subparsers_of
    from canocaps.cli import build_parser

    top = build_parser()
    out = {p.prog: p for p in [top, *subparsers_of(top)]}
    for name, builder in (("dni", "build_parser"), ("mechanics", "build_parser"), ("trajectories", "_parser")):
        ext = getattr(importlib.import_module(f"canocaps.extras.{name}.cli"), builder)()
        out.update({p.prog: p for p in [ext, *subparsers_of(ext)]})
    return out


def test_every_option_has_help_with_its_default_and_one_spelling():
    import argparse

    from canocaps._options import HelpFormatter

    parsers = _all_parsers()
    assert len(parsers) > 25
    missing, spelling = [], []
    for prog, p in parsers.items():
        fmt = HelpFormatter(prog)
        for a in p._actions:
            if not a.option_strings or isinstance(a, (argparse._HelpAction, argparse._VersionAction,
                                                      argparse._SubParsersAction)) or a.help == argparse.SUPPRESS:
                continue
            text = fmt._get_help_string(a) or ""
            if not a.help or not ("default" in text.lower() or "required" in text.lower()):
                missing.append(f"{prog} {'/'.join(a.option_strings)}")
            if "--force" in a.option_strings and "-f" not in a.option_strings:
                spelling.append(f"{prog} --force without -f")
            if "--quiet" in a.option_strings and "--no-progress" not in a.option_strings:
                spelling.append(f"{prog} --quiet without --no-progress")
            if prog.startswith("canocaps ") and not prog.startswith("canocaps extras") and "--json" in a.option_strings \
                    and a.nargs != 0:
                spelling.append(f"{prog} --json takes a value (files are --json-out PATH)")
    assert not missing, missing
    assert not spelling, spelling


@pytest.mark.parametrize("argv, usage", [
    (["eval", "registration", "--bogus"], "usage: canocaps eval registration"),
    (["register", "a.ply", "b.ply", "--bogus"], "usage: canocaps register"),
    (["extras", "dni", "lstsq", "--out", "x", "--bogus"], "usage: canocaps extras dni lstsq"),
    (["extras", "mechanics", "detect", "--bogus"], "usage: canocaps extras mechanics detect"),
])
def test_a_bad_flag_prints_the_subcommands_usage(argv, usage, capsys):
    with pytest.raises(SystemExit) as ei:
        code = main(argv)
        raise SystemExit(code)  # the extras return 2 after argparse printed
    assert ei.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(usage) and "unrecognized arguments: --bogus" in err and "Traceback" not in err


def test_show_with_png_names_the_picture_when_there_is_no_display(files, capsys, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    png = files / "shown.png"
    args = ["register", str(files / "a.ply"), str(files / "b.ply"), "--method", "pca", "--show", "--png", str(png), "-f"]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert png.is_file() and f"the picture is in {png}" in err and "use --png" not in err
    assert main(args[:-3]) == 0  # --show alone: the hint to use --png
    assert "use --png FILE" in capsys.readouterr().err


def test_eval_on_a_plain_folder_uses_every_file(files, capsys, tmp_path):
    folder = tmp_path / "scans"
    folder.mkdir()
    for i in range(3):
        write_points(folder / f"s{i}.xyz", cloud(300, 10 + i))
    args = ["eval", "reconstruction", "--data", str(folder), "--json", "--no-progress", "--weights", str(files / "tiny.pt")]
    assert main(args) == 0
    cap = capsys.readouterr()
    assert json.loads(cap.out)["shapes"] == 3 and "no test/ sub-folder" in cap.err
