#!/usr/bin/env bash
# Builds the gpu-worker's CUDA kernels: every SRC/*.cu becomes OUT/<name>.fatbin holding sm_80 and sm_90a
# cubins plus compute_80 PTX (the driver JIT-compiles that on any newer GPU). Maven runs this in
# generate-resources and packs OUT/*.fatbin into the jar as kernels/<name>.fatbin.
#
#   usage: build-kernels.sh SRC_DIR OUT_DIR
#
# Every kernel's compute_80 PTX is also assembled by ptxas for sm_80 and sm_90a (the JIT path's checks), so a
# kernel that does not compile fails the build on a machine without a GPU too. Incremental: a fatbin newer than
# its .cu, every *.cuh beside it and this script is kept. Without nvcc (PATH, $CUDA_HOME/bin, /usr/local/cuda/bin) it
# prints one line, leaves OUT empty and exits 0: that jar has no kernels and the CUDA backend says so.
# Environment: NVCC (an nvcc to use instead of searching; "none" builds no kernels), KERNELS_JOBS (parallel
# nvcc runs, default: cores), KERNELS_VERBOSE=1 (ptxas register and spill report for every kernel).
set -euo pipefail

if [[ $# -ne 2 ]]; then
  echo "usage: $0 SRC_DIR OUT_DIR" >&2
  exit 2
fi
src="$(cd "$1" && pwd)"
out="$2"
self="${BASH_SOURCE[0]}"

find_nvcc() {
  local candidate
  if [[ -n "${NVCC:-}" ]]; then
    [[ "$NVCC" == none ]] && return 1
    echo "$NVCC"
    return 0
  fi
  if candidate="$(command -v nvcc 2>/dev/null)"; then
    echo "$candidate"
    return 0
  fi
  for candidate in "${CUDA_HOME:+$CUDA_HOME/bin/nvcc}" /usr/local/cuda/bin/nvcc; do
    if [[ -n "$candidate" && -x "$candidate" ]]; then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}

if [[ -n "${NVCC:-}" && "$NVCC" != none && ! -x "$NVCC" ]]; then
  echo "error: NVCC=$NVCC is not an executable" >&2
  exit 1
fi
if ! nvcc="$(find_nvcc)"; then
  rm -rf "$out"
  if [[ "${NVCC:-}" == none ]]; then
    echo "CUDA kernels are not built: NVCC=none (this jar has no CUDA kernels; the cpu backend still works)"
  else
    echo "CUDA kernels are not built: no nvcc on PATH, in \$CUDA_HOME/bin or /usr/local/cuda/bin (this jar has no CUDA kernels; the cpu backend still works)"
  fi
  exit 0
fi
# ptxas sits next to the real nvcc (PATH may hold a symlink to it)
ptxas="$(dirname "$(readlink -f "$nvcc")")/ptxas"
[[ -x "$ptxas" ]] || ptxas="$(command -v ptxas)"

mkdir -p "$out"
ptx_dir="$out/../kernels-ptx"
mkdir -p "$ptx_dir"

shopt -s nullglob
sources=("$src"/*.cu)
# a fatbin whose .cu is gone would be loaded by name: remove it
for f in "$out"/*.fatbin; do
  name="$(basename "$f" .fatbin)"
  [[ -f "$src/$name.cu" ]] || rm -f "$f" "$ptx_dir/$name.ptx"
done

# the newest of the shared headers (common.cuh and any other *.cuh) and this script: a fatbin older than it
# is rebuilt, since any kernel may include any header
newest="$self"
for h in "$src"/*.cuh; do
  [[ "$h" -nt "$newest" ]] && newest="$h"
done
stale=()
for cu in "${sources[@]}"; do
  name="$(basename "$cu" .cu)"
  fatbin="$out/$name.fatbin"
  if [[ -f "$fatbin" && "$fatbin" -nt "$cu" && "$fatbin" -nt "$newest" ]]; then
    continue
  fi
  stale+=("$cu")
done

# One kernel: the fatbin (nvcc runs the front end and ptxas for each target), keeping the compute_80 PTX of
# that same run, which ptxas then assembles for sm_80 and sm_90a. Output goes to a temporary name first so an
# interrupted build never leaves a fatbin that looks up to date.
build_one() {
  local cu="$1" name tmp ptxas_flags
  name="$(basename "$cu" .cu)"
  tmp="$(mktemp -d "$out/.build-$name.XXXXXX")"
  ptxas_flags=(-warn-spills)
  [[ "${KERNELS_VERBOSE:-0}" == 1 ]] && ptxas_flags+=(-v)
  local flags=(-O3 -std=c++17 -lineinfo -I "$src" --keep --keep-dir "$tmp"
    -Xptxas "$(IFS=,; echo "${ptxas_flags[*]}")"
    -gencode arch=compute_80,code=sm_80
    -gencode arch=compute_90a,code=sm_90a
    -gencode arch=compute_80,code=compute_80)
  if ! "$nvcc" -fatbin "${flags[@]}" -o "$tmp/$name.fatbin" "$cu"; then
    rm -rf "$tmp"
    echo "error: nvcc failed on $cu" >&2
    return 1
  fi
  local ptx
  ptx="$(ls "$tmp"/*compute_80*.ptx 2>/dev/null | head -n 1 || true)"
  if [[ -z "$ptx" ]]; then
    rm -rf "$tmp"
    echo "error: nvcc kept no compute_80 PTX for $cu" >&2
    return 1
  fi
  local arch
  for arch in sm_80 sm_90a; do
    if ! "$ptxas" -arch="$arch" -O3 "${ptxas_flags[@]}" -o "$tmp/check-$arch.cubin" "$ptx"; then
      rm -rf "$tmp"
      echo "error: ptxas -arch=$arch rejected the PTX of $cu" >&2
      return 1
    fi
  done
  cp "$ptx" "$ptx_dir/$name.ptx"
  mv "$tmp/$name.fatbin" "$out/$name.fatbin"
  rm -rf "$tmp"
}

if [[ ${#stale[@]} -gt 0 ]]; then
  jobs="${KERNELS_JOBS:-$(nproc 2>/dev/null || echo 2)}"
  start_ms=$(($(date +%s%N) / 1000000))
  failed=0
  running=0
  pids=()
  for cu in "${stale[@]}"; do
    build_one "$cu" &
    pids+=($!)
    running=$((running + 1))
    if [[ $running -ge $jobs ]]; then
      wait -n || failed=1
      running=$((running - 1))
    fi
  done
  while [[ $running -gt 0 ]]; do
    wait -n || failed=1
    running=$((running - 1))
  done
  if [[ $failed -ne 0 ]]; then
    echo "error: CUDA kernels failed to build (see above)" >&2
    exit 1
  fi
  elapsed_ms=$(($(date +%s%N) / 1000000 - start_ms))
  printf 'CUDA kernels: built %d of %d in %d.%d s (%d jobs) with %s, CUDA %s\n' "${#stale[@]}" "${#sources[@]}" \
    $((elapsed_ms / 1000)) $((elapsed_ms % 1000 / 100)) "$jobs" "$nvcc" "$("$nvcc" --version | sed -n 's/.*release \([0-9.]*\).*/\1/p')"
else
  echo "CUDA kernels: ${#sources[@]} up to date"
fi

# kernels.list: which kernels this jar has, read by CudaProbe (kernelsPresent) and CudaDevice.module's errors
{
  echo "# built by $("$nvcc" --version | tail -n 1)"
  for cu in "${sources[@]}"; do
    basename "$cu" .cu
  done
} > "$out/kernels.list"
