#!/usr/bin/env bash
# The GPU figures ganjax lacks, in one call of under 8 minutes on one H100/H200, compiles included:
#
#   1. dcgan64_bf16_b1024  DCGAN-64 bf16 at batch 1024: images/s and MFU (XLA's FLOP count of the
#                          step over the device's peak bf16 FLOP/s, throughput.py's PEAK_FLOPS)
#   2. dcgan28_sweep       DCGAN-28 bf16 at its best batch of a short sweep, with MFU
#   3. resnet32_sweep      ResNet-32 (SNGAN, n_critic 5) bf16 at its best batch, with MFU
#   4. dcgan64_jit_all     DCGAN-64 bf16 batch 1024, sharded jit on all devices present
#   5. peers_dcgan64       compare_peers.py: section 1 against PyTorch eager and torch.compile
#   6. peers_resnet32      compare_peers.py: section 3's best batch against the same
#   7. upsample            upsample.py: transpose_phases against the transposed conv (cuDNN)
#   8. population          population.py: 8 members in one program against 8 runs (ring MLP)
#
# then prints a summary table with the targets (DCGAN-64 bf16 >= 35% MFU and >= 1.5x
# torch.compile; ResNet-32 >= 30% MFU). Every section runs under its own time budget (a timeout),
# capped by what is left of the whole budget, so one slow section cannot eat the rest; a section
# that fails or times out is reported as such and the next one runs.
#
# Usage:
#   bash benchmarks/gpu_suite.sh                  # on the GPU machine, from the repository root
#   bash benchmarks/gpu_suite.sh --dry-run        # on a CPU: tiny shapes and steps, end to end
#   options: --out DIR (default benchmarks/results/gpu; dry run: a temporary folder)
#            --budget SECONDS (the whole suite; default 470 on a GPU, 900 in a dry run)
#
# Needs, beside jax (CUDA), flax, optax, orbax-checkpoint, chex, numpy, pillow, matplotlib, tqdm,
# tifffile and torch (CUDA), which the device image has: ml_collections (every config) and
# tensorboardX (the population section trains end to end). The preflight fails in seconds, with
# the fix, if one is missing. Set GANJAX_WHEELS=DIR to install wheels carried in DIR first (see
# benchmarks/README.md, 'The GPU suite').
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 1
PY="${PYTHON:-python3}"
DRY=0
OUT=""
BUDGET=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --dry-run) DRY=1 ;;
    --out) OUT="$2"; shift ;;
    --budget) BUDGET="$2"; shift ;;
    -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
    *) echo "gpu_suite.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done
if [[ $DRY == 1 ]]; then
  OUT="${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/ganjax_gpu_suite_dry_run.XXXXXX")}"
  BUDGET="${BUDGET:-900}"
else
  OUT="${OUT:-benchmarks/results/gpu}"
  BUDGET="${BUDGET:-470}"
fi
mkdir -p "$OUT/logs" || exit 1
: > "$OUT/sections.tsv"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1

if [[ -n "${GANJAX_WHEELS:-}" ]]; then
  site="${TMPDIR:-/tmp}/ganjax_suite_site"
  echo "installing the wheels in $GANJAX_WHEELS into $site"
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target "$site" "$GANJAX_WHEELS"/*.whl ||
    { echo "pip install of $GANJAX_WHEELS failed" >&2; exit 1; }
  export PYTHONPATH="$PYTHONPATH:$site"
fi

START=$SECONDS
if [[ $DRY == 1 ]]; then
  pre_args=(--dry-run)
else
  pre_args=()
fi
# The preflight prints the device's file-safe name as its last line on stdout.
pre_out="$("$PY" benchmarks/gpu_suite.py preflight "${pre_args[@]}")"
pre_rc=$?
DEV="$(tail -n 1 <<< "$pre_out")"
if [[ $pre_rc != 0 || -z "$DEV" ]]; then
  echo "gpu_suite.sh: preflight failed (above); nothing was run." >&2
  exit 1
fi
echo "device: $DEV; results -> $OUT; budget ${BUDGET} s; preflight took $((SECONDS - START)) s"

# Sizes: the GPU run's, or the dry run's tiny ones (the same scripts and flags otherwise).
if [[ $DRY == 1 ]]; then
  TINY=(--config.model.g_features=8 --config.model.d_features=8)
  B64=8; B28S=4,8; BRES=2; STEPS=(--steps 2 --warmup 1); PSTEPS=(--steps 2 --warmup 1)
  UPS=(--size 16 --batch 2 --features 8 --generator_sizes 16 --repeats 1 --warmup 1)
  POP=(--models ring --sizes 2 --steps 20 --sharing_size 0)
  # One CPU device, but two simulated ones for the sharded section, so that it really shards.
  # (LLVM at -O0: compiles twice as fast; the dry run checks plumbing, not speed.)
  XLA_FLAGS="${XLA_FLAGS:-} --xla_backend_optimization_level=0"
  export XLA_FLAGS="$XLA_FLAGS --xla_force_host_platform_device_count=1"
  JIT_ENV=(env XLA_FLAGS="$XLA_FLAGS --xla_force_host_platform_device_count=2")
  B_JIT=8
  # torch.compile takes minutes on a CPU: the dry run checks the peers' plumbing with eager only
  # (the compile contender is the same code with --mode compile).
  PEER_SKIP=example,compile
  #        1   2   3   4   5   6   7  8  (sections below)
  BUDGETS=(90 90 120 60 120 120 45 60)
else
  TINY=()
  B64=1024; B28S=512,2048,8192; BRES=128,512; STEPS=(--steps 20 --warmup 3)
  PSTEPS=(--steps 10 --warmup 3)
  UPS=(--size 64 --batch 256 --features 64 --generator_sizes 64 --repeats 5 --warmup 1)
  POP=(--models ring --sizes 8 --steps 200 --sharing_size 0)
  JIT_ENV=()
  B_JIT=1024
  PEER_SKIP=example
  BUDGETS=(50 50 70 25 110 85 20 45)
fi

# section NAME BUDGET_S COMMAND...: runs COMMAND with the smaller of its budget and what is left
# of the suite's (less 10 s for the summary), logs to $OUT/logs/NAME.log, records the status.
section() {
  local name=$1 budget=$2; shift 2
  local left=$((BUDGET - (SECONDS - START) - 10))
  local limit=$(( budget < left ? budget : left ))
  if (( limit < 5 )); then
    echo "== $name: skipped, out of time"
    printf '%s\tskipped (out of time)\t0\t%s\n' "$name" "$budget" >> "$OUT/sections.tsv"
    return
  fi
  echo "== $name (budget ${limit} s)"
  local t0=$SECONDS
  timeout --kill-after=5 "$limit" "$@" > "$OUT/logs/$name.log" 2>&1
  local rc=$?
  local state=ok
  if (( rc == 124 || rc == 137 )); then state="timed out after ${limit} s"
  elif (( rc != 0 )); then state="failed (exit $rc)"; fi
  grep -v -i 'warning' "$OUT/logs/$name.log" | tail -n 4 | sed 's/^/   /'
  echo "   $state, $((SECONDS - t0)) s"
  printf '%s\t%s\t%s\t%s\n' "$name" "$state" "$((SECONDS - t0))" "$limit" >> "$OUT/sections.tsv"
}

T="$PY benchmarks/throughput.py"
section dcgan64_bf16_b1024 "${BUDGETS[0]}" $T --config configs/dcgan_celeba64.py --name DCGAN-64 \
  --data_shape 64,64,3 --batch "$B64" --precision bf16 "${STEPS[@]}" \
  --out "$OUT/dcgan64_bf16_b1024_$DEV.json" "${TINY[@]}"
section dcgan28_sweep "${BUDGETS[1]}" $T --config configs/dcgan_mnist.py --name DCGAN-28 \
  --data_shape 28,28,1 --batches "$B28S" --precision bf16 "${STEPS[@]}" \
  --out "$OUT/dcgan28_sweep_$DEV.json" "${TINY[@]}"
section resnet32_sweep "${BUDGETS[2]}" $T --config configs/resnet_cifar10.py --name ResNet-32 \
  --data_shape 32,32,3 --batches "$BRES" --precision bf16 "${PSTEPS[@]}" \
  --out "$OUT/resnet32_sweep_$DEV.json" "${TINY[@]}"
section dcgan64_jit_all "${BUDGETS[3]}" "${JIT_ENV[@]}" $T --config configs/dcgan_celeba64.py \
  --name DCGAN-64 --data_shape 64,64,3 --batch "$B_JIT" --precision bf16 --strategy jit \
  --no_flops "${PSTEPS[@]}" --out "$OUT/dcgan64_jit_all_$DEV.json" "${TINY[@]}"
# The peers reuse sections 1 and 3's ganjax figures (same model, batch and precision). Eager
# runs first; compare_peers.py rewrites its file after each contender, so a torch.compile cut
# off by the section's budget leaves the eager figure.
for peer in dcgan64:dcgan64_bf16_b1024:4 resnet32:resnet32_sweep:5; do
  IFS=: read -r model source idx <<< "$peer"
  if [[ -f "$OUT/${source}_$DEV.json" ]]; then
    section "peers_$model" "${BUDGETS[$idx]}" "$PY" benchmarks/compare_peers.py --model "$model" \
      --ganjax_result "$OUT/${source}_$DEV.json" --skip "$PEER_SKIP" "${PSTEPS[@]}" \
      --timeout "${BUDGETS[$idx]}" --out "$OUT/peers_${model}_$DEV.json" "${TINY[@]}"
  else
    echo "== peers_$model: skipped, no ganjax result from $source"
    printf '%s\tskipped (no %s result)\t0\t%s\n' "peers_$model" "$source" "${BUDGETS[$idx]}" \
      >> "$OUT/sections.tsv"
  fi
done
section upsample "${BUDGETS[6]}" "$PY" benchmarks/upsample.py --dtype bfloat16 \
  --modes transpose_phases,transpose "${UPS[@]}" --out "$OUT/upsample_$DEV.json"
section population "${BUDGETS[7]}" "$PY" benchmarks/population.py "${POP[@]}" \
  --out "$OUT/population_$DEV.json"

echo
"$PY" benchmarks/gpu_suite.py summary "$OUT" --device "$DEV"
echo "whole suite: $((SECONDS - START)) s of a ${BUDGET} s budget"
