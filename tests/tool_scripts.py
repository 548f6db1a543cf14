"""Scripts of ``tools/`` in tests: imported as modules (to call their functions) or run as scripts."""
from __future__ import annotations

import importlib
import os
import subprocess
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


def run_tool(script: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``tools/SCRIPT`` as a script from the repository root, one thread, no display; output captured."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("DISPLAY", None)
    return subprocess.run([sys.executable, str(TOOLS / script), *args], capture_output=True, text=True, env=env,
                          timeout=timeout, cwd=TOOLS.parent)
