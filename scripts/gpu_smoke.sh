#!/usr/bin/env bash
# GPU acceptance: a few GRPO steps plus held-out evaluations on the GPU paths users start with. Each case prints its
# step time and evaluation time; a case the machine cannot run is skipped with a note, and the script exits 0 unless
# a case that could run failed. Fits in 10 minutes on one large GPU.
#   bash scripts/gpu_smoke.sh [RECIPE]      (default: recipes/quickstart.yaml; 2 GPUs: recipes/quickstart_2proc.yaml)
# Cases: 1 GPU with HF generation; 1 GPU with vLLM colocate (when vllm imports); 2-GPU DDP (when 2 GPUs exist).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
recipe=${1:-recipes/quickstart.yaml}
CASE_TIMEOUT=${CASE_TIMEOUT:-240}
gpus=$("$PY" -c "import torch; print(torch.cuda.device_count() if torch.cuda.is_available() else 0)" 2>/dev/null || echo 0)
if [ "$gpus" = "0" ]; then
  echo "gpu_smoke: no CUDA GPU visible; nothing to do."
  exit 0
fi
"$PY" -c "import torch; print('gpu_smoke:', torch.cuda.device_count(), 'x', torch.cuda.get_device_name(0), '| torch', torch.__version__)"
bf16=$("$PY" -c "import torch; print('true' if torch.cuda.is_bf16_supported() else 'false')")
common=(--set training.max_steps=3 --set training.bf16="$bf16" --set training.save_strategy=no
        --set eval.num_prompts=16 --set eval.every_steps=2)
failed=0

run_case() {  # name, then the command without its --set output_dir
  local name=$1; shift
  local out; out=$(mktemp -d)
  if timeout "$CASE_TIMEOUT" "$@" "${common[@]}" --set output_dir="$out" > "$out/log.txt" 2>&1; then
    tail -n 1 "$out/log.txt" | "$PY" -c "
import json, sys
s = json.loads(sys.stdin.read())
assert s['steps'] == 3, s
print(f\"gpu_smoke: {'$name':22s} ok  {s['mean_step_time_s']:.2f} s/step  eval {s['mean_eval_wall_s']:.1f} s  \"
      f\"({s['evaluations']} evaluations, world size {s['world_size']})\")" || { echo "gpu_smoke: $name: unexpected summary ($out/log.txt)"; failed=1; }
  else
    echo "gpu_smoke: $name FAILED (log: $out/log.txt)"; tail -n 20 "$out/log.txt"; failed=1
  fi
}

run_case "1 GPU, HF generate" "$PY" -m rlsurrogate train "$recipe"
if "$PY" -c "import vllm" 2>/dev/null; then
  run_case "1 GPU, vLLM colocate" "$PY" -m rlsurrogate train "$recipe" \
    --set generation.use_vllm=true --set generation.vllm_mode=colocate --set training.vllm_gpu_memory_utilization=0.3
else
  echo "gpu_smoke: 1 GPU, vLLM colocate  skipped: vllm is not importable (pip install -e \".[vllm]\")"
fi
if [ "$gpus" -ge 2 ]; then
  run_case "2 GPUs, DDP" "$PY" -m accelerate.commands.launch --multi_gpu --num_processes 2 \
    -m rlsurrogate train recipes/quickstart_2proc.yaml
else
  echo "gpu_smoke: 2 GPUs, DDP           skipped: only $gpus GPU visible"
fi
exit $failed
