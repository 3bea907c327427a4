#!/bin/sh
# The README's speed tables in one sitting: the machine (CPU model, SIMD
# flags, load average), then `clip-surgery bench` for CLIP Surgery ViT-B/16
# at 224 and 512 in fp32, bf16 and int8, RN50 at 224 in fp32 and bf16, and
# SAM ViT-B (encoder and one point prompt) in fp32 and bf16. Every bench call
# measures its own GEMM peaks (sgemm 2048^3, and the bf16 kernel's under
# bf16) in the same process, so compare the "x peak" ratios within a call.
# Needs a quiet machine: another busy process moves every figure.
#
# usage: bench/speed.sh [OUT_DIR]   (default /tmp/cs-speed; one JSON per call)
# env:   BIN (build/clip-surgery), RUNS (5), SAM_RUNS (3), OMP_NUM_THREADS (all cores)
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BIN:-$here/build/clip-surgery}
RUNS=${RUNS:-5}
SAM_RUNS=${SAM_RUNS:-3}
OUT=${1:-/tmp/cs-speed}
[ -x "$BIN" ] || { echo "speed.sh: $BIN not found (build first)" >&2; exit 2; }
mkdir -p "$OUT"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(nproc)}

echo "# $(date -u +%FT%TZ) $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores, OMP_NUM_THREADS=$OMP_NUM_THREADS"
echo "# flags: $(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -E '^(avx2|fma|f16c|avx512f|avx512_bf16|avx512_vnni|amx_bf16|amx_int8)$' | tr '\n' ' ')"
echo "# load average before: $(cut -d' ' -f1-3 /proc/loadavg)"

bench() { # name, then bench arguments
    name=$1
    shift
    echo
    echo "## $name: clip-surgery bench $*"
    "$BIN" bench "$@" --json "$OUT/$name.json" --quiet
}

for p in fp32 bf16 int8; do
    bench "vitb16-$p" --arch ViT-B/16 --res 224,512 --runs "$RUNS" --precision "$p"
done
for p in fp32 bf16; do
    bench "rn50-$p" --arch RN50 --res 224 --runs "$RUNS" --precision "$p"
done
for p in fp32 bf16; do
    bench "sam-vitb-$p" --arch sam_vit_b --runs "$SAM_RUNS" --precision "$p"
done
echo
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
