#!/bin/sh
# eval's throughput next to the batched encode rate of the same model and
# resolution, measured in one run (issue 18, target 5: eval's images/s
# should be >= 0.9x of `clip-surgery bench --model M --batch 4`'s).
#
# eval images/s: eval's own rate over its loop on N images (the last
# progress line's s/image: decoding included, the model load and the class
# embedding not, so their run-to-run noise does not enter). Encode rate:
# bench --batch 4's "image surgery /img" (or "image plain /img" for
# --method clip) median, per image. Medians of RUNS runs each, interleaved.
#
# usage: bench/eval_rate.sh [TASK...]   (default: explain multilabel seg)
# env:   BIN (build/clip-surgery), MODEL (synthetic:ViT-B/16), RES (224),
#        RUNS (3), N (14), DATA (the shared voc14), WORK (/tmp/cs-eval-rate),
#        OMP_NUM_THREADS (2)
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BIN:-$here/build/clip-surgery}
MODEL=${MODEL:-synthetic:ViT-B/16}
RES=${RES:-224}
RUNS=${RUNS:-3}
N=${N:-14}
SHARED=${CLIP_SURGERY_SHARED:-$here/../shared}
DATA=${DATA:-$SHARED/data/voc14}
VOCAB=${VOCAB:-$SHARED/clip/bpe_simple_vocab_16e6.txt.gz}
WORK=${WORK:-/tmp/cs-eval-rate}
[ $# -gt 0 ] || set -- explain multilabel seg
for f in "$BIN" "$DATA/images" "$DATA/masks" "$DATA/labels.json" "$VOCAB"; do
    [ -e "$f" ] || { echo "eval_rate.sh: $f not found" >&2; exit 2; }
done
[ "$N" -ge 1 ] 2>/dev/null || { echo "eval_rate.sh: N must be a positive number of images" >&2; exit 2; }
mkdir -p "$WORK"
export XDG_CACHE_HOME="$WORK/cache" OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}

median() { sort -n | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

# ms per image of one eval run over --limit images (its last progress line)
eval_ms() {
    extra=""
    [ "$1" = multilabel ] && extra="--labels $DATA/labels.json"
    "$BIN" eval --model "$MODEL" --vocab "$VOCAB" --templates none --class-list "$here/data/classes/voc21.txt" \
        --images "$DATA/images" --masks "$DATA/masks" --image-suffix _image --mask-suffix _mask \
        --task "$1" --res "$RES" --limit "$2" $extra --report "$WORK/report.json" 2>&1 >/dev/null |
        grep -o '[0-9.]* s/image' | tail -1 | awk '{print 1000 * $1}'
}

# ms per image of bench --batch 4, image surgery
encode_ms() {
    "$BIN" bench --model "$MODEL" --res "$RES" --batch 4 --runs 5 --quiet --json "$WORK/bench.json" >/dev/null
    tr '{' '\n' <"$WORK/bench.json" | grep -F '"image surgery /img"' | grep -o '"median_ms": *[0-9.]*' | head -1 |
        grep -o '[0-9.]*$'
}

echo "# $(date -u +%FT%TZ) $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# $MODEL @$RES, eval over $DATA (--limit $N, eval's own s/image), $RUNS runs each, medians; OMP_NUM_THREADS=$OMP_NUM_THREADS"
printf '%-10s %12s %12s %12s %8s\n' task eval_ms/img eval_img/s encode_img/s ratio
for task in "$@"; do
    : >"$WORK/eval.txt"
    : >"$WORK/encode.txt"
    i=0
    while [ $i -lt "$RUNS" ]; do
        encode_ms >>"$WORK/encode.txt"
        eval_ms "$task" "$N" >>"$WORK/eval.txt"
        i=$((i + 1))
    done
    ev=$(median <"$WORK/eval.txt")
    enc=$(median <"$WORK/encode.txt")
    echo "$task $ev $enc" | awk '{printf "%-10s %12.1f %12.2f %12.2f %8.2f\n", $1, $2, 1000 / $2, 1000 / $3, $3 / $2}'
done
