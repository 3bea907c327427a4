#!/bin/sh
# Whole-process cost of one `explain` run (process start to exit: load, decode,
# encode, maps, PNGs) with one cached class, next to the bare image encode time
# of the same model file (`clip-surgery bench --model`), cold and warm page
# cache, with the peak RSS (/usr/bin/time -v). Issue 18, target 4: a whole run
# should cost its encode + ~40 ms.
#
# "Cold" evicts only the weight file's pages (dd iflag=nocache, i.e.
# posix_fadvise DONTNEED), so it needs no root and leaves the rest of the
# machine's cache alone; the binary and libraries stay warm.
#
# usage: bench/whole_run.sh [DTYPE...]     (default: f32 f16 bf16; any `convert --dtype`,
#        e.g. PRECISION=bf16 bench/whole_run.sh bf16 bf16-packed)
# env:   BIN (build/clip-surgery), ARCH (ViT-B/16), RES (224), RUNS (5),
#        WORK (/tmp/cs-whole-run), IMAGE, VOCAB, PRECISION (fp32)
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BIN:-$here/build/clip-surgery}
ARCH=${ARCH:-ViT-B/16}
RES=${RES:-224}
RUNS=${RUNS:-5}
WORK=${WORK:-/tmp/cs-whole-run}
SHARED=${CLIP_SURGERY_SHARED:-$here/../shared}
IMAGE=${IMAGE:-$SHARED/images/rocket.jpg}
VOCAB=${VOCAB:-$SHARED/clip/bpe_simple_vocab_16e6.txt.gz}
PRECISION=${PRECISION:-fp32}
[ $# -gt 0 ] || set -- f32 f16 bf16
for f in "$BIN" "$IMAGE" "$VOCAB" /usr/bin/time; do
    [ -e "$f" ] || { echo "whole_run.sh: $f not found" >&2; exit 2; }
done
mkdir -p "$WORK"
export XDG_CACHE_HOME="$WORK/cache" OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(nproc)}
tag=$(echo "$ARCH" | tr '/@' '--')

# median of the numbers on stdin
median() { sort -n | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

# one timed explain run; prints "seconds maxrss_MB major_faults"
run_once() {
    /usr/bin/time -v "$BIN" explain --model "$1" --image "$IMAGE" --res "$RES" --classes rocket \
        --vocab "$VOCAB" --precision "$PRECISION" --quiet -o "$WORK/out" 2>"$WORK/time.txt" >/dev/null
    awk -F': ' '/Elapsed \(wall clock\)/ {n = split($2, t, ":"); s = t[n] + 60 * t[n - 1] + (n > 2 ? 3600 * t[1] : 0)}
                /Maximum resident/ {rss = $2 / 1024}
                /Major \(requiring I\/O\)/ {maj = $2}
                END {printf "%.3f %.0f %d\n", s, rss, maj}' "$WORK/time.txt"
}

echo "# $(date -u +%FT%TZ) $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# flags: $(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -E '^(avx2|fma|f16c|avx512f|avx512_bf16|avx512_vnni|amx_bf16|amx_int8)$' | tr '\n' ' ')"
echo "# $ARCH @$RES, --precision $PRECISION, $RUNS runs each, medians; OMP_NUM_THREADS=$OMP_NUM_THREADS"
printf '%-6s %8s %8s %10s %9s %9s %9s %9s\n' dtype file_MB load_ms encode_ms cold_ms cold_RSS warm_ms warm_RSS
for dtype in "$@"; do
    model="$WORK/$tag-$dtype.safetensors"
    [ -f "$model" ] || "$BIN" convert "synthetic:$ARCH" --dtype "$dtype" -o "$model" --quiet
    mb=$(( $(stat -c %s "$model") / 1048576 ))
    "$BIN" bench --model "$model" --res "$RES" --runs "$RUNS" --precision "$PRECISION" \
        --json "$WORK/bench.json" --quiet >/dev/null
    enc=$(tr '{' '\n' <"$WORK/bench.json" | grep -F '"image surgery"' | grep -o '"median_ms": *[0-9.]*' | head -1 | grep -o '[0-9.]*$')
    load=$(grep -o '"load_ms": *[0-9.]*' "$WORK/bench.json" | grep -o '[0-9.]*$')
    run_once "$model" >/dev/null # fills the class cache (the text tower runs once)
    : >"$WORK/cold.txt"
    : >"$WORK/warm.txt"
    i=0
    while [ $i -lt "$RUNS" ]; do
        dd if="$model" iflag=nocache count=0 status=none
        run_once "$model" >>"$WORK/cold.txt"
        run_once "$model" >>"$WORK/warm.txt"
        i=$((i + 1))
    done
    printf '%-6s %8d %8.1f %10.1f %9.0f %9.0f %9.0f %9.0f\n' "$dtype" "$mb" "$load" "$enc" \
        "$(cut -d' ' -f1 "$WORK/cold.txt" | median | awk '{print $1 * 1000}')" \
        "$(cut -d' ' -f2 "$WORK/cold.txt" | median)" \
        "$(cut -d' ' -f1 "$WORK/warm.txt" | median | awk '{print $1 * 1000}')" \
        "$(cut -d' ' -f2 "$WORK/warm.txt" | median)"
done
