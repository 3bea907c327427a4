#!/bin/sh
# eval's throughput next to the batched encode rate of the same model and
# resolution, measured in one run (issue 18, target 5: eval's images/s
# should be >= 0.9x of `clip-surgery bench --model M --batch 4`'s).
#
# eval images/s: the same eval at --limit N and --limit 2, the difference of
# the wall times over N - 2 images (model load, class embedding and the
# report cancel out); N - 2 a multiple of 4 (eval's batch). Encode rate:
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
[ $(( (N - 2) % 4 )) -eq 0 ] && [ "$N" -gt 2 ] || { echo "eval_rate.sh: N - 2 must be a positive multiple of 4" >&2; exit 2; }
mkdir -p "$WORK"
export XDG_CACHE_HOME="$WORK/cache" OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}

median() { sort -n | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
now() { date +%s.%N; }

# wall seconds of one eval run: task, --limit
eval_time() {
    extra=""
    [ "$1" = multilabel ] && extra="--labels $DATA/labels.json"
    t0=$(now)
    "$BIN" eval --model "$MODEL" --vocab "$VOCAB" --templates none --class-list "$here/data/classes/voc21.txt" \
        --images "$DATA/images" --masks "$DATA/masks" --image-suffix _image --mask-suffix _mask \
        --task "$1" --res "$RES" --limit "$2" --quiet $extra --report "$WORK/report.json" >/dev/null
    echo "$(now) $t0" | awk '{print $1 - $2}'
}

# ms per image of bench --batch 4, image surgery
encode_ms() {
    "$BIN" bench --model "$MODEL" --res "$RES" --batch 4 --runs 5 --quiet --json "$WORK/bench.json" >/dev/null
    tr '{' '\n' <"$WORK/bench.json" | grep -F '"image surgery /img"' | grep -o '"median_ms": *[0-9.]*' | head -1 |
        grep -o '[0-9.]*$'
}

echo "# $(date -u +%FT%TZ) $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# $MODEL @$RES, eval over $DATA (--limit $N minus --limit 2), $RUNS runs each, medians; OMP_NUM_THREADS=$OMP_NUM_THREADS"
printf '%-10s %12s %12s %12s %8s\n' task eval_ms/img eval_img/s encode_img/s ratio
for task in "$@"; do
    : >"$WORK/eval.txt"
    : >"$WORK/encode.txt"
    i=0
    while [ $i -lt "$RUNS" ]; do
        encode_ms >>"$WORK/encode.txt"
        long=$(eval_time "$task" "$N")
        short=$(eval_time "$task" 2)
        echo "$long $short $N" | awk '{print 1000 * ($1 - $2) / ($3 - 2)}' >>"$WORK/eval.txt"
        i=$((i + 1))
    done
    ev=$(median <"$WORK/eval.txt")
    enc=$(median <"$WORK/encode.txt")
    echo "$task $ev $enc" | awk '{printf "%-10s %12.1f %12.2f %12.2f %8.2f\n", $1, $2, 1000 / $2, 1000 / $3, $3 / $2}'
done
