#!/usr/bin/env bash
# A few GRPO steps of the quickstart recipe on a GPU, when one is present; exits 0 with a note when none is.
#   bash scripts/gpu_smoke.sh [RECIPE]      (default: recipes/quickstart.yaml)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
recipe=${1:-recipes/quickstart.yaml}
if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  echo "gpu_smoke: no CUDA GPU visible; nothing to do."
  exit 0
fi
"$PY" -c "import torch; print('gpu_smoke:', torch.cuda.get_device_name(0), 'torch', torch.__version__)"
bf16=$("$PY" -c "import torch; print('true' if torch.cuda.is_bf16_supported() else 'false')")
out=$(mktemp -d)
"$PY" -m rlsurrogate train "$recipe" \
  --set training.max_steps=3 --set training.bf16="$bf16" --set training.save_strategy=no \
  --set eval.num_prompts=8 --set output_dir="$out" | tee "$out/log.txt"
tail -n 1 "$out/log.txt" | "$PY" -c "import json, sys; s = json.loads(sys.stdin.read()); assert s['steps'] == 3, s; print('gpu_smoke: ok', s['mean_step_time_s'], 's/step')"
