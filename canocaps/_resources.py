"""Where the package finds its shipped files: one lookup, independent of the working directory.

The shipped weights and the bundled data are *package data* (``canocaps/resources/``, in
the wheel through ``pyproject.toml``'s package-data), found relative to this module, so
an installed (non-editable) wheel works from any folder. Each kind can be overridden
by an environment variable, searched first:

==========  =========================  ===============================================
kind        environment variable       package folder
==========  =========================  ===============================================
weights     ``$CANOCAPS_WEIGHTS_DIR``  ``canocaps/resources/weights`` (``*.pt``)
data        ``$CANOCAPS_DATA_DIR``     ``canocaps/resources/data`` (test transforms,
                                       the demo pair in ``demo/``)
==========  =========================  ===============================================

In a checkout, ``pretrained/`` and ``data/`` hold links to these files for people.
"""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["RESOURCES", "WEIGHTS_ENV", "DATA_ENV", "package_weights_dir", "package_data_dir", "weights_dirs",
           "data_dir"]

#: the package's own resources folder (``canocaps/resources``)
RESOURCES = Path(__file__).resolve().parent / "resources"
#: environment variable naming an extra folder of weights (searched first)
WEIGHTS_ENV = "CANOCAPS_WEIGHTS_DIR"
#: environment variable naming the data folder (replaces the bundled one)
DATA_ENV = "CANOCAPS_DATA_DIR"


def package_weights_dir() -> Path:
    """``canocaps/resources/weights``: the shipped weights."""
    return RESOURCES / "weights"


def package_data_dir() -> Path:
    """``canocaps/resources/data``: the bundled data."""
    return RESOURCES / "data"


def weights_dirs() -> list[Path]:
    """Folders searched for named weights, in order: ``$CANOCAPS_WEIGHTS_DIR``, the package's."""
    env = os.environ.get(WEIGHTS_ENV)
    return ([Path(env).expanduser()] if env else []) + [package_weights_dir()]


def data_dir() -> Path:
    """``$CANOCAPS_DATA_DIR`` if set, else the package's bundled data folder."""
    env = os.environ.get(DATA_ENV)
    return Path(env).expanduser() if env else package_data_dir()
