#!/usr/bin/env bash
# CLI contract of `clip-surgery tokenize` (DESIGN.md section 8): one line of
# ids per text, `--` ends the options, a text that is too long is exit 2
# naming it, --truncate, --help, a missing vocabulary names where it looked.
set -u
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
tool="${CS_TOOL:?CS_TOOL must name the clip-surgery binary}"
shared="${CLIP_SURGERY_SHARED:-$here/../../../shared}"
vocab="$shared/clip/bpe_simple_vocab_16e6.txt.gz"
if [ ! -f "$vocab" ]; then
    if [ "${CI:-}" = "true" ]; then
        echo "FAIL: $vocab not found (CI=true requires the shared data)" >&2
        exit 1
    fi
    echo "SKIP: $vocab not found; set CLIP_SURGERY_SHARED to the shared folder"
    exit 77
fi

failures=0
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

check() { # name, expected, actual
    if [ "$2" == "$3" ]; then
        echo "ok   $1"
    else
        echo "FAIL $1"
        echo "  want: $2"
        echo "  got:  $3"
        failures=$((failures + 1))
    fi
}

run() { # runs the tool; stdout to $tmp/out, stderr to $tmp/err, sets rc
    "$tool" tokenize "$@" >"$tmp/out" 2>"$tmp/err"
    rc=$?
}

run --vocab "$vocab" "a photo of a dog." ""
check "two texts, two lines" $'49406 320 1125 539 320 1929 269 49407\n49406 49407' "$(cat "$tmp/out")"
check "exit 0" 0 "$rc"

run --vocab "$vocab" -- "-x" "--truncate"
check "-- ends the options" $'49406 268 343 49407\n49406 2432 16163 24510 49407' "$(cat "$tmp/out")"

run --vocab="$vocab" --context 5 "a photo of a dog."
check "too long: exit 2" 2 "$rc"
check "too long: nothing on stdout" "" "$(cat "$tmp/out")"
grep -q "a photo of a dog." "$tmp/err"
check "too long: the message names the text" 0 $?

run --vocab "$vocab" --context 5 --truncate "a photo of a dog."
check "--truncate" "49406 320 1125 539 49407" "$(cat "$tmp/out")"

run --help
check "--help: exit 0" 0 "$rc"
grep -q "usage: clip-surgery tokenize" "$tmp/out"
check "--help: usage on stdout" 0 $?

HOME="$tmp/nohome" run "x"
check "no vocabulary (the download fails): exit 1" 1 "$rc"
grep -q "$tmp/nohome/.cache/clip/bpe_simple_vocab_16e6.txt.gz" "$tmp/err"
check "no vocabulary: says where it looked" 0 $?

run --vocab "$tmp/missing.txt.gz" "x"
check "missing --vocab file: exit 2" 2 "$rc"
grep -q "$tmp/missing.txt.gz" "$tmp/err"
check "missing --vocab file: named" 0 $?

run --vocab "$vocab" --context 0 "x"
check "bad --context: exit 2" 2 "$rc"

run --vocab "$vocab" --nope "x"
check "unknown option: exit 2" 2 "$rc"

run --vocab "$vocab" $'caf\xff'
check "invalid UTF-8: exit 2" 2 "$rc"

run --vocab "$vocab"
check "no text: exit 2" 2 "$rc"

# The Hugging Face folder gives the same ids.
if [ -d "$shared/golden/tiny-vit/hf" ]; then
    run --vocab "$shared/golden/tiny-vit/hf" "it's a café in Zürich, isn't it?"
    hf="$(cat "$tmp/out")"
    run --vocab "$vocab" "it's a café in Zürich, isn't it?"
    check "HF folder = openai file" "$(cat "$tmp/out")" "$hf"
fi

# Cleaning through the CLI (the full corpus is test_tokenizer's).
run --vocab "$vocab" "a photo of many dog." "caf&eacute; &amp; cafÃ©"
check "templates, entities, mojibake" \
    $'49406 320 1125 539 1346 1929 269 49407\n49406 15304 261 15304 49407' "$(cat "$tmp/out")"

if [ "$failures" -ne 0 ]; then
    echo "$failures check(s) failed"
    exit 1
fi
echo "all tokenize CLI checks passed"
