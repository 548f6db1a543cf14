"""The package's dependency arrows (docs/CONTRIBUTING.md) and the absence of import loops.

Every ``import`` / ``from ... import`` in every module of ``canocaps`` is read with ``ast``
(function-level and ``TYPE_CHECKING`` imports included) and resolved to a module of the
package. Two rules:

* no import cycle between modules (strongly connected components of size 1 only);
* each layer imports only the layers below it (:data:`ALLOWED`, the table that
  CONTRIBUTING.md draws).

The two checkers are also run on small synthetic graphs, so a checker that silently
accepts everything fails here too.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "canocaps"

#: layer -> the layers it may import (besides itself). A layer is the first component
#: under ``canocaps`` (``canocaps.heads.registration`` -> ``heads``). Keep in step with
#: the arrows in docs/CONTRIBUTING.md.
FOUNDATION = {"errors", "_files", "_yaml", "_guard", "_resources", "_format", "_options"}
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "_yaml": {"errors"},
    "_resources": set(),
    "_format": set(),
    "_options": set(),
    "_files": {"errors"},
    "_guard": {"errors"},
    "ops": {"errors", "_files"},
    "nn": {"errors"},
    "geometry": FOUNDATION | {"ops"},
    "io": FOUNDATION,
    "data": FOUNDATION | {"ops", "geometry", "io"},
    "train": FOUNDATION | {"ops", "geometry"},
    "model": FOUNDATION | {"ops", "geometry", "io", "nn", "data"},  # data: data.pairs only (below)
    "pretrained": FOUNDATION | {"model"},
    "heads": FOUNDATION | {"ops", "geometry", "io", "nn", "data", "model", "pretrained"},
    "recipes": FOUNDATION | {"ops", "geometry", "io", "nn", "data", "model", "train"},
    "extras": FOUNDATION | {"ops", "geometry", "nn", "train"},
    "viz": FOUNDATION | {"ops", "geometry", "io", "data", "model", "pretrained", "heads"},
}
#: layers allowed to import anything of the package (the entry points)
TOP = {"", "__main__", "cli", "commands"}
#: finer rules: (importer layer, imported module prefix) pairs allowed inside an allowed layer
ONLY: dict[tuple[str, str], tuple[str, ...]] = {
    ("model", "data"): ("canocaps.data.pairs",),
}


def module_names(package: Path = PACKAGE) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` file of the package."""
    out = {}
    for p in package.rglob("*.py"):
        parts = list(p.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


def imports_of(name: str, source: str, modules: set[str], is_package: bool) -> set[str]:
    """Modules of the package that ``source`` (module ``name``) imports, anywhere in its body."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[:len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            for a in node.names:  # "from pkg import sub" imports the module pkg.sub
                targets.append(f"{mod}.{a.name}" if f"{mod}.{a.name}" in modules else mod)
        for t in targets:
            if t != "canocaps" and not t.startswith("canocaps."):
                continue
            while t not in modules and "." in t:
                t = t.rsplit(".", 1)[0]
            if t in modules and t != name:
                found.add(t)
    return found


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    mods = module_names(package)
    names = set(mods)
    return {m: imports_of(m, p.read_text(encoding="utf-8"), names, p.name == "__init__.py") for m, p in mods.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            v, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph.get(w, ())))))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
    return out


def layer_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def violations(graph: dict[str, set[str]]) -> list[str]:
    """``"importer -> imported"`` for every import against :data:`ALLOWED` / :data:`ONLY`."""
    bad = []
    for m, deps in sorted(graph.items()):
        src = layer_of(m)
        if src in TOP:
            continue
        for d in sorted(deps):
            dst = layer_of(d)
            if dst == src:
                continue
            if src not in ALLOWED or dst not in ALLOWED[src]:
                bad.append(f"{m} -> {d}")
            elif (src, dst) in ONLY and not d.startswith(ONLY[(src, dst)]):
                bad.append(f"{m} -> {d} (only {', '.join(ONLY[(src, dst)])})")
    return bad


GRAPH = import_graph()


def test_every_module_parses_and_the_graph_is_not_empty():
    assert len(GRAPH) > 50
    assert "canocaps.ops.chamfer" in GRAPH["canocaps.geometry.metrics"]  # a known edge is seen
    assert any("canocaps.train" in d or d.startswith("canocaps.train.") for d in GRAPH["canocaps.recipes.capsules"])


def test_no_import_cycles():
    assert cycles(GRAPH) == []


def test_imports_follow_the_layer_arrows():
    assert violations(GRAPH) == []


def test_every_layer_is_in_the_table():
    layers = {layer_of(m) for m in GRAPH}
    assert layers - set(ALLOWED) - TOP == set()


def test_contributing_draws_the_same_layers():
    text = (ROOT / "docs" / "CONTRIBUTING.md").read_text()
    for layer in set(ALLOWED):
        assert f"`{layer}" in text, layer


@pytest.mark.parametrize("importer,source", [
    ("canocaps.geometry.fake", "from canocaps.model import CanonicalCapsules"),
    ("canocaps.model.fake", "def f():\n    from canocaps.train import Trainer\n"),
    ("canocaps.model.fake", "import canocaps.data.shapenet"),
    ("canocaps.extras.fake", "from canocaps.model.network import CanonicalCapsules"),
    ("canocaps.heads.fake", "from canocaps.recipes.capsules import run_training"),
    ("canocaps.train.fake", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from canocaps.heads import register\n"),
    ("canocaps.ops.fake", "from ..geometry import rotations"),
])
def test_checker_catches_an_arrow_violating_import(importer, source):
    names = set(GRAPH) | {importer}
    graph = dict(GRAPH)
    graph[importer] = imports_of(importer, source, names, is_package=False)
    assert graph[importer], "the import was not resolved"
    assert any(v.startswith(importer) for v in violations(graph))


def test_checker_catches_a_cycle():
    graph = {k: set(v) for k, v in GRAPH.items()}
    graph["canocaps.ops.chamfer"].add("canocaps.geometry.metrics")  # geometry.metrics imports ops.chamfer
    assert any("canocaps.ops.chamfer" in c and "canocaps.geometry.metrics" in c for c in cycles(graph))
