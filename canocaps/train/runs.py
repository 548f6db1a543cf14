"""The one run-folder policy of every training run (the capsules recipe and the extras alike).

A *run folder* holds one training run: its settings file (the *spec*: ``run.yaml``,
``run.json``, ``spec.json`` ...) and the trainer's files (``last.pt``, ``best.pt``,
``metrics.csv``, ``train_config.yaml``). :func:`prepare_run` decides, before training,
whether the run starts afresh or resumes from ``last.pt``:

==========================  ===========================================================
request                     what happens
==========================  ===========================================================
a fresh run (``resume``     an empty / new folder: the spec is written, training starts.
False)                      A folder that holds a run: :class:`CanocapsInputError`
                            ("already holds a run"), unless ``force``: the old run's
                            files are removed and training starts afresh.
``resume=True``             continue from ``last.pt`` (none yet: start afresh, so the same
                            command can simply be repeated after an early interruption).
                            With ``compare`` keys, a spec that differs in them is refused.
``resume=None`` (auto)      same spec: continue (or reload a finished run); a different
                            spec: refused ("other settings") unless ``force`` (restart).
==========================  ===========================================================

Only the files named in :data:`RUN_FILES` (and the spec) are ever removed; nothing else in
the folder is touched. Under ``torchrun`` pass ``write=False`` on every rank but rank 0.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

from canocaps._files import atomic_write_text
from canocaps.errors import CanocapsInputError

__all__ = ["RUN_FILES", "prepare_run", "read_spec", "holds_run"]

#: files a run writes beside its spec (removed when a run is restarted with ``force``)
RUN_FILES = ("last.pt", "best.pt", "best_rollout.pt", "metrics.csv", "train_config.yaml")


def _dump(spec: Mapping[str, Any], path: Path) -> str:
    if path.suffix in (".yaml", ".yml"):
        import yaml

        return yaml.safe_dump(dict(spec), sort_keys=False)
    return json.dumps(spec, indent=1, sort_keys=True, default=str) + "\n"


def _normal(spec: Any) -> Any:
    """``spec`` as it reads back from a file (tuples -> lists, paths -> str)."""
    return json.loads(json.dumps(spec, default=str))


def read_spec(path: str | os.PathLike) -> dict[str, Any]:
    """The settings stored in a run's spec file (JSON or YAML by suffix)."""
    p = Path(path)
    try:
        if p.suffix in (".yaml", ".yml"):
            from canocaps._yaml import load_yaml

            obj = load_yaml(p.read_text())
        else:
            obj = json.loads(p.read_text())
    except ValueError as exc:
        raise CanocapsInputError(f"{p}: unreadable run settings ({type(exc).__name__})") from None
    if not isinstance(obj, dict):
        raise CanocapsInputError(f"{p}: unreadable run settings (not a mapping)")
    return obj


def holds_run(run_dir: str | os.PathLike, spec_name: str) -> bool:
    """True when ``run_dir`` holds a run: its spec file or a ``last.pt``."""
    d = Path(run_dir)
    return (d / spec_name).is_file() or (d / "last.pt").is_file()


def prepare_run(run_dir: str | os.PathLike, spec: Mapping[str, Any] | None, *, spec_name: str = "run.json",
                resume: bool | None = False, force: bool = False, compare: Sequence[str] | None = None,
                write: bool = True) -> bool:
    """Apply the run-folder policy (module table) to ``run_dir``; return whether to resume.

    Args:
        run_dir: the run folder (created when missing).
        spec: the run's settings (JSON/YAML-serialisable); written to ``run_dir/spec_name``
            (None: nothing is written or compared).
        resume: False (a fresh run), True (continue), None (auto: continue when the spec
            is the same).
        force: restart a run that exists (its files are removed first).
        compare: with ``resume=True``, the spec keys that must not change (None: any
            change is allowed, e.g. a longer schedule).
        write: False on the ranks of a distributed run that must not write files (they
            skip the "already holds a run" check: rank 0 may have written the spec already).

    Returns:
        True when the trainer should resume from ``run_dir/last.pt``.
    """
    d = Path(run_dir)
    spec_file = d / spec_name
    has_ckpt = (d / "last.pt").is_file()
    existing = holds_run(d, spec_name)
    if resume is None:  # auto: same settings continue, others are refused unless force
        if spec_file.is_file() and spec is not None and not force:
            if read_spec(spec_file) != _normal(spec):
                raise CanocapsInputError(f"{d} holds a run with other settings (use --force or another --out)")
            resume = True
        else:
            resume = False
    elif resume:
        if compare and spec is not None and spec_file.is_file():
            old, new = read_spec(spec_file), _normal(spec)
            changed = [k for k in compare if old.get(k) != new.get(k)]
            if changed:
                raise CanocapsInputError(f"{spec_file}: --resume with different {', '.join(changed)}")
    elif existing and not force and write:  # ranks that do not write follow rank 0, which checks
        raise CanocapsInputError(f"{d} already holds a run (use --resume to continue, --force to restart, "
                                 "or choose another --out)")
    restart = force and not resume and existing
    if write:
        d.mkdir(parents=True, exist_ok=True)
        if restart:
            for name in (*RUN_FILES, spec_name):
                (d / name).unlink(missing_ok=True)
        if spec is not None and not (resume and spec_file.is_file() and read_spec(spec_file) == _normal(spec)):
            atomic_write_text(spec_file, _dump(_normal(spec), spec_file), force=True)
    return bool(resume) and has_ckpt and not restart
