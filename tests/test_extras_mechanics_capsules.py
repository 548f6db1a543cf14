"""Neural Mechanics on the Canonical Capsules network (tools/mechanics_capsules_encoder.py)."""
from __future__ import annotations

import json

import torch

from canocaps.extras.mechanics.symmetry import detect_in_submodules
from tool_scripts import import_tool


def _tool():
    return import_tool("mechanics_capsules_encoder")


def test_detect_in_submodules_prefixes_names():
    net = torch.nn.Sequential()
    net.add_module("body", torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2)))
    rep = detect_in_submodules(net, {"body": torch.zeros(2, 3)})
    assert [(g.kind, g.name, g.slots) for g in rep.groups] == [("rescale", "body.0~body.2", 4)]
    assert {m.param for m in rep.groups[0].members} == {"body.0.weight", "body.0.bias", "body.2.weight"}


def test_capsules_tool_exact_identities(tmp_path, capsys):
    out = tmp_path / "caps"
    rc = _tool().main(["--out", str(out), "--steps", "3", "--num-points", "64", "--shapes", "8",
                       "--batch-size", "4", "--weight-decay", "0.01", "--no-progress"])
    assert rc == 0, capsys.readouterr().err
    data = json.loads((out / "mechanics.json").read_text())
    groups = {(g["kind"], g["name"]) for g in data["symmetries"]["groups"]}
    assert ("translation", "capsules.logits") in groups  # K capsule logits -> softmax over capsules
    assert ("translation", "encoder.stem.acn.attention") in groups  # ACN attention -> softmax
    assert any(k == "rescale" and n.startswith("canonicalizer.mlp.") for k, n in groups)
    assert data["steps"] == 3
    for name, s in data["summary"].items():
        assert s["rel_error"]["sgd_step"]["max"] < 1e-6, name
    # refuses to overwrite without --force
    assert _tool().main(["--out", str(out), "--steps", "1", "--num-points", "64", "--shapes", "8",
                         "--no-progress"]) == 2
