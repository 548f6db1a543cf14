"""tools/study_registration_budget.py: the schedule replay, one real pair end to end, one-line errors."""
from __future__ import annotations

import json

import pytest

from tool_scripts import import_tool, run_tool


@pytest.fixture(scope="module")
def budget():
    return import_tool("study_registration_budget")


def _entry(fit, core, score, fcore, fscore, ok, short_s=0.01, full_s=0.1):
    return dict(fit=fit, core=core, score=score, fcore=fcore, fscore=fscore, ok=ok, short_s=short_s, full_s=full_s)


def test_replay_ranks_as_register_and_counts_the_calls_it_makes(budget):
    v = (512, 10)
    rec = {  # screened r0, r1; shifted s0, s1
        "r0": {v: _entry(0.5, 0.30, 0.4, 0.30, 0.4, False)},
        "r1": {v: _entry(0.6, 0.20, 0.5, 0.20, 0.5, False)},
        "s0": {v: _entry(0.4, 0.10, 0.3, 0.05, 0.3, True)},
        "s1": {v: _entry(0.4, 0.15, 0.3, 0.15, 0.3, False)},
    }
    pair = {"R": ["r0", "r1"], "S": ["s0", "s1"], "rec": rec, "vote_s": 0.05}
    # low overlap (best short fitness 0.6 < 0.85): the shifted ones run, ranked by core distance
    ok, seconds = budget._replay(pair, v, a=2, b=2, k=1)
    assert ok and seconds == pytest.approx(4 * 0.01 + 0.1 + 0.05)
    ok, seconds = budget._replay(pair, v, a=2, b=1, k=2)  # s0 and r1 refined, s0 fits best
    assert ok and seconds == pytest.approx(3 * 0.01 + 2 * 0.1 + 0.05)
    ok, _ = budget._replay(pair, v, a=2, b=0, k=2)  # without the shifted ones nothing is right
    assert not ok
    # full overlap: no vote, ranked by the robust score (higher is better)
    for name, fit in (("r0", 0.95), ("r1", 0.9)):
        rec[name][v]["fit"] = fit
    rec["r0"][v].update(score=0.9, fscore=0.9, ok=True)
    ok, seconds = budget._replay(pair, v, a=2, b=2, k=1)
    assert ok and seconds == pytest.approx(2 * 0.01 + 0.1)



def test_rounds_replay_stops_after_round_one_only_when_its_best_fits_tightly(budget):
    whole, part = (2048, 10), (512, 10)

    def entry(fit, core, fcore, ok, short_s):
        e = _entry(fit, core, 0.5, fcore, 0.5, ok, short_s=short_s, full_s=0.1)
        return {whole: e, part: dict(e, short_s=short_s / 4)}

    rec = {  # screened r0..r2, shifted s0..s2; only r2 (third screened) ends up right
        "r0": entry(0.5, 0.30, 0.30, False, 0.01), "r1": entry(0.6, 0.25, 0.25, False, 0.01),
        "r2": entry(0.5, 0.20, 0.05, True, 0.01),
        "s0": entry(0.4, 0.22, 0.22, False, 0.01), "s1": entry(0.4, 0.26, 0.26, False, 0.01),
        "s2": entry(0.4, 0.28, 0.28, False, 0.01),
    }
    pair = {"R": ["r0", "r1", "r2"], "S": ["s0", "s1", "s2"], "rec": rec, "vote_s": 0.05, "cutoff": 0.85}
    # round one: r0, r1, s0, s1 on 512 points; s0 refined (core 0.22 >= 0.2): round two adds r2, s2
    ok, seconds = budget._replay_rounds(pair, first=2, b=2, accept=0.2, top=3, k2=2)
    assert ok
    assert seconds == pytest.approx(4 * 0.0025 + 0.05 + 0.1 + 2 * 0.0025 + 0.1)
    # a looser acceptance ends after round one, with s0
    ok, seconds = budget._replay_rounds(pair, first=2, b=2, accept=0.25, top=3, k2=2)
    assert not ok and seconds == pytest.approx(4 * 0.0025 + 0.05 + 0.1)
    # the cutoff is register's for the pair: below 0.6, r1's fit says whole, so one round on all points
    ok, seconds = budget._replay_rounds(dict(pair, cutoff=0.55), first=2, b=2, accept=0.2, top=3, k2=2,
                                        screen_top=3, refine_top=1)
    assert not ok and seconds == pytest.approx(2 * 0.0025 + 3 * 0.01 + 0.1)
    # the decision says whole (r0 fits 0.95 on 512 points) but all points say part: on to the rounds
    rec["r0"][part]["fit"] = 0.95
    ok, seconds = budget._replay_rounds(pair, first=2, b=2, accept=0.2, top=3, k2=2, screen_top=3, refine_top=1)
    assert ok and seconds == pytest.approx(2 * 0.0025 + 3 * 0.01 + 0.05 + 2 * 0.0025 + 0.1)  # r2 refined
    # whole views (r0 fits 0.95 either way): one round on all points after the decision, no vote
    rec["r0"][whole]["fit"] = 0.95
    ok, seconds = budget._replay_rounds(pair, first=2, b=2, accept=0.2, top=3, k2=2, screen_top=3, refine_top=1)
    assert seconds == pytest.approx(2 * 0.0025 + 3 * 0.01 + 0.1)
    # register's pinned hypotheses (SCREEN_ALWAYS) join the single round wherever they rank
    ok, seconds = budget._replay_rounds(dict(pair, P=["r2"]), first=2, b=2, accept=0.2, top=3, k2=2, screen_top=2,
                                        refine_top=1)
    assert seconds == pytest.approx(2 * 0.0025 + 3 * 0.01 + 0.1)
    ok, seconds = budget._replay_rounds(pair, first=2, b=2, accept=0.2, top=3, k2=2, screen_top=2, refine_top=1)
    assert seconds == pytest.approx(2 * 0.0025 + 2 * 0.01 + 0.1)

def run_study(*args):
    return run_tool("study_registration_budget.py", *args)


def test_budget_study_on_one_real_pair_table_json_and_errors(tmp_path):
    out = tmp_path / "budget.json"
    proc = run_study("--split", "test", "--limit", "1", "--json", str(out))  # test: bundled (the study runs on val)
    assert proc.returncode == 0, proc.stderr
    assert "register today" in proc.stdout and "one round" in proc.stdout
    res = json.loads(out.read_text())["results"]["partial"]
    assert res["rounds_default"]["default"] and 0.0 <= res["rounds_default"]["recall"] <= 1.0
    assert [r["model_ms"] for r in res["rounds_frontier"]] == sorted(r["model_ms"] for r in res["rounds_frontier"])
    assert res["pairs"] == 1 and res["current"]["current"]
    assert res["current"]["variant"] == [2048, 10] and res["current"]["model_ms"] > 0
    times = [r["model_ms"] for r in res["frontier"]]
    assert times == sorted(times)
    again = run_study("--split", "test", "--limit", "1", "--json", str(out))
    assert again.returncode == 2 and again.stderr.strip().count("\n") == 0 and "exists" in again.stderr
    bad = run_study("--weights", str(tmp_path / "missing.pt"))
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0
