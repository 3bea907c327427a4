"""ctypes declarations of libclip_surgery's public header (include/clip_surgery.h).

Only what the package calls is declared. Structs mirror the header field by
field (same order, same C types), so a change there must be made here too
(tests/test_binding.py compares their sizes and offsets with the header's).
"""
import ctypes
import ctypes.util
import os
from ctypes import (POINTER, Structure, c_char_p, c_float, c_int, c_int32, c_int64,
                    c_size_t, c_uint8, c_void_p)

_LIB_NAME = "libclip_surgery.so"


def _candidates():
    """Where the library may be, in the order it is looked for."""
    env = os.environ.get("CLIP_SURGERY_LIB")
    if env:
        # An explicit choice is the only candidate: a wrong path is an error,
        # not a silent fallback to another copy.
        return [os.path.join(env, _LIB_NAME) if os.path.isdir(env) else env]
    here = os.path.dirname(os.path.abspath(__file__))
    out = [os.path.join(here, _LIB_NAME)]
    # Imported from the source tree: the CMake build folder beside python/.
    out.append(os.path.join(here, "..", "..", "build", _LIB_NAME))
    found = ctypes.util.find_library("clip_surgery")  # after `cmake --install`
    if found:
        out.append(found)
    return out


def _load():
    tried = []
    for path in _candidates():
        if os.path.sep in path and not os.path.exists(path):
            tried.append(path + " (absent)")
            continue
        try:
            return ctypes.CDLL(path)
        except OSError as e:
            tried.append(f"{path} ({e})")
    raise ImportError("clip_surgery: libclip_surgery.so not found; build it with CMake and set "
                      "CLIP_SURGERY_LIB to its path. Tried: " + "; ".join(tried))


lib = _load()

f32p = POINTER(c_float)
i32p = POINTER(c_int32)
u8p = POINTER(c_uint8)


class Image(Structure):
    _fields_ = [("width", c_int), ("height", c_int), ("rgb", u8p), ("source", c_void_p)]


class Input(Structure):
    _fields_ = [("image", POINTER(Image)), ("pixels", f32p), ("pixels_resolution", c_int),
                ("width", c_int), ("height", c_int)]


class Config(Structure):
    _fields_ = [(n, c_int) for n in ("embed_dim", "vision_kind", "image_resolution",
                                     "vision_width", "vision_layers")] + \
               [("resnet_layers", c_int * 4)] + \
               [(n, c_int) for n in ("vision_heads", "patch_size", "grid", "context_length",
                                     "vocab_size", "text_width", "text_heads", "text_layers")]


DOWNLOAD_FN = ctypes.CFUNCTYPE(None, c_void_p, c_char_p, c_int64, c_int64)


class LoadOptions(Structure):
    _fields_ = [("cache_dir", c_char_p), ("download", c_int), ("progress", DOWNLOAD_FN),
                ("progress_ctx", c_void_p), ("vocab", c_char_p), ("surgery_blocks", c_int),
                ("resnet_normalize_v", c_int), ("precision", c_int), ("embedding_cache", c_int)]


class ExplainOptions(Structure):
    _fields_ = [("resolution", c_int), ("method", c_int), ("redundant", c_int), ("no_maps", c_int)]


class ExplainResult(Structure):
    _fields_ = [(n, c_int) for n in ("resolution", "n_tokens", "dim", "n_classes", "width",
                                     "height")] + \
               [("pixels", f32p), ("tokens", f32p), ("similarity", f32p), ("maps", f32p),
                ("redundant", c_int), ("redundant_features", f32p)]


class PointsOptions(Structure):
    _fields_ = [("resolution", c_int), ("threshold", c_float), ("redundant", c_int),
                ("combined", c_int)]


class PointsResult(Structure):
    _fields_ = [("width", c_int), ("height", c_int), ("n_targets", c_int),
                ("offsets", POINTER(c_int)), ("points", i32p), ("labels", u8p),
                ("redundant", c_int)]


class ClassifyOptions(Structure):
    _fields_ = [("resolution", c_int), ("method", c_int)]


class SegmentOptions(Structure):
    _fields_ = [("resolution", c_int), ("method", c_int), ("window", c_int), ("stride", c_int),
                ("short_side", c_int), ("max_long_side", c_int), ("bg_thresh", c_float),
                ("logit_scale", c_float), ("bg_class", c_int), ("pamr_steps", c_int),
                ("name_logits", c_int), ("area_thresh", c_float)]


class SegmentResult(Structure):
    _fields_ = [(n, c_int) for n in ("width", "height", "n_classes", "n_tokens", "dim")] + \
               [("tokens", f32p), ("cosine", f32p), ("logits", f32p), ("scores", f32p),
                ("labels", u8p), ("logit_scale", c_float)]


class WordsOptions(Structure):
    _fields_ = [("resolution", c_int), ("group", c_int)]


class WordsUnit(Structure):
    _fields_ = [("text", c_void_p), ("start", c_int), ("end", c_int), ("first_token", c_int),
                ("n_tokens", c_int), ("cosine", c_float), ("rank", c_int)]


class WordsResult(Structure):
    _fields_ = [("n_tokens", c_int), ("dim", c_int), ("ids", i32p), ("token_features", f32p),
                ("n_units", c_int), ("units", POINTER(WordsUnit)), ("ranking", POINTER(c_int)),
                ("top", c_int * 3), ("similarity", f32p), ("maps", f32p), ("height", c_int),
                ("width", c_int), ("resolution", c_int), ("n_image_tokens", c_int),
                ("image_tokens", f32p), ("truncated", c_int), ("dropped", c_int)]


class SamLoadOptions(Structure):
    _fields_ = [("decoder_heads", c_int)]


class SamEmbedding(Structure):
    _fields_ = [(n, c_int) for n in ("dim", "grid", "image_w", "image_h", "input_w",
                                     "input_h")] + [("data", f32p)]


class SamPrompt(Structure):
    _fields_ = [("n_points", c_int), ("points", f32p), ("labels", i32p), ("box", f32p),
                ("mask_input", f32p), ("multimask", c_int)]


class SamResult(Structure):
    _fields_ = [("n_masks", c_int), ("width", c_int), ("height", c_int), ("lowres", c_int),
                ("masks", u8p), ("logits", f32p), ("iou", f32p), ("lowres_logits", f32p)]


def _declare(name, restype, *argtypes):
    fn = getattr(lib, name)
    fn.restype = restype
    fn.argtypes = list(argtypes)


_S = c_int  # cs_status
_P = c_void_p  # opaque handles: cs_model *, cs_classes *, cs_tokenizer *, cs_sam *
for _name, _res, _args in [
    ("cs_last_error", c_char_p, ()),
    ("cs_status_name", c_char_p, (c_int,)),
    ("cs_version", c_char_p, ()),
    ("cs_free", None, (c_void_p,)),
    ("cs_set_threads", None, (c_int,)),
    ("cs_get_threads", c_int, ()),
    ("cs_precision_fast", c_int, (c_int,)),
    ("cs_image_load", _S, (c_char_p, c_void_p, POINTER(Image))),
    ("cs_image_free", None, (POINTER(Image),)),
    ("cs_tokenizer_load", _S, (c_char_p, POINTER(_P))),
    ("cs_tokenizer_free", None, (_P,)),
    ("cs_tokenize_bytes", _S, (_P, c_char_p, c_size_t, c_int, c_int, i32p, POINTER(c_int))),
    ("cs_resolve_vocab", _S, (c_char_p, c_int, c_void_p, c_void_p, c_char_p, c_size_t)),
    ("cs_load_defaults", LoadOptions, ()),
    ("cs_load", _S, (c_char_p, POINTER(LoadOptions), POINTER(_P))),
    ("cs_model_free", None, (_P,)),
    ("cs_model_config", POINTER(Config), (_P,)),
    ("cs_model_num_tokens", c_int, (_P, c_int)),
    ("cs_model_tokenizer", _S, (_P, POINTER(_P))),
    ("cs_method_parse", _S, (c_char_p, POINTER(c_int))),
    ("cs_method_vision_mode", c_int, (c_int,)),
    ("cs_encode_images", _S, (_P, f32p, c_int, c_int, c_int, f32p)),
    ("cs_encode_text", _S, (_P, i32p, c_int, c_int, f32p)),
    ("cs_feature_surgery", _S, (f32p, c_int, f32p, c_int, c_int, f32p, f32p)),
    ("cs_similarity", _S, (f32p, c_int, f32p, c_int, c_int, f32p)),
    ("cs_similarity_maps", _S, (f32p, c_int, c_int, c_int, c_int, f32p)),
    ("cs_classes_parse", _S, (c_char_p, POINTER(_P))),
    ("cs_classes_from_names", _S, (POINTER(c_char_p), c_int, POINTER(_P))),
    ("cs_classes_from_embeddings", _S, (f32p, c_int, c_int, POINTER(c_char_p), POINTER(_P))),
    ("cs_classes_new", _S, (POINTER(_P),)),
    ("cs_classes_add", _S, (_P, POINTER(c_char_p), c_int)),
    ("cs_classes_free", None, (_P,)),
    ("cs_classes_set_templates", _S, (_P, c_char_p)),
    ("cs_classes_set_template_list", _S, (_P, POINTER(c_char_p), c_int)),
    ("cs_classes_embed", _S, (_P, _P, c_void_p, c_void_p)),
    ("cs_classes_empty_prompt", _S, (_P, _P, POINTER(f32p))),
    ("cs_classes_count", c_int, (_P,)),
    ("cs_classes_name", c_char_p, (_P, c_int)),
    ("cs_classes_num_names", c_int, (_P,)),
    ("cs_classes_name_text", c_char_p, (_P, c_int)),
    ("cs_classes_name_class", c_int, (_P, c_int)),
    ("cs_classes_dim", c_int, (_P,)),
    ("cs_classes_embeddings", f32p, (_P,)),
    ("cs_explain_defaults", ExplainOptions, ()),
    ("cs_explain", _S, (_P, _P, POINTER(Input), c_int, POINTER(ExplainOptions),
                        POINTER(ExplainResult))),
    ("cs_explain_result_free", None, (POINTER(ExplainResult),)),
    ("cs_points_defaults", PointsOptions, ()),
    ("cs_points", _S, (_P, _P, POINTER(Input), POINTER(PointsOptions), POINTER(PointsResult))),
    ("cs_points_result_free", None, (POINTER(PointsResult),)),
    ("cs_classify_defaults", ClassifyOptions, ()),
    ("cs_classify", _S, (_P, _P, POINTER(Image), c_int, POINTER(ClassifyOptions), f32p)),
    ("cs_segment_defaults", SegmentOptions, ()),
    ("cs_segment_arrays", _S, (_P, _P, POINTER(Input), c_int, POINTER(SegmentOptions),
                               POINTER(SegmentResult))),
    ("cs_segment_result_free", None, (POINTER(SegmentResult),)),
    ("cs_words_defaults", WordsOptions, ()),
    ("cs_words", _S, (_P, POINTER(Input), POINTER(c_char_p), c_int, POINTER(WordsOptions),
                      POINTER(WordsResult))),
    ("cs_words_result_free", None, (POINTER(WordsResult),)),
    ("cs_sam_resolve", _S, (c_char_p, c_char_p, c_int, c_void_p, c_void_p, c_char_p, c_size_t)),
    ("cs_sam_load", _S, (c_char_p, POINTER(SamLoadOptions), POINTER(_P))),
    ("cs_sam_free", None, (_P,)),
    ("cs_sam_encode", _S, (_P, POINTER(Image), POINTER(SamEmbedding))),
    ("cs_sam_embedding_free", None, (POINTER(SamEmbedding),)),
    ("cs_sam_predict", _S, (_P, POINTER(SamEmbedding), POINTER(SamPrompt), POINTER(SamResult))),
    ("cs_sam_result_free", None, (POINTER(SamResult),)),
]:
    _declare(_name, _res, *_args)

CS_NUM_DEFAULT_TEMPLATES = 85
default_templates = [t.decode() for t in
                     (c_char_p * CS_NUM_DEFAULT_TEMPLATES).in_dll(lib, "cs_default_templates")]

STATUS_ARG, STATUS_SHAPE, STATUS_TOO_LONG, STATUS_UTF8 = 4, 5, 9, 10
STATUS_IO, STATUS_MISSING = 1, 6
PATH_MAX = 4096
