/* The hostile-input corpus: every reader and every command fed malformed,
 * oversized, mislabelled or non-regular inputs. The corpus is generated
 * here (from a few lines each, or by corrupting the golden tiny models), so
 * nothing binary is kept in the repository; tests/hostile/README.md has one
 * line per case and is checked against the table below
 * (`build/test_hostile --readme > tests/hostile/README.md` rewrites it).
 *
 * Each case runs the tool and checks what the tool promises for bad input:
 * the expected exit code (2 bad input, 1 runtime failure), exactly one line
 * on stderr containing the expected fragment, no file left in the output
 * folder, a peak RSS under a bound and a finish under a time bound. */
/* The case table leaves trailing fields (flags, bounds) at zero. */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>
#include "cli_run.h"
#include "formats/tensors.h"
#include "formats/zip.h"
#include "golden.h"
#include "hostile/gen.h"
#include "test.h"

#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

/* Bounds for every case unless it sets its own: the tiny models need far
 * less; the sanitizer build's shadow memory and slowdown get a margin. */
#define DEFAULT_RSS_MB (SANITIZED ? 1200 : 400)
#define DEFAULT_SECONDS (SANITIZED ? 60 : 20)

enum { OUTPUT_OK = 1 }; /* the case succeeds: outputs are expected */

typedef struct hcase {
    const char *name;
    const char *what;     /* one line for the README */
    const char *args;     /* {M} {V} {I} ... are replaced, see expand() */
    int exit_code;
    const char *fragment; /* in the one stderr line */
    int flags;
    int rss_mb;           /* 0: DEFAULT_RSS_MB */
    int files;            /* with OUTPUT_OK: the files expected (0: not counted) */
} hcase;

/* Shorthands for the commands most cases run. */
#define EXPL "explain --quiet --model {M} --vocab {V} --image {I} --classes cat,dog -o {O}"
#define CONV "convert --quiet -o {O}/x.safetensors --model "
#define TOK "tokenize --vocab "
#define CLS "classify --quiet --model {M} --vocab {V} --image {I} "

static const hcase k_cases[] = {
    /* ---------------------------------------------------------- options (item 5) */
    {"threads-word", "--threads abc", EXPL " --threads abc", 2, "--threads 'abc' is not an integer in 1.."},
    {"threads-zero", "--threads 0", EXPL " --threads 0", 2, "--threads '0' is not an integer"},
    {"threads-negative", "--threads -1", EXPL " --threads -1", 2, "--threads '-1' is not an integer"},
    {"threads-huge", "--threads 9999 (more than the CPUs)", EXPL " --threads 9999", 2, "(the CPUs available)"},
    {"threads-space", "--threads ' 2' (leading space)", EXPL " --threads {SP}2", 2, "--threads ' 2'"},
    {"threads-plus", "--threads +1", EXPL " --threads +1", 2, "--threads '+1'"},
    {"threads-fraction", "--threads 1.5", EXPL " --threads 1.5", 2, "--threads '1.5'"},
    {"threads-overflow", "--threads with 20 digits", EXPL " --threads 99999999999999999999", 2, "is not an integer"},
    {"threads-empty", "--threads= (empty)", EXPL " --threads=", 2, "--threads ''"},
    {"res-zero", "--res 0", EXPL " --res 0", 2, "--res '0' is not an integer in 16..4096"},
    {"res-huge", "--res 100000", EXPL " --res 100000", 2, "--res '100000'"},
    {"res-hex", "--res 0x100", EXPL " --res 0x100", 2, "--res '0x100'"},
    {"res-suffix", "--res 224px", EXPL " --res 224px", 2, "--res '224px'"},
    {"res-not-multiple", "--res 70 (not a multiple of the patch)", EXPL " --res 70", 2, "not a positive multiple of 8"},
    {"surgery-blocks-negative", "--surgery-blocks -1", EXPL " --surgery-blocks -1", 2, "--surgery-blocks '-1'"},
    {"max-megapixels-zero", "--max-megapixels 0", EXPL " --max-megapixels 0", 2, "--max-megapixels '0'"},
    {"max-megapixels-word", "--max-megapixels many", EXPL " --max-megapixels many", 2, "--max-megapixels 'many'"},
    {"points-t-nan", "points --t nan", "points --quiet --model {M} --vocab {V} --image {I} --classes cat --t nan", 2, "--t 'nan' is not a number in [0, 1]"},
    {"points-t-inf", "points --t inf", "points --quiet --model {M} --vocab {V} --image {I} --classes cat --t inf", 2, "--t 'inf'"},
    {"points-t-negative", "points --t -0.5", "points --quiet --model {M} --vocab {V} --image {I} --classes cat --t -0.5", 2, "--t '-0.5'"},
    {"points-t-hexfloat", "points --t 0x1p-1", "points --quiet --model {M} --vocab {V} --image {I} --classes cat --t 0x1p-1", 2, "--t '0x1p-1'"},
    {"points-t-space", "points --t ' 0.5'", "points --quiet --model {M} --vocab {V} --image {I} --classes cat --t {SP}0.5", 2, "--t ' 0.5'"},
    {"segment-window-small", "segment --window 8", "segment --quiet --model {M} --vocab {V} --image {I} --classes cat,dog -o {O}/l.png --window 8", 2, "--window '8'"},
    {"segment-stride-zero", "segment --stride 0", "segment --quiet --model {M} --vocab {V} --image {I} --classes cat,dog -o {O}/l.png --window 64 --stride 0", 2, "--stride '0'"},
    {"segment-bg-thresh-nan", "segment --bg-thresh nan", "segment --quiet --model {M} --vocab {V} --image {I} --classes cat,dog -o {O}/l.png --bg-thresh nan", 2, "--bg-thresh 'nan'"},
    {"bench-runs-zero", "bench --runs 0", "bench --runs 0", 2, "--runs '0'"},
    {"bench-batch-huge", "bench --batch 100", "bench --batch 100", 2, "--batch '100'"},
    {"tokenize-context-zero", "tokenize --context 0", TOK "{V} --context 0 hello", 2, "--context '0'"},
    {"tokenize-context-huge", "tokenize --context 2000000", TOK "{V} --context 2000000 hello", 2, "--context '2000000'"},
    {"size-no-height", "--size 10x", "explain --quiet --model {M} --pixels {D}/pixels.npy --size 10x --class-embeddings {D}/emb.npy -o {O}", 2, "--size '10x'"},
    {"size-zero", "--size 0x5", "explain --quiet --model {M} --pixels {D}/pixels.npy --size 0x5 --class-embeddings {D}/emb.npy -o {O}", 2, "--size '0x5'"},
    {"size-three-parts", "--size 2x3x4", "explain --quiet --model {M} --pixels {D}/pixels.npy --size 2x3x4 --class-embeddings {D}/emb.npy -o {O}", 2, "--size '2x3x4'"},
    {"size-over-limit", "--size 60000x60000 (over --max-megapixels)", "explain --quiet --model {M} --pixels {D}/pixels.npy --size 60000x60000 --class-embeddings {D}/emb.npy -o {O}", 2, "within the image limit"},
    {"eval-shard-reversed", "eval --shard 3/2", "eval --quiet --model {M} --vocab {V} --dataset voc:{D} --task seg --shard 3/2", 2, "--shard '3/2' is not K/N"},
    {"eval-shard-words", "eval --shard a/b", "eval --quiet --model {M} --vocab {V} --dataset voc:{D} --task seg --shard a/b", 2, "--shard 'a/b'"},
    {"eval-shard-zero", "eval --shard 0/0", "eval --quiet --model {M} --vocab {V} --dataset voc:{D} --task seg --shard 0/0", 2, "--shard '0/0'"},
    {"eval-shard-overflow", "eval --shard 99999999999/3", "eval --quiet --model {M} --vocab {V} --dataset voc:{D} --task seg --shard 99999999999/3", 2, "--shard '99999999999/3'"},
    {"unknown-option", "an unknown option", EXPL " --frobnicate", 2, "unknown option '--frobnicate'"},
    {"missing-value", "an option without its value", "explain --quiet --model", 2, "option '--model' needs a value"},
    {"flag-with-value", "a flag given a value", EXPL " --no-cache=yes", 2, "option '--no-cache' takes no value"},
    {"stray-argument", "an argument that is not an option", EXPL " stray", 2, "unexpected argument 'stray'"},
    {"unknown-command", "an unknown command", "frobnicate", 2, "frobnicate"},
    {"precision-bad", "--precision fp8", EXPL " --precision fp8", 2, "--precision 'fp8'"},

    /* ---------------------------------------------------------- FIFOs and other non-files (item 1) */
    {"fifo-image", "a FIFO as --image", "explain --quiet --model {M} --vocab {V} --image {D}/fifo.jpg --classes cat -o {O}", 2, "not a regular file (a FIFO)"},
    {"fifo-classes", "a FIFO as --classes @file", "explain --quiet --model {M} --vocab {V} --image {I} --classes @{D}/fifo.txt -o {O}", 2, "not a regular file (a FIFO)"},
    {"fifo-vocab", "a FIFO as --vocab", "explain --quiet --model {M} --vocab {D}/fifo.txt.gz --image {I} --classes cat -o {O}", 2, "not a regular file (a FIFO)"},
    {"fifo-model-safetensors", "a FIFO as a .safetensors model", "explain --quiet --model {D}/fifo.safetensors --vocab {V} --image {I} --classes cat -o {O}", 2, "not a regular file (a FIFO)"},
    {"fifo-model-pt", "a FIFO as a .pt model", CONV "{D}/fifo.pt", 2, "not a regular file (a FIFO)"},
    {"fifo-pixels", "a FIFO as --pixels", "explain --quiet --model {M} --pixels {D}/fifo.npy --class-embeddings {D}/emb.npy -o {O}", 2, "not a regular file (a FIFO)"},
    {"fifo-class-embeddings", "a FIFO as --class-embeddings", "explain --quiet --model {M} --image {I} --class-embeddings {D}/fifo.npy -o {O}", 2, "not a regular file (a FIFO)"},
    {"fifo-templates", "a FIFO as --templates", EXPL " --templates {D}/fifo.txt", 2, "not a regular file (a FIFO)"},
    {"fifo-texts", "a FIFO as embed --texts", "embed --quiet --model {M} --vocab {V} --raw --texts {D}/fifo.txt -o {O}/e.npy", 2, "not a regular file (a FIFO)"},
    {"fifo-hf-config", "a HF folder whose config.json is a FIFO", CONV "{D}/hf-fifo-config", 2, "not a regular file (a FIFO)"},
    {"fifo-hf-weights", "a HF folder whose model.safetensors is a FIFO", CONV "{D}/hf-fifo-weights", 2, "not a regular file (a FIFO)"},
    {"fifo-hf-vocab", "a model folder whose vocab.json is a FIFO", "tokenize --vocab {D}/hf-fifo-vocab hello", 2, "not a regular file (a FIFO)"},
    {"fifo-cache-entry", "a FIFO planted as a class-embedding cache entry (ignored)", "explain --quiet --model {M} --vocab {V} --image {I} --classes cat -o {O} --no-png --npy", 0, "", OUTPUT_OK},
    {"device-image", "/dev/zero as --image", "explain --quiet --model {M} --vocab {V} --image /dev/zero --classes cat -o {O}", 2, "not a regular file (a device)"},
    {"device-model", "/dev/zero as --model", CONV "/dev/zero", 2, "not a regular file (a device)"},
    {"folder-classes", "a folder as --classes @file", "explain --quiet --model {M} --vocab {V} --image {I} --classes @{D} -o {O}", 2, "not a regular file (a folder)"},
    {"folder-vocab-empty", "a folder without vocab.json as --vocab", TOK "{D}/empty-folder hello", 2, "vocab.json: cannot open"},
    {"folder-no-images", "a folder without images as --image", "explain --quiet --model {M} --vocab {V} --image {D}/empty-folder --classes cat -o {O}", 2, "no JPEG or PNG images in the folder"},
    {"missing-image", "a missing --image", "explain --quiet --model {M} --vocab {V} --image {D}/nope.jpg --classes cat -o {O}", 2, "nope.jpg: cannot open: No such file"},
    {"missing-model", "a missing --model file", CONV "{D}/nope.safetensors", 2, "nope.safetensors: model file not found"},
    {"missing-vocab", "a missing --vocab", TOK "{D}/nope.txt.gz hello", 2, "no such vocabulary file or folder"},
    {"missing-classes", "a missing --classes @file", "explain --quiet --model {M} --vocab {V} --image {I} --classes @{D}/nope.txt -o {O}", 2, "nope.txt: cannot open"},

    /* ---------------------------------------------------------- safetensors */
    {"st-empty", "an empty .safetensors", CONV "{D}/empty.safetensors", 2, "empty file, not a model"},
    {"st-short", "a 4-byte .safetensors", CONV "{D}/short.safetensors", 2, "too short for a safetensors header"},
    {"st-header-huge", "a header length of 2^40", CONV "{D}/header-huge.safetensors", 2, "over the 100 MB limit"},
    {"st-header-past-end", "a header length past the end of the file", CONV "{D}/header-past-end.safetensors", 2, "header length 4096 is larger than the file"},
    {"st-not-json", "a header that is not JSON", CONV "{D}/not-json.safetensors", 2, "header is not a JSON object"},
    {"st-json-array", "a header that is a JSON array", CONV "{D}/json-array.safetensors", 2, "header is not a JSON object"},
    {"st-entry-string", "a tensor entry that is a string", CONV "{D}/entry-string.safetensors", 2, "header entry is not an object"},
    {"st-no-dtype", "a tensor without dtype", CONV "{D}/no-dtype.safetensors", 2, "needs dtype, shape and data_offsets"},
    {"st-dtype-unknown", "dtype Q4", CONV "{D}/dtype-q4.safetensors", 2, "unknown dtype 'Q4'"},
    {"st-shape-negative", "shape [-1]", CONV "{D}/shape-negative.safetensors", 2, "bad shape"},
    {"st-shape-fraction", "shape [1.5]", CONV "{D}/shape-fraction.safetensors", 2, "bad shape"},
    {"st-shape-string", "shape [\"4\"]", CONV "{D}/shape-string.safetensors", 2, "bad shape"},
    {"st-shape-overflow", "shape [4e15, 4e15] (bytes overflow)", CONV "{D}/shape-overflow.safetensors", 2, "shape overflows"},
    {"st-too-many-dims", "9 dimensions", CONV "{D}/dims9.safetensors", 2, "9 dimensions (at most 8)"},
    {"st-offsets-fraction", "data_offsets [1.5, 129.5] (item 11)", CONV "{D}/offsets-fraction.safetensors", 2, "data_offsets [1.5, 129.5] are not whole byte offsets"},
    {"st-offsets-negative", "data_offsets [-4, 0]", CONV "{D}/offsets-negative.safetensors", 2, "not whole byte offsets"},
    {"st-offsets-outside", "data_offsets past the data section", CONV "{D}/offsets-outside.safetensors", 2, "outside the data section of 8 bytes"},
    {"st-offsets-reversed", "data_offsets [8, 4]", CONV "{D}/offsets-reversed.safetensors", 2, "outside the data section"},
    {"st-offsets-one", "data_offsets with one number", CONV "{D}/offsets-one.safetensors", 2, "needs dtype, shape and data_offsets"},
    {"st-size-mismatch", "shape x dtype differs from the span", CONV "{D}/size-mismatch.safetensors", 2, "shape x dtype size is 16 bytes but data_offsets span 8"},
    {"st-overlap", "two tensors sharing bytes", CONV "{D}/overlap.safetensors", 2, "overlap in the data section"},
    {"st-duplicate-key", "one key twice in the header (item 7)", CONV "{D}/duplicate-key.safetensors", 2, "tensor 'a' appears twice"},
    {"st-zero-size-valid", "a zero-size tensor at [x, x] beside one at [x, y] (item 8, valid)", CONV "{D}/zero-size.safetensors", 0, "", OUTPUT_OK},
    {"st-model-duplicate", "the tiny model with a tensor repeated", CONV "{D}/model-duplicate.safetensors", 2, "appears twice"},
    {"st-block-renamed", "block 2's in_proj renamed (item 7)", CONV "{D}/model-block-renamed.safetensors", 2, "'visual.transformer.resblocks.2.attn.in_proj_weight' is missing"},
    {"st-block-extra", "a stray ninth block with one tensor", CONV "{D}/model-block-extra.safetensors", 2, "'visual.transformer.resblocks.8.attn.in_proj_weight' is missing"},
    {"st-block-index-huge", "a block index of 99999", CONV "{D}/model-block-huge.safetensors", 2, "over the limit of 1024 blocks"},
    {"st-extra-tensor", "an extra tensor no block uses (item 7)", CONV "{D}/model-extra.safetensors", 2, "1 tensor is not used by the model, the first 'visual.extra.weight'"},
    {"st-missing-tensor", "ln_post.weight missing", CONV "{D}/model-missing.safetensors", 2, "required tensor 'visual.ln_post.weight' is missing"},
    {"st-wrong-shape", "c_fc.bias of the wrong shape", CONV "{D}/model-shape.safetensors", 2, "has shape [512, 1], expected [512]"},
    {"st-nan-weight", "a NaN in a weight (item 6)", CONV "{D}/model-nan.safetensors", 2, "'visual.ln_post.bias' holds 1 non-finite value"},
    {"st-inf-weight", "an infinity in a weight (item 6)", CONV "{D}/model-inf.safetensors", 2, "'token_embedding.weight' holds 1 non-finite value"},
    {"st-i64-weight", "ln_final.weight stored as I64 (item 11)", CONV "{D}/model-i64.safetensors", 2, "'ln_final.weight' has dtype I64, not a float type"},
    {"st-truncated-model", "the tiny model cut in half", CONV "{D}/model-cut.safetensors", 2, "outside the data section"},
    {"st-nan-explain", "a NaN weight given to explain", "explain --quiet --model {D}/model-nan.safetensors --vocab {V} --image {I} --classes cat -o {O}", 2, "non-finite"},
    {"st-empty-dims", "token_embedding of shape [0, 64]", CONV "{D}/model-empty-dim.safetensors", 2, "the text tensors have an empty dimension (embedding 64, context 77, vocabulary 0"},

    /* ---------------------------------------------------------- Hugging Face folders */
    {"hf-heads-huge", "config.json num_attention_heads 1e12 (item 11)", CONV "{D}/hf-heads-huge", 2, "vision_config.num_attention_heads 1000000000000 is not an integer in 1..4096"},
    {"hf-heads-string", "config.json num_attention_heads \"8\"", CONV "{D}/hf-heads-string", 2, "num_attention_heads \"8\""},
    {"hf-heads-indivisible", "config.json heads that do not divide the width", CONV "{D}/hf-heads-7", 2, "is not divisible by 7 heads"},
    {"hf-config-not-json", "config.json that is not JSON", CONV "{D}/hf-bad-json", 2, "config.json: not valid JSON"},
    {"hf-config-huge", "config.json over 1 MB", CONV "{D}/hf-config-huge", 2, "more than the limit of 1048576"},
    {"hf-act-gelu", "hidden_act gelu", CONV "{D}/hf-gelu", 2, "hidden_act 'gelu' is not supported"},
    {"hf-projection-degenerate", "visual_projection of shape [9e15, 0] (item 12)", CONV "{D}/hf-degenerate", 2, "'visual_projection.weight' has an empty dimension [9000000000000000, 0]"},
    {"hf-qproj-empty", "a q_proj of shape [0, 64]", CONV "{D}/hf-qproj-empty", 2, "should be a non-empty matrix"},
    {"hf-both-names", "an HF file that also has the OpenAI name", CONV "{D}/hf-both-names", 2, "'visual.conv1.weight' appears twice"},
    {"hf-layer-gap", "HF layers 0, 1, 3.. (layer 2 gone)", CONV "{D}/hf-layer-gap", 2, "layer 2 ('vision_model.encoder.layers.2.*') is missing; the file has layers up to 7"},
    {"hf-vocab-not-object", "vocab.json that is a list", TOK "{D}/hf-vocab-list hello", 2, "vocab.json: not a JSON object"},
    {"hf-vocab-negative-id", "vocab.json with a negative id", TOK "{D}/hf-vocab-negative hello", 2, "is not a non-negative integer"},
    {"hf-vocab-no-bytes", "vocab.json without the byte symbols", TOK "{D}/hf-vocab-small hello", 2, "is not in the vocabulary"},
    {"hf-merges-bad", "merges.txt with a line of three parts", TOK "{D}/hf-merges-bad hello", 2, "line 2 is not a merge"},

    /* ---------------------------------------------------------- PyTorch zip archives */
    {"pt-empty", "a 0-byte .pt (item 11)", CONV "{D}/empty.pt", 2, "empty file, not a model"},
    {"pt-text", "a text file named .pt", CONV "{D}/text.pt", 2, "not a zip archive (a PyTorch file is one)"},
    {"pt-truncated", "the tiny .pt cut in half", CONV "{D}/cut.pt", 2, "truncated zip archive"},
    {"pt-cut-end", "the tiny .pt without its last byte", CONV "{D}/cut-end.pt", 2, "truncated zip archive"},
    {"pt-crc-stored", "one byte of a stored storage altered (item 13)", CONV "{D}/altered.pt", 2, "CRC-32 mismatch (the stored data was altered)"},
    {"pt-count-lies", "an end record claiming 60000 entries", CONV "{D}/count-lies.pt", 2, "cannot hold 60000 entries"},
    {"pt-directory-outside", "a central directory offset past the end", CONV "{D}/directory-outside.pt", 2, "lies outside the archive"},
    {"pt-local-outside", "a local header offset past the directory", CONV "{D}/local-outside.pt", 2, "local header offset"},
    {"pt-encrypted", "an entry flagged as encrypted", CONV "{D}/encrypted.pt", 2, "is encrypted"},
    {"pt-method-bzip2", "an entry compressed with bzip2", CONV "{D}/bzip2.pt", 2, "uses compression method 12"},
    {"pt-duplicate-entry", "two entries with one name", CONV "{D}/duplicate-entry.pt", 2, "appears twice"},
    {"pt-no-pickle", "a zip without data.pkl", CONV "{D}/no-pickle.pt", 2, "without data.pkl, not a PyTorch file"},
    {"pt-big-endian", "byteorder says big", CONV "{D}/big-endian.pt", 2, "not little-endian"},
    {"pt-deflate-bomb", "64 floats from a 256 MB deflated storage (item 4)", CONV "{D}/bomb.pt", 2, "required tensor 'text_projection' is missing", 0, 160},
    {"pt-deflate-ratio", "a deflated entry claiming more than deflate can produce", CONV "{D}/ratio.pt", 2, "claims 4000000000 bytes from"},
    {"pt-deflate-corrupt", "deflated data that is not deflate", CONV "{D}/deflate-corrupt.pt", 2, "deflated data is corrupt"},
    {"pt-deflate-crc", "deflated data whose CRC is wrong", CONV "{D}/deflate-crc.pt", 2, "CRC-32 mismatch"},
    {"pt-deflate-short", "deflated data shorter than its declared size", CONV "{D}/deflate-short.pt", 2, "does not match its size"},
    {"pt-storage-missing", "a tensor whose storage entry is absent", CONV "{D}/storage-missing.pt", 2, "storage 'archive/data/7' is missing"},
    {"pt-storage-small", "a storage smaller than its declared elements", CONV "{D}/storage-small.pt", 2, "fewer than 1000 elements"},
    {"pt-view-outside", "a view whose strides leave the storage", CONV "{D}/view-outside.pt", 2, "size and stride exceed its storage"},
    {"pt-storage-type", "a storage of an unknown type", CONV "{D}/storage-type.pt", 2, "storage type 'torch.QuantStorage' is not supported"},
    {"pk-os-system", "a pickle calling os.system", CONV "{D}/os-system.pt", 2, "global 'os.system' is not allowed: only PyTorch tensors and modules are read, nothing is executed"},
    {"pk-builtins-eval", "a pickle calling builtins.eval", CONV "{D}/eval.pt", 2, "global 'builtins.eval' is not allowed"},
    {"pk-unknown-opcode", "an opcode outside the protocol", CONV "{D}/opcode.pt", 2, "(pickle offset 2)"},
    {"pk-truncated", "a pickle without STOP", CONV "{D}/no-stop.pt", 2, "truncated pickle"},
    {"pk-stack-underflow", "SETITEM on an empty stack", CONV "{D}/underflow.pt", 2, "stack underflow"},
    {"pk-memo-missing", "a memo lookup of a key never stored", CONV "{D}/memo.pt", 2, "memo lookup of a key never stored"},
    {"pk-string-huge", "a string claiming 4 GB", CONV "{D}/string-huge.pt", 2, "string longer than the reader's limit"},
    {"pk-protocol-9", "pickle protocol 9", CONV "{D}/protocol9.pt", 2, "pickle protocol above 5"},
    {"pk-deep", "tuples nested 100000 deep (no stack overflow)", CONV "{D}/deep.pt", 2, "not a state dict or a module"},
    {"pk-not-dict", "a pickled integer", CONV "{D}/int.pt", 2, "not a state dict or a module"},
    {"pk-no-tensors", "an empty dict", CONV "{D}/empty-dict.pt", 2, "holds no tensors"},
    {"pk-duplicate-name", "one tensor name twice", CONV "{D}/duplicate-name.pt", 2, "appears twice"},
    {"pk-shape-mismatch", "rebuild with size and stride of different lengths", CONV "{D}/size-stride.pt", 2, "size and stride must be tuples"},

    /* ---------------------------------------------------------- images */
    {"img-empty", "an empty image file", "explain --quiet --model {M} --vocab {V} --image {D}/empty.jpg --classes cat -o {O}", 2, "empty file"},
    {"img-text", "a text file named .jpg", "explain --quiet --model {M} --vocab {V} --image {D}/text.jpg --classes cat -o {O}", 2, "not a JPEG or PNG image"},
    {"img-gif", "a GIF", "explain --quiet --model {M} --vocab {V} --image {D}/anim.gif.jpg --classes cat -o {O}", 2, "GIF images are not supported"},
    {"img-bmp", "a BMP", "explain --quiet --model {M} --vocab {V} --image {D}/bmp.jpg --classes cat -o {O}", 2, "BMP images are not supported"},
    {"img-jpeg-truncated", "a JPEG cut in half", "explain --quiet --model {M} --vocab {V} --image {D}/half.jpg --classes cat -o {O}", 2, "truncated JPEG data"},
    {"img-jpeg-header-only", "a JPEG of its first 200 bytes", "explain --quiet --model {M} --vocab {V} --image {D}/header.jpg --classes cat -o {O}", 2, "header.jpg"},
    {"img-jpeg-zero-dims", "a JPEG declaring 0x0", "explain --quiet --model {M} --vocab {V} --image {D}/zero-dims.jpg --classes cat -o {O}", 2, "zero-dims.jpg"},
    {"img-png-huge", "a PNG declaring 100000x100000", "explain --quiet --model {M} --vocab {V} --image {D}/huge.png --classes cat -o {O}", 2, "more than the limit of 100000000 pixels"},
    {"img-png-over-limit", "a PNG over --max-megapixels 1", "explain --quiet --model {M} --vocab {V} --image {D}/big.png --classes cat -o {O} --max-megapixels 1", 2, "more than the limit of 1000000 pixels"},
    {"img-png-zero-width", "a PNG of width 0", "explain --quiet --model {M} --vocab {V} --image {D}/zero-width.png --classes cat -o {O}", 2, "zero-width.png"},
    {"img-png-bad-crc", "a PNG whose IHDR CRC is wrong", "explain --quiet --model {M} --vocab {V} --image {D}/bad-crc.png --classes cat -o {O}", 2, "bad-crc.png"},
    {"img-png-truncated", "a PNG cut in half", "explain --quiet --model {M} --vocab {V} --image {D}/half.png --classes cat -o {O}", 2, "half.png"},
    {"img-png-no-idat", "a PNG with no image data", "explain --quiet --model {M} --vocab {V} --image {D}/no-idat.png --classes cat -o {O}", 2, "no-idat.png"},
    {"img-folder-bad-last", "a folder of 5 images whose 5th is truncated (item 10)", "explain --quiet --model {M} --vocab {V} --image {D}/five --classes cat -o {O}", 2, "e.jpg: truncated JPEG data"},
    {"img-folder-keep-going", "the same folder with --keep-going: the 4 good images written, the 5th listed", "explain --quiet --model {M} --vocab {V} --image {D}/five --classes cat -o {O} --keep-going", 1, "five/e.jpg: truncated JPEG data (1 of 5)", OUTPUT_OK, 0, 8},
    {"img-list-bad-first", "two --image files, the first a text file", "explain --quiet --model {M} --vocab {V} --image {D}/text.jpg --image {I} --classes cat -o {O}", 2, "text.jpg: not a JPEG or PNG image"},
    {"img-segment-truncated", "segment of a truncated JPEG", "segment --quiet --model {M} --vocab {V} --image {D}/half.jpg --classes cat,dog -o {O}/l.png", 2, "truncated JPEG data"},
    {"img-classify-truncated", "classify of a truncated JPEG", CLS "--classes cat,dog --image {D}/half.jpg", 2, "truncated JPEG data"},
    {"img-points-truncated", "points of a truncated JPEG", "points --quiet --model {M} --vocab {V} --image {D}/half.jpg --classes cat -o {O}", 2, "truncated JPEG data"},

    /* ---------------------------------------------------------- .npy inputs */
    {"npy-bad-magic", "--class-embeddings that is not .npy", "explain --quiet --model {M} --image {I} --class-embeddings {D}/text.npy -o {O}", 2, "not an .npy file (bad magic)"},
    {"npy-truncated-header", "an .npy cut inside its header", "explain --quiet --model {M} --image {I} --class-embeddings {D}/npy-cut.npy -o {O}", 2, "truncated .npy header"},
    {"npy-data-short", "an .npy with less data than its shape", "explain --quiet --model {M} --image {I} --class-embeddings {D}/npy-short.npy -o {O}", 2, "the header says"},
    {"npy-fortran", "a Fortran-order .npy (valid: transposed on read)", "explain --quiet --model {M} --image {I} --class-embeddings {D}/npy-fortran.npy -o {O}", 0, "", OUTPUT_OK},
    {"npy-big-endian", "a big-endian .npy", "explain --quiet --model {M} --image {I} --class-embeddings {D}/npy-be.npy -o {O}", 2, ".npy dtype '>f4' is not supported"},
    {"npy-complex", "a complex .npy", "explain --quiet --model {M} --image {I} --class-embeddings {D}/npy-complex.npy -o {O}", 2, "is not supported"},
    {"npy-shape-bad", "an .npy with shape (2, x)", "explain --quiet --model {M} --image {I} --class-embeddings {D}/npy-shape-bad.npy -o {O}", 2, "bad .npy shape"},
    {"npy-shape-huge", "an .npy declaring 2^62 elements", "explain --quiet --model {M} --image {I} --class-embeddings {D}/npy-shape-huge.npy -o {O}", 2, ".npy"},
    {"npy-version-9", ".npy version 9", "explain --quiet --model {M} --image {I} --class-embeddings {D}/npy-v9.npy -o {O}", 2, ".npy version 9 is not supported"},
    {"npy-emb-wrong-dim", "class embeddings of the wrong width", "explain --quiet --model {M} --image {I} --class-embeddings {D}/emb-wrong.npy -o {O}", 2, "must be float32 [C, 64]"},
    {"npy-emb-nan", "class embeddings holding a NaN (item 6)", "explain --quiet --model {M} --image {I} --class-embeddings {D}/emb-nan.npy -o {O}", 2, "element 3 is NaN"},
    {"npy-emb-inf-classify", "classify with an infinite class embedding (item 6)", "classify --quiet --model {M} --image {I} --class-embeddings {D}/emb-inf.npy", 2, "element 0 is infinite"},
    {"npy-emb-nan-segment", "segment with NaN class embeddings", "segment --quiet --model {M} --image {I} --class-embeddings {D}/emb-nan.npy -o {O}/l.png", 2, "is NaN"},
    {"npy-pixels-nan", "--pixels holding a NaN", "explain --quiet --model {M} --pixels {D}/pixels-nan.npy --class-embeddings {D}/emb.npy -o {O}", 2, "is NaN"},
    {"npy-pixels-shape", "--pixels of shape [3, 8, 9]", "explain --quiet --model {M} --pixels {D}/pixels-shape.npy --class-embeddings {D}/emb.npy -o {O}", 2, "--pixels must be float32 [3, R, R]"},
    {"npy-ids-float", "embed --ids of floats", "embed --quiet --model {M} --raw --ids {D}/emb.npy -o {O}/e.npy", 2, "emb.npy"},

    /* ---------------------------------------------------------- vocabularies (item 9) */
    {"vocab-model-file", "a model file as --vocab", TOK "{M} hello", 2, "not a BPE merges file (it holds binary data)"},
    {"vocab-empty", "an empty --vocab", TOK "{D}/empty.txt hello", 2, "the first line is not a '#version' header"},
    {"vocab-no-header", "merges without the version line", TOK "{D}/no-header.txt hello", 2, "the first line is not a '#version' header"},
    {"vocab-header-only", "only the version line", TOK "{D}/header-only.txt hello", 2, "1 merge lines, fewer than the 48894"},
    {"vocab-few-merges", "a vocabulary of 100 merges", TOK "{D}/few-merges.txt hello", 2, "merge lines, fewer than the 48894"},
    {"vocab-bad-merge", "the real vocabulary with line 3 broken", TOK "{D}/bad-merge.txt hello", 2, "line 3 is not a merge"},
    {"vocab-gzip-fake", "gzip magic followed by garbage", TOK "{D}/fake.gz hello", 2, "fake.gz"},
    {"vocab-gzip-truncated", "the real vocabulary's gzip cut in half", TOK "{D}/cut.txt.gz hello", 2, "cut.txt.gz"},
    {"vocab-gzip-bomb", "a gzip of 64 MB of zeros", TOK "{D}/bomb.txt.gz hello", 2, "bomb.txt.gz", 0, 200},
    {"vocab-text-utf8", "--text with invalid UTF-8 (item 11)", "explain --quiet --model {M} --vocab {V} --image {I} --text ab{FF} -o {O}", 2, "class name: invalid UTF-8 at byte 2 (after 'ab')"},
    {"vocab-class-utf8", "a class name with invalid UTF-8", "explain --quiet --model {M} --vocab {V} --image {I} --classes cat,d{FF}g -o {O}", 2, "invalid UTF-8 at byte 1 (after 'd')"},
    {"vocab-tokenize-utf8", "tokenize of invalid UTF-8", TOK "{V} a{FF}", 2, "invalid UTF-8"},

    /* ---------------------------------------------------------- class lists and templates */
    {"classes-empty-file", "an empty @classes file", "explain --quiet --model {M} --vocab {V} --image {I} --classes @{D}/empty.txt -o {O}", 2, "names no class"},
    {"classes-commas", "--classes ,,,", "explain --quiet --model {M} --vocab {V} --image {I} --classes ,,, -o {O}", 2, "names no class"},
    {"classes-too-long", "a class name over the context length", "explain --quiet --model {M} --vocab {V} --image {I} --classes @{D}/long-class.txt -o {O}", 2, "is longer than the context length 77"},
    {"classes-huge-file", "a 20 MB @classes file", "explain --quiet --model {M} --vocab {V} --image {I} --classes @{D}/huge-classes.txt -o {O}", 2, "more than the limit of 16777216"},
    {"segment-256-classes", "segment with 256 class embeddings", "segment --quiet --model {M} --image {I} --class-embeddings {D}/emb256.npy -o {O}/l.png", 2, "256 classes; at most 255 fit a label PNG"},
    {"classify-256-classes", "classify with 256 classes (item 11: no label PNG involved)", "classify --quiet --model {M} --image {I} --class-embeddings {D}/emb256.npy", 0, "", OUTPUT_OK},
    {"templates-no-braces", "a template without {}", EXPL " --templates {D}/templates-bad.txt", 2, "has no '{}' for the class name"},
    {"templates-empty", "an empty templates file", EXPL " --templates {D}/empty.txt", 2, "no templates in the file"},
    {"texts-empty", "embed --texts of an empty file", "embed --quiet --model {M} --vocab {V} --raw --texts {D}/empty.txt -o {O}/e.npy", 2, "empty.txt"},

    /* ---------------------------------------------------------- outputs (items 10, 11) */
    {"out-max-output-mb", "explain --npy whose files could pass --max-output-mb 1", EXPL " --npy --max-output-mb 1", 2, "more than --max-output-mb 1"},
    {"out-10000-classes", "explain of 10000 classes on a 512x600 image (item 2: 12 GB of PNGs)", "explain --quiet --model {M} --image {I} --class-embeddings {D}/emb10000.npy -o {O}", 2, "more than --max-output-mb 4096"},
    {"out-max-output-mb-zero", "--max-output-mb 0", EXPL " --max-output-mb 0", 2, "--max-output-mb '0'"},
    {"out-under-file", "-o below a regular file (runtime failure)", "explain --quiet --model {M} --vocab {V} --image {I} --classes cat -o {D}/text.jpg/out", 1, "Not a directory"},
    {"out-disk-full", "writing past a file-size limit (runtime failure)", "explain --quiet --model {M} --vocab {V} --image {I} --classes cat -o {O} --npy {FSIZE}", 1, "write failed"},
    {"out-embed-disk-full", "embed writing past a file-size limit", "embed --quiet --model {M} --vocab {V} --classes a,b,c,d,e -o {O}/e.npy {FSIZE}", 1, "write failed"},
    {"out-segment-same-file", "segment --color naming the label file (item 11)", "segment --quiet --model {M} --vocab {V} --image {I} --classes cat,dog -o {O}/l.png --color {O}/l.png", 2, "--color is the same file as -o"},
    {"out-segment-overlay-same", "segment --overlay naming the label file", "segment --quiet --model {M} --vocab {V} --image {I} --classes cat,dog -o {O}/l.png --overlay {O}/l.png", 2, "--overlay is the same file as -o"},
    {"out-convert-into-input", "convert -o onto its own input", "convert --quiet {D}/model-copy.safetensors -o {D}/model-copy.safetensors", 0, "", OUTPUT_OK},
};

#define N_CASES ((int)(sizeof k_cases / sizeof *k_cases))

/* ------------------------------------------------------------------ the corpus */

static const char *g_model, *g_vocab, *g_image, *g_out_dir;

/* Rewrite the golden tiny model as safetensors with one edit. */
typedef struct model_edit {
    const char *drop, *rename_from, *rename_to, *dup, *poison, *reshape, *dtype, *empty;
    int poison_inf;
    const char *extra;      /* extra header entries (data appended: extra_len zero bytes) */
    size_t extra_len;
} model_edit;

static void model_variant(const char *name, const cs_tensor_table *t, model_edit e, size_t cut) {
    buf h = {0}, data = {0};
    b_str(&h, "{");
    int first = 1;
    for (int i = 0; i < t->n; i++) {
        const cs_tensor *x = &t->items[i];
        if (e.drop && !strcmp(x->name, e.drop)) continue;
        for (int copy = 0; copy < ((e.dup && !strcmp(x->name, e.dup)) ? 2 : 1); copy++) {
            const char *nm = e.rename_from && !strcmp(x->name, e.rename_from) ? e.rename_to : x->name;
            const char *dt = e.dtype && !strcmp(x->name, "ln_final.weight") ? e.dtype : dtype_name(x->dtype);
            size_t esz = !strcmp(dt, dtype_name(x->dtype)) ? dtype_size(x->dtype) : 8;
            size_t nbytes = (size_t)tensor_numel(x) * esz, off = data.n;
            b_printf(&h, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[", first ? "" : ",", nm, dt);
            first = 0;
            if (e.empty && !strcmp(x->name, e.empty)) {
                b_printf(&h, "0,%lld],\"data_offsets\":[%zu,%zu]}", (long long)x->shape[1], off, off);
                continue;
            }
            if (e.reshape && !strcmp(x->name, e.reshape)) {
                b_printf(&h, "%lld,1", (long long)tensor_numel(x));
            } else {
                for (int d = 0; d < x->ndim; d++) b_printf(&h, d ? ",%lld" : "%lld", (long long)x->shape[d]);
            }
            b_printf(&h, "],\"data_offsets\":[%zu,%zu]}", off, off + nbytes);
            if (esz == dtype_size(x->dtype)) b_put(&data, x->data, nbytes);
            else for (size_t k = 0; k < nbytes; k++) b_byte(&data, 0);
            if (e.poison && !strcmp(x->name, e.poison)) {
                uint8_t *p = data.p + off;
                if (x->dtype == CS_DT_F16) { p[0] = 0x00; p[1] = e.poison_inf ? 0x7c : 0x7e; }
                else { uint32_t v = e.poison_inf ? 0x7f800000u : 0x7fc00000u; memcpy(p, &v, 4); }
            }
        }
    }
    if (e.extra) {
        size_t off = data.n;
        char tmp[1024];
        snprintf(tmp, sizeof tmp, e.extra, off, off + e.extra_len);
        b_printf(&h, ",%s", tmp);
        for (size_t k = 0; k < e.extra_len; k++) b_byte(&data, 0);
    }
    b_str(&h, "}");
    buf f = {0};
    b_u64(&f, h.n);
    b_put(&f, h.p, h.n);
    b_put(&f, data.p, data.n);
    put(name, f.p, cut ? cut : f.n);
    b_free(&h);
    b_free(&data);
    b_free(&f);
}

static void make_models(void) {
    cs_tensor_table t;
    if (safetensors_open(g_model, &t) != CS_OK) {
        fprintf(stderr, "test_hostile: cannot read %s: %s\n", g_model, cs_last_error());
        exit(1);
    }
    model_variant("model-copy.safetensors", &t, (model_edit){0}, 0);
    model_variant("model-duplicate.safetensors", &t, (model_edit){.dup = "visual.ln_post.bias"}, 0);
    model_variant("model-block-renamed.safetensors", &t,
                  (model_edit){.rename_from = "visual.transformer.resblocks.2.attn.in_proj_weight",
                               .rename_to = "visual.transformer.resblocks.2.attn.in_proj_weightX"}, 0);
    model_variant("model-block-extra.safetensors", &t,
                  (model_edit){.extra = "\"visual.transformer.resblocks.8.ln_1.weight\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[%zu,%zu]}",
                               .extra_len = 4}, 0);
    model_variant("model-block-huge.safetensors", &t,
                  (model_edit){.extra = "\"visual.transformer.resblocks.99999.ln_1.weight\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[%zu,%zu]}",
                               .extra_len = 4}, 0);
    model_variant("model-extra.safetensors", &t,
                  (model_edit){.extra = "\"visual.extra.weight\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[%zu,%zu]}",
                               .extra_len = 4}, 0);
    model_variant("model-missing.safetensors", &t, (model_edit){.drop = "visual.ln_post.weight"}, 0);
    model_variant("model-shape.safetensors", &t,
                  (model_edit){.reshape = "visual.transformer.resblocks.3.mlp.c_fc.bias"}, 0);
    model_variant("model-nan.safetensors", &t, (model_edit){.poison = "visual.ln_post.bias"}, 0);
    model_variant("model-inf.safetensors", &t,
                  (model_edit){.poison = "token_embedding.weight", .poison_inf = 1}, 0);
    model_variant("model-i64.safetensors", &t, (model_edit){.dtype = "I64"}, 0);
    model_variant("model-cut.safetensors", &t, (model_edit){0}, 4 << 20);
    /* The zero-size case: a tensor at [x, x] where the next one starts. It
     * has a name the loaders skip, so the rest is the plain model. */
    model_variant("zero-size.safetensors", &t,
                  (model_edit){.extra = "\"text_model.embeddings.position_ids\":{\"dtype\":\"I64\",\"shape\":[1,0],\"data_offsets\":[%zu,%zu]}",
                               .extra_len = 0}, 0);
    model_variant("model-empty-dim.safetensors", &t, (model_edit){.empty = "token_embedding.weight"}, 0);
    tensors_free(&t);
}

static void make_safetensors_raw(void) {
    put("empty.safetensors", "", 0);
    put("short.safetensors", "\x08\0\0\0", 4);
    put("header-huge.safetensors", "\0\0\0\0\0\x01\0\0{}", 10);
    put("header-past-end.safetensors", "\0\x10\0\0\0\0\0\0{}", 10);
    struct { const char *file, *header; size_t data; } h[] = {
        {"not-json.safetensors", "{\"a\": ", 0},
        {"json-array.safetensors", "[1, 2]", 0},
        {"entry-string.safetensors", "{\"a\":\"x\"}", 0},
        {"no-dtype.safetensors", "{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4},
        {"dtype-q4.safetensors", "{\"w\":{\"dtype\":\"Q4\",\"shape\":[2],\"data_offsets\":[0,2]}}", 2},
        {"shape-negative.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4},
        {"shape-fraction.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4},
        {"shape-string.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[\"4\"],\"data_offsets\":[0,16]}}", 16},
        {"shape-overflow.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[4000000000000000,4000000000000000],\"data_offsets\":[0,4]}}", 4},
        {"dims9.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4},
        {"offsets-fraction.safetensors", "{\"w\":{\"dtype\":\"U8\",\"shape\":[128],\"data_offsets\":[1.5,129.5]}}", 160},
        {"offsets-negative.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", 8},
        {"offsets-outside.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8},
        {"offsets-reversed.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", 8},
        {"offsets-one.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4]}}", 8},
        {"size-mismatch.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,8]}}", 8},
        {"overlap.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12},
        {"duplicate-key.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8},
    };
    for (size_t i = 0; i < sizeof h / sizeof *h; i++) st_raw(h[i].file, h[i].header, h[i].data);
}

/* A HF folder: the golden one's weights (linked), a given config.json. */
static void hf_folder(const char *name, const char *config, const char *weights) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/%s", g_data, name);
    mkdir(dir, 0755);
    char path[1100];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if (weights) symlink(weights, path);
    if (config) {
        snprintf(path, sizeof path, "%s/%s/config.json", name, "");
        char rel[1100];
        snprintf(rel, sizeof rel, "%s/config.json", name);
        put_text(rel, config);
    }
}

static char *golden_text(const char *rel) {
    size_t n;
    char *p = (char *)slurp(golden_path(rel), &n);
    if (!p) return NULL;
    p = realloc(p, n + 1);
    p[n] = 0;
    return p;
}

static void make_hf(void) {
    const char *weights = golden_path("golden/tiny-vit/hf/model.safetensors");
    char *config = golden_text("golden/tiny-vit/hf/config.json");
    if (!config) return;
    /* Variants by text substitution of the vision section's head count. */
    char *vis = strstr(config, "\"vision_config\"");
    char *heads = vis ? strstr(vis, "\"num_attention_heads\"") : NULL;
    if (!heads) return;
    char *colon = strchr(heads, ':'), *end = colon + 1;
    while (*end == ' ') end++;
    while (*end >= '0' && *end <= '9') end++;
    const char *values[] = {"1e12", "\"8\"", "7"};
    const char *names[] = {"hf-heads-huge", "hf-heads-string", "hf-heads-7"};
    for (int i = 0; i < 3; i++) {
        buf b = {0};
        b_put(&b, config, (size_t)(colon + 1 - config));
        b_str(&b, values[i]);
        b_str(&b, end);
        b_byte(&b, 0);
        hf_folder(names[i], (const char *)b.p, weights);
        b_free(&b);
    }
    hf_folder("hf-bad-json", "{\"vision_config\": ", weights);
    {
        buf b = {0};
        b_str(&b, "{\"pad\": \"");
        for (int i = 0; i < (1 << 20); i++) b_byte(&b, 'x');
        b_str(&b, "\"}");
        b_byte(&b, 0);
        hf_folder("hf-config-huge", (const char *)b.p, weights);
        b_free(&b);
    }
    {
        char *act = strstr(config, "quick_gelu");
        buf b = {0};
        b_put(&b, config, (size_t)(act - config));
        b_str(&b, "gelu");
        b_str(&b, act + strlen("quick_gelu"));
        b_byte(&b, 0);
        hf_folder("hf-gelu", (const char *)b.p, weights);
        b_free(&b);
    }
    hf_folder("hf-fifo-config", NULL, weights);
    put_fifo("hf-fifo-config/config.json");
    hf_folder("hf-fifo-weights", config, NULL);
    put_fifo("hf-fifo-weights/model.safetensors");
    hf_folder("hf-fifo-vocab", NULL, NULL);
    put_fifo("hf-fifo-vocab/vocab.json");

    /* Weight variants of the HF file. */
    cs_tensor_table t;
    if (safetensors_open(weights, &t) != CS_OK) return;
    struct { const char *folder, *target, *shape; int add_openai; const char *drop; } v[] = {
        {"hf-degenerate", "visual_projection.weight", "[9000000000000000,0]", 0},
        {"hf-qproj-empty", "vision_model.encoder.layers.0.self_attn.q_proj.weight", "[0,64]", 0},
        {"hf-both-names", NULL, NULL, 1},
        {"hf-layer-gap", NULL, NULL, 0, "vision_model.encoder.layers.2."},
    };
    for (size_t k = 0; k < sizeof v / sizeof *v; k++) {
        buf h = {0}, data = {0};
        b_str(&h, "{");
        for (int i = 0; i < t.n; i++) {
            const cs_tensor *x = &t.items[i];
            size_t off = data.n;
            int hit = v[k].target && !strcmp(x->name, v[k].target);
            if (v[k].drop && !strncmp(x->name, v[k].drop, strlen(v[k].drop))) continue;
            b_printf(&h, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":", h.n > 1 ? "," : "", x->name,
                     dtype_name(x->dtype));
            if (hit) {
                b_printf(&h, "%s,\"data_offsets\":[%zu,%zu]}", v[k].shape, off, off);
                continue;
            }
            b_str(&h, "[");
            for (int d = 0; d < x->ndim; d++) b_printf(&h, d ? ",%lld" : "%lld", (long long)x->shape[d]);
            b_printf(&h, "],\"data_offsets\":[%zu,%zu]}", off, off + x->nbytes);
            b_put(&data, x->data, x->nbytes);
        }
        if (v[k].add_openai) {
            size_t off = data.n;
            const cs_tensor *x = tensors_find(&t, "vision_model.embeddings.patch_embedding.weight");
            b_printf(&h, ",\"visual.conv1.weight\":{\"dtype\":\"%s\",\"shape\":[", dtype_name(x->dtype));
            for (int d = 0; d < x->ndim; d++) b_printf(&h, d ? ",%lld" : "%lld", (long long)x->shape[d]);
            b_printf(&h, "],\"data_offsets\":[%zu,%zu]}", off, off + x->nbytes);
            b_put(&data, x->data, x->nbytes);
        }
        b_str(&h, "}");
        buf f = {0};
        b_u64(&f, h.n);
        b_put(&f, h.p, h.n);
        b_put(&f, data.p, data.n);
        char rel[256];
        hf_folder(v[k].folder, config, NULL);
        snprintf(rel, sizeof rel, "%s/model.safetensors", v[k].folder);
        put(rel, f.p, f.n);
        b_free(&h);
        b_free(&data);
        b_free(&f);
    }
    tensors_free(&t);

    /* Vocabulary folders. */
    char *merges = golden_text("golden/tiny-vit/hf/merges.txt");
    const char *vdirs[] = {"hf-vocab-list", "hf-vocab-negative", "hf-vocab-small", "hf-merges-bad"};
    const char *vocabs[] = {"[1, 2]", "{\"a\": -1}", "{\"a\": 0, \"b\": 1}", NULL};
    char *vocab = golden_text("golden/tiny-vit/hf/vocab.json");
    for (int i = 0; i < 4; i++) {
        hf_folder(vdirs[i], NULL, NULL);
        char rel[256];
        snprintf(rel, sizeof rel, "%s/vocab.json", vdirs[i]);
        put_text(rel, vocabs[i] ? vocabs[i] : vocab);
        snprintf(rel, sizeof rel, "%s/merges.txt", vdirs[i]);
        put_text(rel, i == 3 ? "#version: 0.2\ni n e\n" : (merges ? merges : ""));
    }
    free(vocab);
    free(merges);
    free(config);
}

/* ---- PyTorch archives */

static void make_pytorch(void) {
    size_t n;
    uint8_t *pt = slurp(golden_path("golden/tiny-vit/model.pt"), &n);
    if (!pt) return;
    put("empty.pt", "", 0);
    put_text("text.pt", "this is plain text, not a PyTorch file\n");
    put("cut.pt", pt, n / 2);
    put("cut-end.pt", pt, n - 1);
    cs_zip z;
    if (zip_open(&z, "model.pt", pt, n) == CS_OK) {
        /* the largest stored storage, one byte flipped */
        const cs_zip_entry *big = NULL;
        for (int i = 0; i < z.n; i++)
            if (strstr(z.entries[i].name, "/data/") && (!big || z.entries[i].size > big->size))
                big = &z.entries[i];
        uint8_t *copy = malloc(n);
        memcpy(copy, pt, n);
        copy[big->data_offset + big->size / 2] ^= 0x40;
        put("altered.pt", copy, n);
        free(copy);
        zip_close(&z);
    }
    free(pt);

    /* A small archive to corrupt field by field. */
    buf pkl = {0};
    pk_begin(&pkl);
    pk_op(&pkl, '}');
    pk_end(&pkl);
    zentry one[] = {{"archive/data.pkl", pkl.p, pkl.n, 0}};
    size_t local[2], central;
    buf a = {0};
    zip_build(&a, one, 1, local, &central);
    size_t eocd = a.n - 22;
    struct { const char *name; size_t at; uint32_t value; int width; } patches[] = {
        {"count-lies.pt", eocd + 8, 60000, 2},
        {"directory-outside.pt", eocd + 16, 0x7fffffff, 4},
        {"local-outside.pt", central + 42, 0x7fff0000, 4},
        {"encrypted.pt", central + 8, 1, 2},
        {"bzip2.pt", central + 10, 12, 2},
    };
    for (size_t i = 0; i < sizeof patches / sizeof *patches; i++) {
        uint8_t *c = malloc(a.n);
        memcpy(c, a.p, a.n);
        for (int k = 0; k < patches[i].width; k++) c[patches[i].at + k] = (uint8_t)(patches[i].value >> (8 * k));
        if (!strcmp(patches[i].name, "count-lies.pt")) {
            c[eocd + 10] = c[eocd + 8];
            c[eocd + 11] = c[eocd + 9];
        }
        put(patches[i].name, c, a.n);
        free(c);
    }
    b_free(&a);
    {
        zentry two[] = {{"archive/data.pkl", pkl.p, pkl.n, 0}, {"archive/data.pkl", pkl.p, pkl.n, 0}};
        zip_build(&a, two, 2, NULL, NULL);
        put("duplicate-entry.pt", a.p, a.n);
        b_free(&a);
        zentry other[] = {{"archive/other.pkl", pkl.p, pkl.n, 0}};
        zip_build(&a, other, 1, NULL, NULL);
        put("no-pickle.pt", a.p, a.n);
        b_free(&a);
        zentry be[] = {{"archive/data.pkl", pkl.p, pkl.n, 0}, {"archive/byteorder", "big", 3, 0}};
        zip_build(&a, be, 2, NULL, NULL);
        put("big-endian.pt", a.p, a.n);
        b_free(&a);
    }
    b_free(&pkl);

    /* Tensors: {"w": tensor viewing storage "0"} with variations. */
    struct { const char *file, *key; int64_t numel, offset, size, stride; size_t bytes; int deflate; } tv[] = {
        {"bomb.pt", "0", 64 << 20, 0, 64, 1, (size_t)256 << 20, 1},
        {"storage-missing.pt", "7", 16, 0, 16, 1, 64, 0},
        {"storage-small.pt", "0", 1000, 0, 16, 1, 64, 0},
        {"view-outside.pt", "0", 16, 0, 4, 8, 64, 0},
    };
    for (size_t i = 0; i < sizeof tv / sizeof *tv; i++) {
        buf p = {0};
        pk_begin(&p);
        pk_op(&p, '}');
        pk_op(&p, '(');
        pk_unicode(&p, "w");
        int64_t size = tv[i].size, stride = tv[i].stride;
        pk_tensor(&p, tv[i].key, tv[i].numel, tv[i].offset, 1, &size, &stride);
        pk_op(&p, 'u');
        pk_end(&p);
        uint8_t *zeros = calloc(1, tv[i].bytes);
        zentry st[] = {{"0", zeros, tv[i].bytes, tv[i].deflate}};
        pt_build(&a, &p, st, 1);
        put(tv[i].file, a.p, a.n);
        free(zeros);
        b_free(&a);
        b_free(&p);
    }

    /* Deflated entries with damage: build a normal archive, then patch. */
    {
        buf p = {0};
        pk_begin(&p);
        pk_op(&p, '}');
        pk_end(&p);
        uint8_t data[4096];
        for (size_t i = 0; i < sizeof data; i++) data[i] = (uint8_t)(i * 7);
        zentry st[] = {{"0", data, sizeof data, 1}};
        pt_build(&a, &p, st, 1);
        cs_zip zz;
        zip_open(&zz, "x", a.p, a.n);
        const cs_zip_entry *e = zip_find(&zz, "archive/data/0");
        /* the storage must be read: reference it from the pickle instead */
        uint64_t off = e->data_offset, comp = e->comp_size;
        zip_close(&zz);
        b_free(&a);
        buf q = {0};
        pk_begin(&q);
        pk_op(&q, '}');
        pk_op(&q, '(');
        pk_unicode(&q, "w");
        int64_t size = 1024, stride = 1;
        pk_tensor(&q, "0", 1024, 0, 1, &size, &stride);
        pk_op(&q, 'u');
        pk_end(&q);
        (void)off;
        (void)comp;
        pt_build(&a, &q, st, 1);
        zip_open(&zz, "x", a.p, a.n);
        e = zip_find(&zz, "archive/data/0");
        off = e->data_offset;
        comp = e->comp_size;
        size_t ce = 0; /* the central record of data/0 */
        for (size_t k = 0; k + 4 <= a.n; k++)
            if (!memcmp(a.p + k, "PK\x01\x02", 4) && !memcmp(a.p + k + 46, "archive/data/0", 14)) ce = k;
        zip_close(&zz);
        uint8_t *c = malloc(a.n);
        memcpy(c, a.p, a.n);
        memset(c + off, 0xff, comp);
        put("deflate-corrupt.pt", c, a.n);
        memcpy(c, a.p, a.n);
        c[ce + 16] ^= 1;
        put("deflate-crc.pt", c, a.n);
        memcpy(c, a.p, a.n);
        uint32_t big = 8192;
        memcpy(c + ce + 24, &big, 4);
        put("deflate-short.pt", c, a.n);
        memcpy(c, a.p, a.n);
        uint32_t huge = 4000000000u;
        memcpy(c + ce + 24, &huge, 4);
        put("ratio.pt", c, a.n);
        free(c);
        b_free(&a);
        b_free(&p);
        b_free(&q);
    }

    /* Pickles that are hostile in themselves. */
    struct { const char *file; const char *bytes; size_t len; } raw[] = {
        {"os-system.pt", "\x80\x02" "cos\nsystem\n" "X\x02\x00\x00\x00id" "\x85R.", 0},
        {"eval.pt", "\x80\x02" "cbuiltins\neval\n" "X\x01\x00\x00\x001" "\x85R.", 0},
        {"opcode.pt", "\x80\x02\xfe.", 0},
        {"no-stop.pt", "\x80\x02}", 0},
        {"underflow.pt", "\x80\x02s.", 0},
        {"memo.pt", "\x80\x02h\x05.", 0},
        {"string-huge.pt", "\x80\x02X\xff\xff\xff\xff" "abc", 0},
        {"protocol9.pt", "\x80\x09}.", 0},
        {"int.pt", "\x80\x02K\x07.", 0},
        {"empty-dict.pt", "\x80\x02}.", 0},
    };
    for (size_t i = 0; i < sizeof raw / sizeof *raw; i++) {
        buf p = {0};
        size_t len = raw[i].len;
        if (!len) {
            /* the strings above hold NULs: measure up to the final '.' or end */
            const char *s = raw[i].bytes;
            len = strlen(s);
            if (!strcmp(raw[i].file, "os-system.pt")) len = 2 + 11 + 7 + 3;
            if (!strcmp(raw[i].file, "eval.pt")) len = 2 + 15 + 6 + 3;
            if (!strcmp(raw[i].file, "string-huge.pt")) len = 2 + 5 + 3;
            if (!strcmp(raw[i].file, "protocol9.pt")) len = 4;
        }
        b_put(&p, raw[i].bytes, len);
        pt_build(&a, &p, NULL, 0);
        put(raw[i].file, a.p, a.n);
        b_free(&a);
        b_free(&p);
    }
    {
        buf p = {0};
        pk_begin(&p);
        pk_op(&p, ']');
        for (int i = 0; i < 100000; i++) pk_op(&p, 0x85); /* TUPLE1 */
        pk_end(&p);
        pt_build(&a, &p, NULL, 0);
        put("deep.pt", a.p, a.n);
        b_free(&a);
        b_free(&p);
    }
    {
        /* {"w": t, "w": t}: SETITEMS with one key twice */
        buf p = {0};
        pk_begin(&p);
        pk_op(&p, '}');
        pk_op(&p, '(');
        int64_t size = 4, stride = 1;
        for (int k = 0; k < 2; k++) {
            pk_unicode(&p, "w");
            pk_tensor(&p, "0", 4, 0, 1, &size, &stride);
        }
        pk_op(&p, 'u');
        pk_end(&p);
        uint8_t zeros[16] = {0};
        zentry st[] = {{"0", zeros, 16, 0}};
        pt_build(&a, &p, st, 1);
        put("duplicate-name.pt", a.p, a.n);
        b_free(&a);
        b_free(&p);
    }
    {
        /* size (4,) with stride (1, 1) */
        buf p = {0};
        pk_begin(&p);
        pk_op(&p, '}');
        pk_op(&p, '(');
        pk_unicode(&p, "w");
        pk_global(&p, "torch._utils", "_rebuild_tensor_v2");
        pk_op(&p, '(');
        pk_op(&p, '(');
        pk_unicode(&p, "storage");
        pk_global(&p, "torch", "FloatStorage");
        pk_unicode(&p, "0");
        pk_unicode(&p, "cpu");
        pk_int(&p, 4);
        pk_op(&p, 't');
        pk_op(&p, 'Q');
        pk_int(&p, 0);
        pk_op(&p, '(');
        pk_int(&p, 4);
        pk_op(&p, 't');
        pk_op(&p, '(');
        pk_int(&p, 1);
        pk_int(&p, 1);
        pk_op(&p, 't');
        pk_op(&p, 0x89);
        pk_global(&p, "collections", "OrderedDict");
        pk_op(&p, ')');
        pk_op(&p, 'R');
        pk_op(&p, 't');
        pk_op(&p, 'R');
        pk_op(&p, 'u');
        pk_end(&p);
        uint8_t zeros[16] = {0};
        zentry st[] = {{"0", zeros, 16, 0}};
        pt_build(&a, &p, st, 1);
        put("size-stride.pt", a.p, a.n);
        b_free(&a);
        b_free(&p);
    }
    {
        /* a storage type the reader does not know */
        buf p = {0};
        pk_begin(&p);
        pk_op(&p, '}');
        pk_op(&p, '(');
        pk_unicode(&p, "w");
        pk_global(&p, "torch._utils", "_rebuild_tensor_v2");
        pk_op(&p, '(');
        pk_op(&p, '(');
        pk_unicode(&p, "storage");
        pk_global(&p, "torch", "QuantStorage");
        pk_unicode(&p, "0");
        pk_unicode(&p, "cpu");
        pk_int(&p, 4);
        pk_op(&p, 't');
        pk_op(&p, 'Q');
        pk_op(&p, '.');
        uint8_t zeros[16] = {0};
        zentry st[] = {{"0", zeros, 16, 0}};
        pt_build(&a, &p, st, 1);
        put("storage-type.pt", a.p, a.n);
        b_free(&a);
        b_free(&p);
    }
}

/* ---- images */

static uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3]; }

static void png_chunk(buf *b, const char *type, const void *data, uint32_t n, int bad_crc) {
    uint8_t len[4] = {(uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};
    b_put(b, len, 4);
    size_t start = b->n;
    b_put(b, type, 4);
    b_put(b, data, n);
    uint32_t crc = (uint32_t)crc32(0, b->p + start, (uInt)(n + 4)) ^ (bad_crc ? 1u : 0u);
    uint8_t c[4] = {(uint8_t)(crc >> 24), (uint8_t)(crc >> 16), (uint8_t)(crc >> 8), (uint8_t)crc};
    b_put(b, c, 4);
}

static void png_file(const char *name, uint32_t w, uint32_t h, int bad_crc, int with_idat) {
    buf b = {0};
    b_put(&b, "\x89PNG\r\n\x1a\n", 8);
    uint8_t ihdr[13] = {(uint8_t)(w >> 24), (uint8_t)(w >> 16), (uint8_t)(w >> 8), (uint8_t)w,
                        (uint8_t)(h >> 24), (uint8_t)(h >> 16), (uint8_t)(h >> 8), (uint8_t)h,
                        8, 2, 0, 0, 0};
    png_chunk(&b, "IHDR", ihdr, 13, bad_crc);
    if (with_idat && (uint64_t)w * h <= 4096 * 4096) {
        size_t raw_n = (size_t)h * (1 + 3 * (size_t)w);
        uint8_t *raw = calloc(1, raw_n);
        uLongf cn = compressBound((uLong)raw_n);
        uint8_t *comp = malloc(cn);
        compress(comp, &cn, raw, (uLong)raw_n);
        png_chunk(&b, "IDAT", comp, (uint32_t)cn, 0);
        free(raw);
        free(comp);
    }
    png_chunk(&b, "IEND", "", 0, 0);
    put(name, b.p, b.n);
    b_free(&b);
}

static void make_images(void) {
    size_t n;
    uint8_t *jpg = slurp(g_image, &n);
    put("empty.jpg", "", 0);
    put_text("text.jpg", "not an image at all\n");
    put_text("anim.gif.jpg", "GIF89a\x01\x00\x01\x00");
    put_text("bmp.jpg", "BM\x36\x00\x00\x00");
    put("half.jpg", jpg, n / 2);
    put("header.jpg", jpg, 200);
    /* SOF dimensions patched: 10000x9999 and 0x0 */
    for (int k = 0; k < 2; k++) {
        uint8_t *c = malloc(n);
        memcpy(c, jpg, n);
        for (size_t i = 2; i + 9 < n; i++)
            if (c[i] == 0xff && (c[i + 1] == 0xc0 || c[i + 1] == 0xc2)) {
                uint16_t hh = k ? 0 : 9999, ww = k ? 0 : 10000;
                c[i + 5] = (uint8_t)(hh >> 8);
                c[i + 6] = (uint8_t)hh;
                c[i + 7] = (uint8_t)(ww >> 8);
                c[i + 8] = (uint8_t)ww;
                break;
            }
        put(k ? "zero-dims.jpg" : "huge-dims.jpg", c, n);
        free(c);
    }
    png_file("huge.png", 100000, 100000, 0, 0);
    png_file("big.png", 1500, 1000, 0, 1);
    png_file("zero-width.png", 0, 10, 0, 1);
    png_file("bad-crc.png", 16, 16, 1, 1);
    png_file("no-idat.png", 16, 16, 0, 0);
    {
        size_t pn;
        uint8_t *png = slurp(golden_path("images/chelsea.png"), &pn);
        if (png) put("half.png", png, pn / 2);
        free(png);
    }
    /* five images, the last truncated */
    mkdir(data_path("five"), 0755);
    const char *names[] = {"five/a.jpg", "five/b.jpg", "five/c.jpg", "five/d.jpg"};
    for (int i = 0; i < 4; i++) put(names[i], jpg, n);
    put("five/e.jpg", jpg, n / 2);
    mkdir(data_path("empty-folder"), 0755);
    free(jpg);
    (void)be32;
}

/* ---- npy, vocabularies, lists */

static void make_npy_and_text(void) {
    float emb[2 * 64], px[3 * 64 * 64] = {0};
    for (int i = 0; i < 2 * 64; i++) emb[i] = (float)((i * 37) % 11) / 11.0f - 0.5f;
    npy_raw("emb.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 64), }", emb, sizeof emb);
    npy_raw("pixels.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 64, 64), }", px, sizeof px);
    float bad[2 * 64];
    memcpy(bad, emb, sizeof bad);
    bad[3] = NAN;
    npy_raw("emb-nan.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 64), }", bad, sizeof bad);
    memcpy(bad, emb, sizeof bad);
    bad[0] = -INFINITY;
    npy_raw("emb-inf.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 64), }", bad, sizeof bad);
    npy_raw("emb-wrong.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 32), }", emb, 2 * 32 * 4);
    float *e256 = calloc(256 * 64, sizeof(float));
    for (int i = 0; i < 256 * 64; i++) e256[i] = (float)(i % 7) - 3.0f;
    npy_raw("emb256.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (256, 64), }", e256, 256 * 64 * 4);
    free(e256);
    float *e10k = calloc(10000 * 64, sizeof(float));
    for (int i = 0; i < 10000 * 64; i++) e10k[i] = (float)(i % 11) - 5.0f;
    npy_raw("emb10000.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (10000, 64), }", e10k, 10000 * 64 * 4);
    free(e10k);
    npy_raw("pixels-shape.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 8, 9), }", px, 3 * 8 * 9 * 4);
    px[5] = NAN;
    npy_raw("pixels-nan.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 64, 64), }", px, sizeof px);
    put_text("text.npy", "just text\n");
    put("npy-cut.npy", "\x93NUMPY\x01\x00\x76\x00{'descr'", 18);
    npy_raw("npy-short.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 64), }", emb, 100);
    npy_raw("npy-fortran.npy", "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 64), }", emb, sizeof emb);
    npy_raw("npy-be.npy", "{'descr': '>f4', 'fortran_order': False, 'shape': (2, 64), }", emb, sizeof emb);
    npy_raw("npy-complex.npy", "{'descr': '<c8', 'fortran_order': False, 'shape': (64,), }", emb, sizeof emb);
    npy_raw("npy-shape-bad.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (2, x), }", emb, sizeof emb);
    npy_raw("npy-shape-huge.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 2), }", emb, sizeof emb);
    {
        buf b = {0};
        b_put(&b, "\x93NUMPY\x09\x00\x10\x00{'descr': '<f4'}", 26);
        put("npy-v9.npy", b.p, b.n);
        b_free(&b);
    }

    put("empty.txt", "", 0);
    put_text("no-header.txt", "i n\nt h\n");
    put_text("header-only.txt", "#version: 0.2\n");
    {
        buf b = {0};
        b_str(&b, "#version: 0.2\n");
        for (int i = 0; i < 100; i++) b_str(&b, "a b\n");
        b_byte(&b, 0);
        put_text("few-merges.txt", (const char *)b.p);
        b_free(&b);
    }
    {
        /* the real vocabulary, uncompressed, with line 3 broken */
        size_t n;
        uint8_t *gz = slurp(g_vocab, &n);
        z_stream zs;
        memset(&zs, 0, sizeof zs);
        inflateInit2(&zs, 16 + MAX_WBITS);
        size_t cap = 4 << 20;
        uint8_t *text = malloc(cap);
        zs.next_in = gz;
        zs.avail_in = (uInt)n;
        zs.next_out = text;
        zs.avail_out = (uInt)cap;
        inflate(&zs, Z_FINISH);
        size_t tn = cap - zs.avail_out;
        inflateEnd(&zs);
        char *l2 = memchr(text, '\n', tn);
        char *l3 = memchr(l2 + 1, '\n', tn - (size_t)(l2 + 1 - (char *)text));
        char *sp = memchr(l3 + 1, ' ', 16);
        if (sp) *sp = '_';
        put("bad-merge.txt", text, tn);
        put("cut.txt.gz", gz, n / 2);
        free(text);
        free(gz);
    }
    put("fake.gz", "\x1f\x8bnot really gzip", 17);
    {
        /* 64 MB of zeros in 64 KB of gzip, over the vocabulary limit */
        z_stream zs;
        memset(&zs, 0, sizeof zs);
        deflateInit2(&zs, 1, Z_DEFLATED, 16 + MAX_WBITS, 9, Z_DEFAULT_STRATEGY);
        static uint8_t zeros[1 << 20];
        buf out = {0};
        uint8_t chunk[1 << 16];
        for (int i = 0; i < 64; i++) {
            zs.next_in = zeros;
            zs.avail_in = sizeof zeros;
            int flush = i == 63 ? Z_FINISH : Z_NO_FLUSH;
            do {
                zs.next_out = chunk;
                zs.avail_out = sizeof chunk;
                deflate(&zs, flush);
                b_put(&out, chunk, sizeof chunk - zs.avail_out);
            } while (zs.avail_out == 0);
        }
        deflateEnd(&zs);
        put("bomb.txt.gz", out.p, out.n);
        b_free(&out);
    }
    {
        buf b = {0};
        for (int i = 0; i < 200; i++) b_str(&b, "word ");
        b_byte(&b, 0);
        put_text("long-class.txt", (const char *)b.p);
        b_free(&b);
        FILE *f = fopen(data_path("huge-classes.txt"), "wb");
        for (int i = 0; i < (20 << 20) / 16; i++) fputs("class name here\n", f);
        fclose(f);
    }
    put_text("templates-bad.txt", "a photo of a thing.\n");
    const char *fifos[] = {"fifo.jpg", "fifo.txt", "fifo.txt.gz", "fifo.safetensors", "fifo.pt", "fifo.npy"};
    for (size_t i = 0; i < sizeof fifos / sizeof *fifos; i++) put_fifo(fifos[i]);
}

/* ------------------------------------------------------------------ running */

static void expand(const char *in, char *out, size_t n, const char *out_dir) {
    size_t o = 0;
    while (*in && o + 1 < n) {
        const char *rep = NULL;
        size_t skip = 0;
        struct { const char *key, *value; } keys[] = {
            {"{M}", g_model}, {"{V}", g_vocab}, {"{I}", g_image}, {"{D}", g_data}, {"{O}", out_dir},
        };
        for (size_t k = 0; k < sizeof keys / sizeof *keys; k++)
            if (!strncmp(in, keys[k].key, strlen(keys[k].key))) {
                rep = keys[k].value;
                skip = strlen(keys[k].key);
            }
        if (rep) {
            o += (size_t)snprintf(out + o, n - o, "%s", rep);
            in += skip;
        } else {
            out[o++] = *in++;
        }
    }
    out[o < n ? o : n - 1] = 0;
}

/* Split on spaces; {SP} is a space and {FF} the byte 0xff inside a word,
 * {FSIZE} (a word of its own) asks for a 1 KB file-size limit. */
static int split(char *s, char **argv, int max, int *fsize) {
    int n = 0;
    *fsize = 0;
    for (char *tok = strtok(s, " "); tok && n < max - 1; tok = strtok(NULL, " ")) {
        if (!strcmp(tok, "{FSIZE}")) {
            *fsize = 1;
            continue;
        }
        char *w = tok, *r = tok;
        while (*r) {
            if (!strncmp(r, "{SP}", 4)) { *w++ = ' '; r += 4; }
            else if (!strncmp(r, "{FF}", 4)) { *w++ = (char)0xff; r += 4; }
            else *w++ = *r++;
        }
        *w = 0;
        argv[n++] = tok;
    }
    argv[n] = NULL;
    return n;
}

/* Regular files left anywhere under dir (temporaries included). */
static int count_files(const char *dir, char *first, size_t n) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int count = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(path, &st) != 0) continue;
        if (S_ISDIR(st.st_mode)) {
            count += count_files(path, first, n);
        } else {
            if (!count && !first[0]) snprintf(first, n, "%s", path);
            count++;
        }
    }
    closedir(d);
    return count;
}

typedef struct result {
    int exit_code; /* -1: killed */
    long rss_mb;
    double seconds;
    int timed_out;
} result;

/* Start the tool for case c; its stderr goes to err_path. */
static pid_t spawn_case(const hcase *c, const char *out_dir, const char *err_path) {
    char line[8192];
    expand(c->args, line, sizeof line, out_dir);
    char *argv[128];
    int fsize;
    argv[0] = (char *)getenv("CS_TOOL");
    split(line, argv + 1, 127, &fsize);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, 2);
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        if (fsize) {
            struct rlimit rl = {1024, 1024};
            signal(SIGXFSZ, SIG_IGN);
            setrlimit(RLIMIT_FSIZE, &rl);
        }
        execv(argv[0], argv);
        _exit(127);
    }
    return pid;
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static result run_case(const hcase *c, const char *out_dir, const char *err_path) {
    result r = {0};
    double start = now_s();
    pid_t pid = spawn_case(c, out_dir, err_path);
    int status = 0;
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    while (wait4(pid, &status, WNOHANG, &ru) != pid) {
        if (now_s() - start > DEFAULT_SECONDS) {
            kill(pid, SIGKILL);
            wait4(pid, &status, 0, &ru);
            r.timed_out = 1;
            break;
        }
        usleep(1000);
    }
    r.seconds = now_s() - start;
    r.rss_mb = ru.ru_maxrss / 1024;
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return r;
}

static void case_paths(const hcase *c, char *out_dir, char *err_path, size_t n) {
    snprintf(out_dir, n, "%s/%s", g_out_dir, c->name);
    mkdir(out_dir, 0755);
    snprintf(err_path, n, "%s/%s.stderr", g_out_dir, c->name);
}

static void check_result(const hcase *c, result r) {
    char out_dir[600], err_path[600];
    snprintf(out_dir, sizeof out_dir, "%s/%s", g_out_dir, c->name);
    snprintf(err_path, sizeof err_path, "%s/%s.stderr", g_out_dir, c->name);
    char err[4096] = "";
    FILE *f = fopen(err_path, "r");
    size_t got = f ? fread(err, 1, sizeof err - 1, f) : 0;
    if (f) fclose(f);
    err[got] = 0;
    int lines = 0;
    for (char *p = err; *p; p++) lines += *p == '\n';
    char *nl = strchr(err, '\n');
    if (nl && lines == 1) *nl = 0;
    int rss_bound = c->rss_mb ? c->rss_mb * (SANITIZED ? 3 : 1) : DEFAULT_RSS_MB;
    char left[2048] = "";
    int counted = !(c->flags & OUTPUT_OK) || c->files;
    int files = counted ? count_files(out_dir, left, sizeof left) : 0, want_files = counted ? c->files : 0;
    int ok = !r.timed_out && r.exit_code == c->exit_code &&
             (c->exit_code == 0 ? lines == 0 : lines == 1) && strstr(err, c->fragment) &&
             files == want_files && r.rss_mb <= rss_bound;
    CHECK_MSG(ok, "case %s: exit %d (want %d)%s, %d stderr line(s) '%s' (want '%s'), %d file(s) left (want %d)%s%s, "
              "%ld MB (bound %d), %.2f s", c->name, r.exit_code, c->exit_code,
              r.timed_out ? " TIMED OUT" : "", lines, err, c->fragment, files, want_files, files ? ": " : "", left,
              r.rss_mb, rss_bound, r.seconds);
    if (getenv("CS_HOSTILE_VERBOSE"))
        fprintf(stderr, "%-28s exit %d %6.2f s %5ld MB  %s\n", c->name, r.exit_code, r.seconds, r.rss_mb, err);
}

/* Run the selected cases two at a time (the CI machine has two cores);
 * each is timed and killed past the time bound. */
#define SLOTS 2
static void run_all(const char *only) {
    struct { pid_t pid; int i; double start; } slot[SLOTS] = {{0}};
    int next = 0, running = 0;
    for (;;) {
        while (running < SLOTS && next < N_CASES) {
            int i = next++;
            if (only && !strstr(k_cases[i].name, only)) continue;
            char out_dir[600], err_path[600];
            case_paths(&k_cases[i], out_dir, err_path, sizeof out_dir);
            for (int k = 0; k < SLOTS; k++)
                if (!slot[k].pid) {
                    slot[k].i = i;
                    slot[k].start = now_s();
                    slot[k].pid = spawn_case(&k_cases[i], out_dir, err_path);
                    running++;
                    break;
                }
        }
        if (!running) return;
        int status;
        struct rusage ru;
        memset(&ru, 0, sizeof ru);
        pid_t pid = wait4(-1, &status, WNOHANG, &ru);
        for (int k = 0; k < SLOTS; k++) {
            if (!slot[k].pid) continue;
            int done = pid == slot[k].pid, late = !done && now_s() - slot[k].start > DEFAULT_SECONDS;
            if (late) {
                kill(slot[k].pid, SIGKILL);
                wait4(slot[k].pid, &status, 0, &ru);
            }
            if (!done && !late) continue;
            result r = {WIFEXITED(status) ? WEXITSTATUS(status) : -1, ru.ru_maxrss / 1024,
                        now_s() - slot[k].start, late};
            check_result(&k_cases[slot[k].i], r);
            slot[k].pid = 0;
            running--;
        }
        if (pid <= 0) usleep(1000);
    }
}

/* Run explain once for "cat" (filling the embedding cache), then turn every
 * cache entry into a FIFO: the fifo-cache-entry case must not block on it. */
static void plant_cache_fifos(void) {
    hcase warm = {"warm-cache", "", "explain --quiet --model {M} --vocab {V} --image {I} --classes cat -o {O} --no-png --npy", 0, ""};
    char out_dir[600], err[600], dir[600];
    snprintf(out_dir, sizeof out_dir, "%s/warm", g_tmp);
    snprintf(err, sizeof err, "%s/warm.stderr", g_tmp);
    result r = run_case(&warm, out_dir, err);
    CHECK_MSG(r.exit_code == 0, "warming the cache failed (exit %d)", r.exit_code);
    snprintf(dir, sizeof dir, "%s/clip-surgery/embeddings", getenv("XDG_CACHE_HOME"));
    DIR *d = opendir(dir);
    struct dirent *e, *f;
    int planted = 0;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char sub[1200];
        snprintf(sub, sizeof sub, "%s/%s", dir, e->d_name);
        DIR *s = opendir(sub);
        while (s && (f = readdir(s))) {
            if (f->d_name[0] == '.') continue;
            char path[2400];
            snprintf(path, sizeof path, "%s/%s", sub, f->d_name);
            unlink(path);
            planted += mkfifo(path, 0644) == 0;
        }
        if (s) closedir(s);
    }
    if (d) closedir(d);
    CHECK_MSG(planted > 0, "no cache entry to replace with a FIFO under %s", dir);
}

/* ------------------------------------------------------------------ README */

static void print_readme(FILE *f) {
    fprintf(f, "# Hostile-input corpus\n\n"
               "Generated at test time by `tests/test_hostile.c` (from a few lines of code each, or by\n"
               "corrupting the golden tiny models), so no binary file is kept here. Each case runs the tool\n"
               "and checks the exit code (2 bad input, 1 runtime failure), exactly one line on stderr\n"
               "containing the fragment, no file left in the output folder, peak RSS under a bound (%d MB\n"
               "unless given; x3 under ASan) and a finish within %d s. This file is checked against the\n"
               "table: regenerate it with `build/test_hostile --readme > tests/hostile/README.md`.\n\n"
               "| case | input | exit | message fragment |\n|---|---|---|---|\n",
            400, 20);
    for (int i = 0; i < N_CASES; i++) {
        const hcase *c = &k_cases[i];
        fprintf(f, "| `%s` | %s%s | %d | %s%s%s |\n", c->name, c->what,
                c->rss_mb ? "" : "", c->exit_code, c->fragment[0] ? "`" : "",
                c->fragment[0] ? c->fragment : "(succeeds)", c->fragment[0] ? "`" : "");
    }
}

static void check_readme(void) {
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/hostile/README.md", CS_SOURCE_DIR);
    size_t n;
    char *have = (char *)slurp(path, &n);
    char *want = NULL;
    size_t wn = 0;
    FILE *m = open_memstream(&want, &wn);
    print_readme(m);
    fclose(m);
    CHECK_MSG(have && n == wn && !memcmp(have, want, n),
              "tests/hostile/README.md is out of date: build/test_hostile --readme > tests/hostile/README.md");
    free(have);
    free(want);
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "--readme")) {
        print_readme(stdout);
        return 0;
    }
    check_readme();
    /* Names unique, at least 150 cases. */
    int unique = 1;
    for (int i = 0; i < N_CASES; i++)
        for (int j = i + 1; j < N_CASES; j++)
            if (!strcmp(k_cases[i].name, k_cases[j].name)) {
                fprintf(stderr, "case %s appears twice\n", k_cases[i].name);
                unique = 0;
            }
    CHECK(unique);
    CHECK_MSG(N_CASES >= 150, "%d cases", N_CASES);

    golden_shared_dir();
    tool_tmp_init("cs_hostile");
    snprintf(g_data, sizeof g_data, "%s/data", g_tmp);
    mkdir(g_data, 0755);
    static char out[512], home[512], cache[512];
    snprintf(out, sizeof out, "%s/out", g_tmp);
    mkdir(out, 0755);
    g_out_dir = out;
    snprintf(home, sizeof home, "%s/home", g_tmp);
    snprintf(cache, sizeof cache, "%s/cache", g_tmp);
    mkdir(home, 0755);
    mkdir(cache, 0755);
    setenv("HOME", home, 1);
    setenv("XDG_CACHE_HOME", cache, 1);
    static char model[1024], vocab[1024], image[1024];
    snprintf(model, sizeof model, "%s", golden_path("golden/tiny-vit/model.safetensors"));
    snprintf(vocab, sizeof vocab, "%s", golden_path("clip/bpe_simple_vocab_16e6.txt.gz"));
    snprintf(image, sizeof image, "%s", golden_path("images/grace_hopper.jpg"));
    g_model = model;
    g_vocab = vocab;
    g_image = image;

    make_safetensors_raw();
    make_models();
    make_hf();
    make_pytorch();
    make_images();
    make_npy_and_text();
    /* FIFOs where the cache entries of "cat" are: computed once, then planted. */
    plant_cache_fifos();
    run_all(getenv("CS_HOSTILE_CASE"));
    return test_finish();
}
