#!/bin/bash
# Builds and runs the CPU-emulated kernel checks: bash run.sh [test_name ...] (default: all test_*.cpp).
# Environment: EMU_FAST=1 (-O2, no sanitizers), EMU_FIBERS=1 (fibers instead of threads, with EMU_FAST=1).
# Needs g++ >= 12 (C++20 <barrier>); uses ASan/UBSan to catch out-of-bounds accesses.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cuda=$here/../../../main/cuda
out=${TMPDIR:-/tmp}/ringserve-cuemu
mkdir -p "$out"
tests=("$@")
if [ ${#tests[@]} -eq 0 ]; then
  for f in "$here"/test_*.cpp; do tests+=("$(basename "$f" .cpp)"); done
fi
# EMU_FAST=1: -O2 without sanitizers (the 1024-thread sampling blocks are slow under ASan)
opt="-O1 -g -fsanitize=address,undefined -fno-sanitize-recover=undefined"
[[ "${EMU_FAST:-0}" == 1 ]] && opt="-O2"
# EMU_FIBERS=1: a block's threads as fibers on one OS thread (what the JVM tests' libraries use); needs EMU_FAST=1
[[ "${EMU_FIBERS:-0}" == 1 ]] && opt="$opt -DRS_EMU_FIBERS"
status=0
for t in "${tests[@]}"; do
  echo "== $t"
  g++ -std=c++20 $opt -Wall -Wno-unknown-pragmas \
      -Wno-unused-function -I"$here" -I"$cuda" -x c++ "$here/$t.cpp" -o "$out/$t" -pthread
  ASAN_OPTIONS=detect_leaks=0 "$out/$t" || status=1
done
exit $status
