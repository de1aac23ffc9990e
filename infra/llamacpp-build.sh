#!/usr/bin/env bash
# Builds llama-cpp-python from its PyPI sdist (C++ compiled here, for this CPU: GGML_NATIVE picks
# AVX-512/VNNI where the CPU has them, so the cache is per machine) into a virtualenv outside the
# clone, $PEFTGRID_CACHE/llamacpp-venv, keyed by infra/llamacpp-requirements.txt like the MLflow
# venv. It also keeps the sdist's llama.cpp converter (convert_hf_to_gguf.py, its conversion/ package and gguf-py) in
# $PEFTGRID_CACHE/llamacpp-venv/convert, which bench/llamacpp-side.ts runs to write the GGUFs.
# Rebuilt only when absent or when the requirements file changes. ~130 C++ files: ~6 files/min on
# 2 cores at load ~10 (over 20 min), much slower on a busier machine (the build runs at nice 10).
set -euo pipefail
cd "$(dirname "$0")/.."
REQS=infra/llamacpp-requirements.txt
CACHE=${PEFTGRID_CACHE:-$HOME/.cache/peftgrid}
VENV=$CACHE/llamacpp-venv
KEY=$(sha256sum "$REQS" | cut -c1-16)
if [ -x "$VENV/bin/python" ] && [ -f "$VENV/convert/convert_hf_to_gguf.py" ] && [ "$(cat "$VENV/.key" 2>/dev/null)" = "$KEY" ]; then
  exit 0
fi
VERSION=$(sed -n 's/^llama-cpp-python==//p' "$REQS")
SHA=$(sed -n 's/^# sdist sha256 (checked before building): //p' "$REQS")
[ -n "$VERSION" ] && [ -n "$SHA" ] || { echo "$REQS: expected a llama-cpp-python==VERSION line and the sdist sha256 comment" >&2; exit 1; }
PY=${PEFTGRID_PYTHON:-python3}
echo "[llamacpp] building llama-cpp-python $VERSION from source into $VENV (once, 20+ min on 2 cores)" >&2
mkdir -p "$CACHE/src"
SDIST=$CACHE/src/llama_cpp_python-$VERSION.tar.gz
if [ ! -f "$SDIST" ] || [ "$(sha256sum "$SDIST" | cut -d' ' -f1)" != "$SHA" ]; then
  "$PY" -m pip download -q --no-binary :all: --no-deps -d "$CACHE/src" "llama-cpp-python==$VERSION"
fi
GOT=$(sha256sum "$SDIST" | cut -d' ' -f1)
[ "$GOT" = "$SHA" ] || { echo "$SDIST: sha256 $GOT, expected $SHA (from $REQS)" >&2; exit 1; }
rm -rf "$VENV" && "$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
# GGML_NATIVE=ON: -march=native. No BLAS: ggml's own CPU kernels, as llama.cpp ships by default.
# LLAVA_BUILD=OFF: no libmtmd (multimodal; llama_cpp imports it only for vision chat handlers),
# 51 of the build's 178 C++ files.
CMAKE_ARGS=${CMAKE_ARGS:--DGGML_NATIVE=ON -DLLAVA_BUILD=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF} \
  CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-2} \
  nice -n 10 "$VENV/bin/python" -m pip install -q "$SDIST" -r <(grep -v '^llama-cpp-python==' "$REQS")
# The converter that matches this llama.cpp: the script and the gguf-py package it imports.
TMP=$(mktemp -d "$CACHE/llamacpp-src.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
tar xzf "$SDIST" -C "$TMP" "llama_cpp_python-$VERSION/vendor/llama.cpp/convert_hf_to_gguf.py" \
  "llama_cpp_python-$VERSION/vendor/llama.cpp/gguf-py" "llama_cpp_python-$VERSION/vendor/llama.cpp/conversion"
mkdir -p "$VENV/convert"
cp -r "$TMP/llama_cpp_python-$VERSION/vendor/llama.cpp/." "$VENV/convert/"
"$VENV/bin/python" -c 'import llama_cpp; print("[llamacpp] built", llama_cpp.__version__, llama_cpp.llama_print_system_info().decode())' >&2
echo "$KEY" > "$VENV/.key"
