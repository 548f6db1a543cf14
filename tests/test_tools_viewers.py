"""The tools/ viewers write pictures headless and fail with one line on bad input."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    from canocaps.model import CanonicalCapsules, CapsulesConfig

    path = tmp_path_factory.mktemp("w") / "tiny.pt"
    CanonicalCapsules(CapsulesConfig(num_points=128, num_capsules=4, feat_dim=16, decoder_bottleneck=32)).save(path)
    return path


def run_tool(*args):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("DISPLAY", None)
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, timeout=120, cwd=REPO)


def test_view_stability_png_and_missing_weights(tiny_weights, tmp_path):
    import matplotlib.image as mpimg

    out = tmp_path / "s.png"
    proc = run_tool("tools/view_stability.py", "--weights", str(tiny_weights), "--copies", "3", "--png", str(out))
    assert proc.returncode == 0, proc.stderr
    assert mpimg.imread(str(out))[..., :3].std() > 0.02
    bad = run_tool("tools/view_capsules.py", "--weights", str(tmp_path / "missing.pt"))
    assert bad.returncode == 2
    assert bad.stderr.strip().count("\n") == 0 and "not found" in bad.stderr
