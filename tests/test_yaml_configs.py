"""Config YAML: numbers written without a dot (``3e-4``) are numbers, not strings."""
from __future__ import annotations

from pathlib import Path

import pytest

from canocaps._yaml import load_yaml
from canocaps.errors import CanocapsInputError
from canocaps.recipes.capsules import load_run_config
from canocaps.train import TrainConfig

CPU_CONFIG = Path(__file__).resolve().parents[1] / "canocaps" / "train" / "configs" / "capsules_cpu.yaml"


@pytest.mark.parametrize("text, value", [("3e-4", 3e-4), ("1.0e-3", 1e-3), ("-2.5E+3", -2500.0), (".5", 0.5),
                                          ("1.", 1.0), ("12", 12), ("0x1f", 31), ("1e", "1e"), ("true", True)])
def test_load_yaml_scalars(text, value):
    got = load_yaml(text)
    assert got == value and type(got) is type(value)


def test_exponent_lr_in_file_and_override(tmp_path):
    assert TrainConfig.from_yaml("lr: 3e-4\nbatch_size: 4\n").lr == pytest.approx(3e-4)
    run = load_run_config(CPU_CONFIG, ["train.lr=5e-5", "train.max_steps=7"])
    assert run["train"].lr == pytest.approx(5e-5) and run["train"].max_steps == 7


def test_non_numeric_lr_is_a_clear_error():
    with pytest.raises(CanocapsInputError, match="lr"):
        TrainConfig.from_yaml("lr: fast\n")
