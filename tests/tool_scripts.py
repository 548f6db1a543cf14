"""Import a script of ``tools/`` as a module, so a test can call its functions directly."""
from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

TOOLS = Path(__file__).resolve().parents[1] / "tools"


def import_tool(name: str) -> ModuleType:
    """``tools/NAME.py`` as a module, imported as when it runs as a script (``tools/`` first on the path)."""
    sys.path.insert(0, str(TOOLS))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(TOOLS))
