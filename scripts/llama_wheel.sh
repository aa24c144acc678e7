#!/usr/bin/env bash
# Print the path of a llama-cpp-python wheel built for a portable CPU baseline, building it once.
#
# pip's own wheel cache is keyed by the source archive, not by CMAKE_ARGS, so a wheel that an
# earlier `pip install` compiled with -march=native (ggml's default) would be reused silently;
# on CPUs with AMX that build crashes in llama_decode. So the wheel is built with pip's cache
# off, into a directory of ours keyed by version, Python and flags, and installed from there.
#
#   AGENTOPS_LLAMA_CMAKE_ARGS  replaces the portable flags (e.g. "-DGGML_NATIVE=ON": faster on
#                              this CPU, but the wheel may crash or be unusable on any other)
#   AGENTOPS_WHEEL_DIR         where built wheels are kept (default ~/.cache/agentops/wheels)
set -euo pipefail
python="$1"
version="$2"

case "$(uname -m)" in
  x86_64 | amd64)
    # x86-64-v3 (Haswell, Zen 1 and newer): AVX2, FMA, F16C, BMI2. No AVX-512, no AMX.
    portable="-DGGML_NATIVE=OFF -DGGML_SSE42=ON -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_AVX512=OFF -DGGML_AVX_VNNI=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
    if ! grep -qw avx2 /proc/cpuinfo 2>/dev/null || ! grep -qw fma /proc/cpuinfo 2>/dev/null; then
      # Older CPUs get the plain x86-64 baseline (slower, still correct).
      portable="-DGGML_NATIVE=OFF -DGGML_SSE42=OFF -DGGML_AVX=OFF -DGGML_AVX2=OFF -DGGML_FMA=OFF -DGGML_F16C=OFF -DGGML_BMI2=OFF -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
    fi
    ;;
  *) portable="-DGGML_NATIVE=OFF" ;;
esac
cmake_args="${AGENTOPS_LLAMA_CMAKE_ARGS:-$portable}"
tag="$("$python" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')"
key="$(printf '%s\n%s\n%s\n' "$version" "$tag" "$cmake_args" | sha256sum | cut -c1-12)"
dir="${AGENTOPS_WHEEL_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/agentops/wheels}/llama-cpp-python-$version-$tag-$key"

wheel="$(ls "$dir"/llama_cpp_python-*.whl 2>/dev/null | head -n 1 || true)"
if [ -z "$wheel" ]; then
  echo "Building llama-cpp-python $version for a portable CPU baseline (about 5 min on 2 cores)..." >&2
  echo "  CMAKE_ARGS=$cmake_args" >&2
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  CMAKE_ARGS="$cmake_args" FORCE_CMAKE=1 "$python" -m pip wheel --quiet --no-cache-dir --no-deps \
    --wheel-dir "$tmp" "llama-cpp-python==$version" >&2
  mkdir -p "$dir"
  printf '%s\n' "$cmake_args" >"$dir/CMAKE_ARGS"
  mv "$tmp"/llama_cpp_python-*.whl "$dir/"
  wheel="$(ls "$dir"/llama_cpp_python-*.whl | head -n 1)"
fi
printf '%s\n' "$wheel"
