#!/usr/bin/env bash
# The GPU session's one script (issue 15): build xadt with its CUDA kernels on the GPU machine,
# run the CUDA-vs-CPU tests (kernels, then the backbone's GPU path), then `xadt bench --device
# cuda`, then the half-precision check, then gaussian end to end at 1, 8 and 64 scans per call
# (float32, and bfloat16 + channels_last), and report exactly what ran. GPU time is scarce, so
# the steps run in that order and each one's figures are written as soon as it ends.
# Usage, from the repository root: OUT=/some/folder [VENV=.venv] benches/gpu_check.sh
# Results: $OUT/build.log, $OUT/pytest-cuda.txt, $OUT/bench-cuda.{json,txt},
# $OUT/precision-{bfloat16,float16}.{json,txt}, $OUT/gaussian-{fp32,bf16}-N.{json,txt}.
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
pytest tests/test_kernels_cuda.py tests/test_backbone_execution_cuda.py -p no:cacheprovider -rs \
    2>&1 | tee "$OUT/pytest-cuda.txt" || status=1

echo "== xadt bench --device cuda"
COLUMNS=230 xadt bench --device cuda --json "$OUT/bench-cuda.json" --overwrite 2>&1 |
    tee "$OUT/bench-cuda.txt" || status=1

echo "== half precision: gaussian's scores and AUROC against float32 (8 normal + 8 threat parcels)"
for precision in bfloat16 float16; do
    COLUMNS=230 xadt bench --device cuda --precision "$precision" --scans 8 --set channels_last=true \
        --json "$OUT/precision-$precision.json" --overwrite 2>&1 | tee "$OUT/precision-$precision.txt" ||
        status=1
done

echo "== gaussian end to end: 1, 8 and 64 full-size dual-view parcels per call"
for scans in 1 8 64; do
    COLUMNS=230 xadt bench --device cuda --plugin gaussian --scans "$scans" --set batch_size=256 \
        --json "$OUT/gaussian-fp32-$scans.json" --overwrite 2>&1 | tee "$OUT/gaussian-fp32-$scans.txt" ||
        status=1
    COLUMNS=230 xadt bench --device cuda --plugin gaussian --scans "$scans" --set batch_size=256 \
        --set precision=bfloat16 --set channels_last=true \
        --json "$OUT/gaussian-bf16-$scans.json" --overwrite 2>&1 | tee "$OUT/gaussian-bf16-$scans.txt" ||
        status=1
done
exit $status
