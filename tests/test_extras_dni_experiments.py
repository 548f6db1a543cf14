"""canocaps.extras.dni: the paper's claims 1 and 2 on small problems, and the CLI."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from canocaps.extras.dni.cli import main
from canocaps.extras.dni.experiments import DeepLinearConfig, LstsqConfig, run_deeplinear, run_lstsq


def test_claim1_linear_cdni_reaches_least_squares():
    """Linear regression + linear cDNI -> the closed-form least-squares solution (noisy data,
    so the optimum loss is > 0); the unconditioned linear SG does not get there."""
    res = run_lstsq(LstsqConfig(n=64, d=4, k=2, noise=0.5, steps=800, lr=0.1, record_every=100,
                                modes=["cdni", "dni"]))
    cdni, dni = res["results"]["cdni"], res["results"]["dni"]
    assert res["optimum_loss"] > 0.1
    assert cdni["param_dist_rel"] < 1e-4, cdni
    assert 0 <= cdni["loss_gap"] < 1e-8, cdni
    # the SG itself learnt the exact gradient map d(0.5||h-y||^2)/dh = h - y
    assert cdni["sg_A_minus_I"] < 1e-3 and cdni["sg_B_plus_I"] < 1e-3
    assert dni["param_dist_rel"] > 0.05 and dni["loss_gap"] > 0.01
    curve = cdni["curve"]["param_dist"]
    assert curve[-1] < 1e-3 * curve[0]


def test_claim2_deep_linear_with_linear_sg_reaches_global_optimum():
    res = run_deeplinear(DeepLinearConfig(n=64, d=4, hidden=4, k=2, depth=2, steps=800, lr=0.1,
                                          record_every=100, modes=["backprop", "cdni"]))
    assert res["optimum_loss"] < 1e-12  # realisable data
    start = res["results"]["cdni"]["curve"]["loss"][0]
    for mode in ("backprop", "cdni"):
        r = res["results"][mode]
        assert r["final_loss"] < 1e-4 and r["final_loss"] < 1e-4 * start, (mode, r["final_loss"], start)


def test_cli_lstsq_writes_json_png_and_refuses_overwrite(tmp_path, capsys):
    argv = ["lstsq", "--out", str(tmp_path), "--n", "32", "--d", "3", "--k", "2", "--steps", "30",
            "--modes", "backprop,cdni", "--no-progress"]
    assert main(argv) == 0
    table = capsys.readouterr().out
    assert "| cdni |" in table and "| backprop |" in table
    data = json.loads((tmp_path / "lstsq.json").read_text())
    assert set(data["results"]) == {"backprop", "cdni"} and data["command"].endswith("--no-progress")
    assert (tmp_path / "lstsq.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "runs" / "lstsq" / "cdni" / "last.pt").is_file()
    # no overwrite without --force; one line on stderr
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "exists" in err and "\n" not in err
    assert main(argv + ["--force"]) == 0


def test_cli_classify_resumes_finished_runs_and_rejects_changed_settings(tmp_path, capsys):
    argv = ["classify", "--out", str(tmp_path), "--epochs", "2", "--seeds", "0", "--modes", "backprop,cdni",
            "--hidden", "16", "--sg-hidden", "8", "--delays", "1", "--no-progress", "--no-plot"]
    assert main(argv) == 0
    first = json.loads((tmp_path / "classify.json").read_text())
    # selection on a validation split cut from the training split; test only reported
    assert (first["n_train"], first["n_val"], first["n_test"]) == (1294, 144, 359)
    assert set(first["runs"]) == {"backprop", "cdni", "cdni_delay1"}
    for run in (r["0"] for r in first["runs"].values()):
        assert run["best_val_acc"] == max(run["curve"]["val_acc"]) and len(run["curve"]["test_acc"]) == 2
        assert run["selected_test_acc"] == run["curve"]["test_acc"][run["curve"]["val_acc"].index(run["best_val_acc"])]
        assert "best_test_acc" not in run
    (tmp_path / "classify.json").unlink()
    assert main(argv) == 0  # the runs are reloaded from their checkpoints, not retrained
    second = json.loads((tmp_path / "classify.json").read_text())
    for mode in ("backprop", "cdni"):
        assert second["runs"][mode]["0"]["test_acc"] == first["runs"][mode]["0"]["test_acc"]
        assert second["runs"][mode]["0"]["seconds"] < first["runs"][mode]["0"]["seconds"] + 5
    assert 0.0 <= first["summary"]["cdni"]["test_acc_mean"] <= 1.0
    (tmp_path / "classify.json").unlink()
    assert main([a if a != "16" else "32" for a in argv]) == 2
    assert "other settings" in capsys.readouterr().err


@pytest.mark.parametrize("argv,needle", [
    (["classify", "--out", "X", "--modes", "magic"], "modes"),
    (["classify", "--out", "X", "--data", "mnist"], "mnist-dir"),
    (["classify", "--out", "X", "--data", "mnist", "--mnist-dir", "/nonexistent/mnist"], "does not exist"),
    (["deeplinear", "--out", "X", "--depth", "1"], "depth"),
])
def test_cli_bad_input_one_line_exit_2(tmp_path, capsys, argv, needle):
    argv = [str(tmp_path / "o") if a == "X" else a for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1


def test_python_m_entry_point(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "canocaps.extras.dni", "lstsq", "--out", str(tmp_path),
                           "--steps", "0"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.strip().startswith("canocaps extras dni: error:"), proc.stderr


def test_representations_at_matched_accuracy_over_seeds():
    from canocaps.extras.dni.experiments import RepresentationsConfig, run_representations

    res = run_representations(RepresentationsConfig(hidden=[8, 8], epochs=3, seeds=[0, 1, 2]))
    assert res["cka"]["bp/sg (same seed)"]["n"] == 3 and res["cka"]["bp/bp (control, seeds differ)"]["n"] == 3
    assert res["cka_matched"]["bp@matched/bp'@matched (control, seeds differ)"]["n"] == 6
    for s, m in res["matched"].items():
        accs = [e["val/acc"] for e in [{"val/acc": a} for a in res["runs"][f"bp{s}"]["curve"]["test_acc"]]]
        assert m["bp_acc"] == min(accs, key=lambda a: abs(a - m["sg_acc"])) and 1 <= m["bp_epoch"] <= 3
    for block in (res["cka"], res["cka_matched"]):
        for vals in block.values():
            assert all(0.0 <= v <= 1.0 + 1e-9 for v in vals["mean"]) and len(vals["std"]) == 2
