#!/usr/bin/env bash
# Issue 17 item 3: the attention scratch grows with the token count T, not
# T^2 (tiled attention with an online softmax). The tiny ViT at --res 512
# (1025 tokens) must not need 67 MB more than at --res 64 (17 tokens): a T^2
# float scratch per thread alone would be 2 x 1025^2 x 4 B x heads, and the
# untiled code took 168 MB at 512 against about 40 MB at 64. Peak RSS from
# /usr/bin/time; skipped under the sanitizers (their shadow memory).
set -u
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
tool="${CS_TOOL:?CS_TOOL must name the clip-surgery binary}"
shared="${CLIP_SURGERY_SHARED:-$here/../../../shared}"
model="$shared/golden/tiny-vit/model.safetensors"
if [ ! -f "$model" ]; then
    if [ "${CI:-}" = "true" ]; then echo "FAIL: $model not found (CI=true)" >&2; exit 1; fi
    echo "SKIP: $model not found; set CLIP_SURGERY_SHARED"; exit 77
fi
if [ -n "${LSAN_OPTIONS:-}" ]; then echo "SKIP: sanitizer build (shadow memory)"; exit 77; fi
if [ ! -x /usr/bin/time ]; then echo "FAIL: /usr/bin/time (Debian package time) is missing" >&2; exit 1; fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
peak_kb() { # resolution
    /usr/bin/time -f "%M" -o "$tmp/rss" "$tool" explain --model "$model" \
        --vocab "$shared/clip/bpe_simple_vocab_16e6.txt.gz" --image "$shared/images/chelsea.png" \
        --classes cat,dog --res "$1" --threads 2 --no-cache -o "$tmp/out$1" >/dev/null || return 1
    cat "$tmp/rss"
}
small=$(peak_kb 64) || { echo "FAIL: explain --res 64"; exit 1; }
large=$(peak_kb 512) || { echo "FAIL: explain --res 512"; exit 1; }
growth=$(( (large - small) / 1024 ))
echo "peak RSS: --res 64 $((small / 1024)) MB, --res 512 $((large / 1024)) MB, growth $growth MB"
if [ "$growth" -ge 67 ]; then echo "FAIL: growth $growth MB >= 67 MB"; exit 1; fi
echo "ok   attention memory linear in T"

# What cannot fit is refused with one line naming the need, exit 1 (a
# runtime failure), nothing written: --res 4096 needs about 3.1 GB of
# working memory, here capped at 1.5 GB of address space.
msg=$( (ulimit -v 1500000; "$tool" explain --model "$model" --vocab "$shared/clip/bpe_simple_vocab_16e6.txt.gz" \
        --image "$shared/images/chelsea.png" --classes cat --res 4096 --threads 2 --no-cache \
        -o "$tmp/big") 2>&1 >/dev/null)
rc=$?
if [ "$rc" -ne 1 ] || [[ "$msg" != *"4096x4096"*"MB of working memory"*"smaller resolution"* ]] || [ -e "$tmp/big" ]; then
    echo "FAIL: --res 4096 under a 1.5 GB cap: rc $rc, message '$msg'"; exit 1
fi
echo "ok   --res 4096 refused: $msg"

# Under a tighter cap OpenBLAS (0.3.21) would retry its first product's
# buffer allocation forever; the library checks the room left first and
# refuses with one line, exit 1, nothing written (a hang here is a timeout).
msg=$( (ulimit -v 500000; timeout 60 "$tool" explain --model "$model" --vocab "$shared/clip/bpe_simple_vocab_16e6.txt.gz" \
        --image "$shared/images/chelsea.png" --classes cat --res 4096 --threads 2 --no-cache \
        -o "$tmp/capped") 2>&1 >/dev/null)
rc=$?
if [ "$rc" -ne 1 ] || [[ "$msg" != *"address-space limit"*"OpenBLAS"* ]] || [ "$(printf '%s\n' "$msg" | wc -l)" -ne 1 ] ||
   [ -e "$tmp/capped" ]; then
    echo "FAIL: --res 4096 under a 500 MB cap: rc $rc, message '$msg'"; exit 1
fi
echo "ok   a cap too small for OpenBLAS's buffers refused: $msg"
