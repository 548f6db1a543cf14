"""tools/study_overlap_share.py: the conditions flag, one real pair end to end, one-line errors."""
from __future__ import annotations

import json

import pytest

from canocaps.errors import CanocapsInputError
from tool_scripts import import_tool, run_tool


@pytest.fixture(scope="module")
def study():
    return import_tool("study_overlap_share")


def test_conditions_flag_names_seeds_per_condition(study):
    assert study._parse_conditions("clean:0,noisy:0,1,2,partial") == [("clean", [0]), ("noisy", [0, 1, 2]),
                                                                      ("partial", [0])]
    for bad in ("", "blurry:0", "noisy:x", "3,noisy"):
        with pytest.raises(CanocapsInputError):
            study._parse_conditions(bad)


def test_screen_always_flag_defaults_to_registers_pinned_hypotheses(study):
    from canocaps.heads.registration import SCREEN_ALWAYS

    assert study._parse_screen_always(None) == tuple(SCREEN_ALWAYS) != ()
    assert study._parse_screen_always("none") == ()
    assert study._parse_screen_always("canonical, pca_flip_x") == ("canonical", "pca_flip_x")


def run_study(*args):
    return run_tool("study_overlap_share.py", *args)


def test_overlap_study_on_real_pairs_table_json_and_errors(tmp_path):
    out = tmp_path / "share.json"
    # the test split only because it is bundled (the study itself runs on val)
    proc = run_study("--split", "test", "--limit", "1", "--conditions", "noisy:0,1,partial:0", "--shares", "abs,0.92",
                    "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "attainable" in proc.stdout and "register today" in proc.stdout and "until session 12" in proc.stdout
    res = json.loads(out.read_text())["results"]
    assert res["noisy"]["pairs"] == 2 and res["noisy"]["seeds"] == [0, 1] and res["partial"]["pairs"] == 1
    # whole views reach about the attainable fitness under the true motion, outliers and all
    assert 0.9 <= res["noisy"]["ratio_p5_p50_p95"][1] <= 1.1
    for cond in ("noisy", "partial"):
        assert set(res[cond]["recall"]) == {"abs", "0.92"}
        for r in res[cond]["recall"].values():
            assert 0 <= r["right"] <= res[cond]["pairs"] and r["median_ms"] > 0
    again = run_study("--split", "test", "--limit", "1", "--shares", "", "--json", str(out))
    assert again.returncode == 2 and again.stderr.strip().count("\n") == 0 and "exists" in again.stderr
    for bad in (("--conditions", "blurry"), ("--shares", "abs,lots")):
        proc = run_study("--split", "test", "--limit", "1", *bad)
        assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0, proc.stderr
