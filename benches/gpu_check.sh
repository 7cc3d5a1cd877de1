#!/usr/bin/env bash
# The GPU session's one script (issue 15): build xadt with its CUDA kernels on the GPU machine,
# run the CUDA-vs-CPU kernel tests, then `xadt bench --device cuda`, and report exactly what ran.
# Usage, from the repository root: OUT=/some/folder [VENV=.venv] benches/gpu_check.sh
# Results: $OUT/build.log, $OUT/pytest-cuda.txt, $OUT/bench-cuda.json, $OUT/bench-cuda.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:?set OUT to the folder for the results}
mkdir -p "$OUT"

echo "== machine"
nvidia-smi || echo "nvidia-smi failed"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv || true
nvcc --version | tail -2 || echo "no nvcc on PATH"
uptime

echo "== build (XADT_CUDA=ON: fail rather than skip the CUDA kernels)"
# Needs a virtual environment with a CUDA build of torch: the GPU machine may have no network.
VENV=${VENV:-.venv}
# shellcheck disable=SC1091
. "$VENV/bin/activate"
python -c 'import sys, torch; sys.exit(torch.version.cuda is None)' ||
    { echo "torch in $VENV is a CPU build; install a CUDA build of torch there first"; exit 1; }
start=$(date +%s)
XADT_CUDA=ON python -m pip install -v -e ".[test]" >"$OUT/build.log" 2>&1 ||
    { tail -40 "$OUT/build.log"; exit 1; }
echo "build took $(($(date +%s) - start)) s; CUDA objects compiled:"
grep -E '\.cu\.o|cuda_kernels' "$OUT/build.log" | head -5 || true
python - <<'PY'
import torch
from xadt import _kernels
print("torch", torch.__version__, "CUDA", torch.version.cuda, "GPU available", torch.cuda.is_available())
if torch.cuda.is_available():
    print("GPU", torch.cuda.get_device_name(), "capability", torch.cuda.get_device_capability())
print("xadt cuda_compiled", _kernels.cuda_compiled)
PY

echo "== CUDA kernels against the CPU kernels"
status=0
pytest tests/test_kernels_cuda.py -p no:cacheprovider -rs 2>&1 | tee "$OUT/pytest-cuda.txt" ||
    status=1

echo "== xadt bench --device cuda"
COLUMNS=230 xadt bench --device cuda --json "$OUT/bench-cuda.json" --overwrite 2>&1 |
    tee "$OUT/bench-cuda.txt" || status=1
exit $status
