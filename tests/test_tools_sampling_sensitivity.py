"""tools/sampling_sensitivity.py: invariances that must hold exactly, a table, JSON, one-line errors."""
from __future__ import annotations

import json

from tool_scripts import run_tool


def run_sensitivity(*args):
    return run_tool("sampling_sensitivity.py", *args, timeout=180)


def test_sampling_sensitivity_table_json_and_errors(tmp_path):
    from canocaps.model import CanonicalCapsules, CapsulesConfig

    weights = tmp_path / "tiny.pt"
    CanonicalCapsules(CapsulesConfig(num_points=128, num_capsules=4, feat_dim=16, decoder_bottleneck=32)).save(weights)
    out = tmp_path / "s.json"
    proc = run_sensitivity("--weights", str(weights), "--per-class", "1", "--shapes", "6", "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "independent sample" in proc.stdout and "encoder" in proc.stdout
    res = json.loads(out.read_text())
    rows = {r["input"]: r for r in res["inputs"]}
    # weighted means over points: permuting or duplicating the points changes nothing
    assert rows["permuted"]["keypoint_shift"] < 1e-5 and rows["duplicated"]["keypoint_shift"] < 1e-5
    assert rows["first half"]["keypoint_shift"] > rows["permuted"]["keypoint_shift"]
    assert res["shapes"] == 6 and res["layers"] and all(r["relative_change"] >= 0 for r in res["layers"])
    again = run_sensitivity("--weights", str(weights), "--per-class", "1", "--shapes", "6", "--json", str(out))
    assert again.returncode == 2 and again.stderr.strip().count("\n") == 0 and "exists" in again.stderr
    bad = run_sensitivity("--weights", str(tmp_path / "missing.pt"))
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0
