#!/usr/bin/env bash
# Mutation check: does the suite notice when a path breaks? Each mutation
# below changes one thing in one source file (a perl substitution), the
# build is redone, the tests named for it run, and the file is restored
# (also on Ctrl-C). A mutation is CAUGHT when those tests fail, SURVIVED
# when they pass (a gap in the tests, or an equivalent mutant: see its
# note), and NOT APPLIED when its pattern no longer matches the code (the
# code moved: update the line here).
#
#   bash tests/mutations.sh [BUILD_DIR] [NAME_FILTER]
#
# BUILD_DIR (default build) must be configured already; NAME_FILTER (a bash
# regular expression) keeps the mutations whose name matches. Each mutation rebuilds the library,
# the tool and the tests it runs: 10-60 s each on two busy cores. The working tree
# must be clean for the files mutated (the script refuses otherwise).
# MUTATIONS_DRY_RUN=1 only checks that every pattern still matches the code.
set -u
cd "$(dirname "$0")/.."
build=${1:-build}
filter=${2:-}
[ -f "$build/CMakeCache.txt" ] || { echo "mutations.sh: $build is not a configured build folder" >&2; exit 2; }

# name ~ file ~ perl substitution ~ ctest -R regex ~ note
mutations=(
"cache-key-without-version~src/method/cache.c~s/cs_version\(\), CACHE_FORMAT/\"\", CACHE_FORMAT/~^test_cache$~"
"cache-format-not-bumped~src/method/cache.c~s/#define CACHE_FORMAT 2/#define CACHE_FORMAT 1/~^test_cache$~"
"memo-ignores-ctime~src/formats/download.c~s/st\.st_ctim\.tv_sec/0/; s/st\.st_ctim\.tv_nsec/0L/~^test_cache$~"
"memo-ignores-inode~src/formats/download.c~s/\(unsigned long long\)st\.st_ino/0ULL/~^test_cache$~equivalent in practice: a file put in place of another has a new ctime too"
"memo-trusted-blindly~src/formats/download.c~s/!strncmp\(line, stamp, n\) &&/1 \&\&/~^test_cache$~"
"identity-trusts-official-name~src/method/cache.c~s/if \(official && strcmp\(hex, official\) != 0\)/if (0)/~^test_cache$~"
"cached-model-not-verified~src/model/hub.c~s/if \(!strcmp\(hex, sha256\)\) return CS_OK;/return CS_OK;/~^test_download$~"
"wrong-published-hash~src/model/hub.c~s/8fa8567bab74a42d/8fa8567bab74a42e/~^test_download$~"
"vocab-key-by-path~src/jobs/classes.c~s/cs_file_identity\(vocab, dir, words\) != CS_OK/snprintf(words, 65, \"%.64s\", vocab) < 0/~^test_cli_paths$~"
"precision-not-in-key~src/jobs/classes.c~s/m->precision == CS_PRECISION_BF16 \? \"bf16\" : \"fp32\"/\"fp32\"/~^test_cli_paths$~"
"segment-writes-over-the-user-file~tools/cmd_segment.c~s/\"%s\.partial-%ld\", cli_get\(a, outputs\[i\]\), \(long\)getpid\(\)/\"%s\", cli_get(a, outputs[i])/~^test_cli_paths$~"
"segment-keeps-outputs-on-failure~tools/cmd_segment.c~s/if \(rc\) unlink\(tmp\[i\]\);/if (0) unlink(tmp[i]);/~^test_cli_paths$~"
"text-without-empty-prompt~src/jobs/classes.c~s/\*used = asked == CS_REDUNDANT_EMPTY \|\| cl->K == 1 \?/*used = 0 ?/~^test_cli_paths$~"
"cli-ignores-rn-normalize-v~tools/common.c~s/cli_has\(a, \"rn-normalize-v\"\)/0/~^test_cli_paths$~"
"load-ignores-surgery-blocks~src/model/open.c~s/cs_model_set_surgery\(m, o\.surgery_blocks,/cs_model_set_surgery(m, 6,/~^test_cli_paths$~"
"vit-ignores-surgery-blocks~src/model/vit.c~s/mode == CS_VISION_SURGERY \? m->surgery_blocks/mode == CS_VISION_SURGERY ? 6/~^test_cli_paths$~"
"cli-ignores-exif-rotate~tools/common.c~s/exif_rotate = cli_has\(a, \"exif-rotate\"\)/exif_rotate = 0/~^test_cli_paths$~"
"cli-ignores-max-megapixels~tools/common.c~s/max_pixels = \(int64_t\)mp \* 1000000/max_pixels = (int64_t)100 * 1000000/~^test_cli_paths$~"
"points-without-x-clamp~src/method/maps.c~s/if \(x > \(float\)\(image_w - 1\)\) x = \(float\)\(image_w - 1\);//~^test_edge_units$~equivalent: (col + 0.5) W/w < W, so the truncated x is <= W - 1 without the clamp"
"bf16-widened-wrong~src/formats/tensors.c~s/\(uint32_t\)h << 16/(uint32_t)(h \& 0xfffe) << 16/~^test_edge_units$~"
"bf16-portable-kernel-drops-odd-k~src/ops/gemm_bf16.c~s/ \+ a1 \* op_bf16_to_float\(wq\[2 \* n \+ 1\]\)//~^test_precision_parity$~"
"vit-ln-pre-eps~src/model/vit.c~s/v->ln_pre\.b, 1e-5f/v->ln_pre.b, 1e-3f/~^test_inter_parity$~"
"text-not-causal~src/model/text.c~s/causal = \{OP_ATTN_QK, 1, NULL/causal = {OP_ATTN_QK, 0, NULL/~^test_inter_parity$~"
"surgery-path-qk-attention~src/model/vit.c~s/op_attention_spec a = \{OP_ATTN_VV, 0, NULL, 0\.0f\};/op_attention_spec a = {OP_ATTN_QK, 0, NULL, 0.0f};/~^test_inter_parity$~"
"bench-without-peak~tools/cmd_bench.c~s/b\.peak = cs_gemm_peak_gflops\(2048, 5\);/b.peak = 0;/~^test_cli_paths$~"
"synthetic-prefix-kept~src/model/open.c~s/cs_model_synthetic\(name \+ 10, out\)/cs_model_synthetic(name, out)/~^test_cli_paths$~"
"write-failure-is-bad-input~tools/common.c~s/s == CS_ERR_NOMEM \|\| s == CS_ERR_IO \? CLI_EXIT_RUNTIME/s == CS_ERR_NOMEM ? CLI_EXIT_RUNTIME/~^test_cli_(contracts|outputs|paths)$~"
)

tmp=$(mktemp -d)
current=""
restore() {
    if [ -n "$current" ]; then
        cp "$tmp/orig" "$current"
        touch "$current"
        current=""
    fi
}
trap 'restore; rm -rf "$tmp"; exit 130' INT TERM

caught=0; survived=0; skipped=0
report=()
for m in "${mutations[@]}"; do
    IFS='~' read -r name file subst tests note <<<"$m"
    [ -n "$filter" ] && ! [[ "$name" =~ $filter ]] && continue
    if ! git diff --quiet -- "$file"; then
        echo "mutations.sh: $file has uncommitted changes; commit or stash them first" >&2
        exit 2
    fi
    cp "$file" "$tmp/orig"
    current=$file
    # The substitution must change the file, else the code moved.
    SUBST="$subst" perl -0pi -e 'eval "\$_ =~ $ENV{SUBST}"; die $@ if $@' "$file" 2>"$tmp/perl.err"
    if cmp -s "$file" "$tmp/orig"; then
        restore
        result="NOT APPLIED"
        skipped=$((skipped + 1))
    elif [ -n "${MUTATIONS_DRY_RUN:-}" ]; then
        restore
        result="applies"
    elif ! targets=$(cd "$build" && ctest -N -R "$tests" | sed -n 's/^ *Test *#[0-9]*: //p' | grep -v -e '^cli_' -e '^test_homes$') ||
         ! cmake --build "$build" -j2 --target clip-surgery $targets >"$tmp/build.log" 2>&1; then
        restore
        result="NOT BUILT"
        skipped=$((skipped + 1))
    elif (cd "$build" && ctest -R "$tests" >"$tmp/test.log" 2>&1); then
        restore
        result="SURVIVED"
        survived=$((survived + 1))
    else
        restore
        result="caught"
        caught=$((caught + 1))
    fi
    line=$(printf '%-36s %-12s %s' "$name" "$result" "${note:+($note)}")
    echo "$line"
    report+=("$line")
done
trap - INT TERM
cmake --build "$build" -j2 >"$tmp/build.log" 2>&1 || echo "mutations.sh: the restored tree does not build: see $build" >&2
rm -rf "$tmp"
echo "caught $caught, survived $survived, not applied or not built $skipped"
[ "$survived" -eq 0 ]
