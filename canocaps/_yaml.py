"""YAML reading for configs: PyYAML's safe loader, with floats read the YAML 1.2 way.

PyYAML follows YAML 1.1, where ``3e-4`` (no dot) is a *string*; every config here
means a number by it (``lr: 3e-4``, ``--set train.lr=3e-4``), so such scalars are
resolved as floats. Everything else is ``yaml.safe_load``.
"""
from __future__ import annotations

import re
from typing import Any

import yaml

__all__ = ["load_yaml", "load_yaml_mapping"]


class _Loader(yaml.SafeLoader):
    pass


_FLOAT_12 = re.compile(r"""^(?:[-+]?[0-9][0-9_]*(?:\.[0-9_]*(?:[eE][-+]?[0-9]+)?|[eE][-+]?[0-9]+)
    |[-+]?\.[0-9_]+(?:[eE][-+]?[0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""", re.X)


def _resolve_floats() -> None:
    # drop 1.1's float resolver and add 1.2's; ints keep priority (their resolver comes first)
    resolvers = {k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:float"]
                 for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}
    _Loader.yaml_implicit_resolvers = resolvers
    _Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT_12, list("-+0123456789."))


_resolve_floats()


def load_yaml(text: str) -> Any:
    """Parse YAML ``text`` like ``yaml.safe_load``, but ``1e-3`` / ``3E5`` are floats."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass


def load_yaml_mapping(text: str, what: str, section: str | None = None, source: str | None = None) -> dict:
    """The one way configs are parsed: YAML ``text`` that must be a mapping.

    ``what`` names the config in messages ("model config", ...); ``source`` (a path) prefixes
    them when given. With ``section``, a top-level mapping under that key is returned when
    present (a ``model:`` section of a run config). Raises ``CanocapsInputError`` with one
    line for invalid YAML or a non-mapping.
    """
    from canocaps.errors import CanocapsInputError

    where = f"{source}: " if source else f"{what}: "
    try:
        data = load_yaml(text) or {}
    except yaml.YAMLError as exc:
        raise CanocapsInputError(f"{where}not valid YAML ({type(exc).__name__})") from None
    if not isinstance(data, dict):
        raise CanocapsInputError(f"{what}: expected a mapping at the top level")
    if section is not None and isinstance(data.get(section), dict):
        data = data[section]
    return data
