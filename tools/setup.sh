#!/usr/bin/env bash
# Create .venv in the repository root and install canocaps with its test extras.
# Safe to run again: it only installs what is missing. Used by the README and by CI.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

# Open3D's wheel links against libusb-1.0, absent on bare Debian images.
if ! ldconfig -p 2>/dev/null | grep -q 'libusb-1.0.so'; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "[setup] installing libusb-1.0 (needed by open3d)"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libusb-1.0-0 >/dev/null
  else
    echo "[setup] warning: libusb-1.0 missing and not root; 'import open3d' may fail" >&2
  fi
fi

[ -x .venv/bin/python ] || "$PY" -m venv .venv
. .venv/bin/activate
log=.venv/setup.log
step() {  # run quietly; show the log only when the step fails
  echo "[setup] $1"; shift
  "$@" >>"$log" 2>&1 || { cat "$log" >&2; echo "[setup] failed: $*" >&2; exit 1; }
}
: >"$log"
python -m pip install -q --upgrade pip >>"$log" 2>&1 || echo "[setup] (pip upgrade skipped)"
# torch first and pinned: a plain 'torch' requirement would pull a multi-GB CUDA build.
python -c 'import torch' 2>/dev/null || step "installing torch 2.13.0 (CPU build)" python -m pip install -q torch==2.13.0
step "installing canocaps with test extras" python -m pip install -q -e '.[test,triton]'
python -c 'import canocaps, torch, open3d; print(f"[setup] canocaps {canocaps.__version__}, torch {torch.__version__}, open3d {open3d.__version__}")'
