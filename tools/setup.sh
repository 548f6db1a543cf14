#!/usr/bin/env bash
# Create a virtualenv and install canocaps (editable) with its test extras. Used by the README and by CI.
# Safe to run again: it only installs what is missing, and it keeps a torch that is already installed.
#
# Settings (environment variables):
#   VENV=PATH                  the virtualenv to create or reuse (default: .venv in the repository root)
#   CANOCAPS_TORCH=cpu|cuda    which torch build to install when the venv has none (default: cpu).
#                              cpu: the CPU wheel from the PyTorch CPU index (a 192 MB download on
#                              Linux; a plain 'pip install torch' there pulls the CUDA build and its
#                              several GB of nvidia-* libraries); cuda: the default wheel from PyPI.
#   CANOCAPS_TORCH_INDEX=URL   the index of the cpu build (default: https://download.pytorch.org/whl/cpu);
#                              'pip' = pip's own configured index (CI's machines keep the CPU build there)
#   CANOCAPS_WITH_TRITON=1|0   install triton (about 1 GB) even without a GPU / never; by default it is
#                              installed only where CUDA is present (nvidia-smi or /dev/nvidia*).
#                              CI sets 1: its tests run the Triton kernels in the interpreter on CPU.
#   PYTHON=python3.X           the interpreter that creates the venv (default: python3)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=${VENV:-.venv}
TORCH_VERSION=2.13.0
CANOCAPS_TORCH=${CANOCAPS_TORCH:-cpu}
case "$CANOCAPS_TORCH" in
  cpu|cuda) ;;
  *) echo "[setup] error: CANOCAPS_TORCH must be cpu or cuda, got '$CANOCAPS_TORCH'" >&2; exit 2 ;;
esac
has_cuda() { command -v nvidia-smi >/dev/null 2>&1 || compgen -G '/dev/nvidia[0-9]*' >/dev/null; }
case "${CANOCAPS_WITH_TRITON:-auto}" in
  1|yes|true) WITH_TRITON=1 ;;
  0|no|false) WITH_TRITON=0 ;;
  auto) if has_cuda; then WITH_TRITON=1; else WITH_TRITON=0; fi ;;
  *) echo "[setup] error: CANOCAPS_WITH_TRITON must be 1 or 0, got '$CANOCAPS_WITH_TRITON'" >&2; exit 2 ;;
esac
t0=$(date +%s)

# Open3D's wheel links against libusb-1.0, absent on bare Debian images.
if ! ldconfig -p 2>/dev/null | grep -q 'libusb-1.0.so'; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "[setup] installing libusb-1.0 (needed by open3d)"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libusb-1.0-0 >/dev/null
  else
    echo "[setup] warning: libusb-1.0 missing and not root; 'import open3d' may fail" >&2
  fi
fi

[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
. "$VENV/bin/activate"
log="$VENV/setup.log"
step() {  # run quietly; show the log only when the step fails
  echo "[setup] $1"; shift
  "$@" >>"$log" 2>&1 || { cat "$log" >&2; echo "[setup] failed: $*" >&2; exit 1; }
}
: >"$log"
python -m pip install -q --upgrade pip >>"$log" 2>&1 || echo "[setup] (pip upgrade skipped)"

# torch first, so that canocaps' plain 'torch' requirement is already met by the build chosen here.
if python -c 'import torch' 2>/dev/null; then
  echo "[setup] keeping the installed torch $(python -c 'import torch; print(torch.__version__)')"
elif [ "$CANOCAPS_TORCH" = cpu ] && [ "${CANOCAPS_TORCH_INDEX:-}" = pip ]; then
  # pip's own configured index (a mirror or a local wheel store that holds the CPU build)
  step "installing torch $TORCH_VERSION (CPU build, pip's configured index)" python -m pip install -q "torch==$TORCH_VERSION"
elif [ "$CANOCAPS_TORCH" = cpu ]; then
  step "installing torch $TORCH_VERSION (CPU build)" python -m pip install -q "torch==$TORCH_VERSION" \
    --index-url "${CANOCAPS_TORCH_INDEX:-https://download.pytorch.org/whl/cpu}" --extra-index-url https://pypi.org/simple
else
  step "installing torch $TORCH_VERSION (CUDA build, from PyPI)" python -m pip install -q "torch==$TORCH_VERSION"
fi
step "installing canocaps with test extras" python -m pip install -q -e '.[test]'
if [ "$WITH_TRITON" = 1 ]; then
  python -c 'import triton' 2>/dev/null || step "installing triton (CUDA present or CANOCAPS_WITH_TRITON=1)" \
    python -m pip install -q 'triton>=3.0'
else
  echo "[setup] no CUDA here: triton not installed (its tests skip; CANOCAPS_WITH_TRITON=1 installs it)"
fi
python - <<'PY'
import canocaps, open3d, torch
print(f"[setup] canocaps {canocaps.__version__}, torch {torch.__version__} "
      f"(CUDA build: {torch.version.cuda or 'no'}), open3d {open3d.__version__}")
PY
if [ "$CANOCAPS_TORCH" = cpu ] && python -c 'import sys, torch; sys.exit(0 if torch.version.cuda else 1)'; then
  echo "[setup] note: this venv's torch is a CUDA build (kept as installed); for the CPU build start from a new venv" >&2
fi
echo "[setup] $VENV: $(du -sh "$VENV" 2>/dev/null | cut -f1) on disk, set up in $(( $(date +%s) - t0 )) s"
