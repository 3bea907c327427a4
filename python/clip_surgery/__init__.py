"""CLIP Surgery in Python: a thin ctypes binding of libclip_surgery.

    import clip_surgery as cs
    m = cs.load("ViT-B/16")
    maps = m.explain("photo.jpg", ["person", "bench"])   # [H, W, C] in [0, 1]

Arrays are NumPy arrays (float32 unless said otherwise). Every computation
runs in the C library: the GIL is released during the calls, and a model
serializes its own calls with a lock (it reuses one workspace). Failures
raise clip_surgery.Error carrying the library's one-line message.
"""
import ctypes
import os
import threading
import warnings
from ctypes import POINTER, byref, c_char_p, c_int, c_void_p
from dataclasses import dataclass

import numpy as np

from . import _native as _n
from ._native import lib as _lib

__all__ = ["Error", "InvalidArgument", "Model", "Classes", "Sam", "SamEmbedding", "load",
           "load_sam", "tokenize", "feature_surgery", "similarity", "similarity_maps",
           "default_templates", "set_num_threads", "get_num_threads", "__version__"]

__version__ = _lib.cs_version().decode()
default_templates = tuple(_n.default_templates)  # the method's 85 prompt templates


class Error(RuntimeError):
    """A failure reported by the library: str(e) is its one-line message,
    e.status the status name (cs_status_name: "missing", "too long", ...)."""

    def __init__(self, message, status=None):
        super().__init__(message)
        self.status = status


class InvalidArgument(Error, ValueError):
    """Bad argument, shape, text too long for the context or invalid UTF-8."""


def _raise(status):
    msg = (_lib.cs_last_error() or b"").decode("utf-8", "replace")
    name = _lib.cs_status_name(status).decode()
    cls = InvalidArgument if status in (_n.STATUS_ARG, _n.STATUS_SHAPE, _n.STATUS_TOO_LONG,
                                        _n.STATUS_UTF8) else Error
    raise cls(msg or name, name)


def _check(status):
    if status != 0:
        _raise(status)


def _bytes(s, what):
    if isinstance(s, bytes):
        return s
    if isinstance(s, os.PathLike):
        s = os.fspath(s)
    if not isinstance(s, str):
        raise TypeError(f"{what}: expected a string, got {type(s).__name__}")
    return s.encode("utf-8")


def _strings(texts, what):
    """A C array of UTF-8 strings (kept alive by the returned tuple)."""
    enc = [_bytes(t, what) for t in texts]
    return (c_char_p * max(len(enc), 1))(*enc), enc


def _f32(a, what, ndim=None):
    a = np.ascontiguousarray(a, dtype=np.float32)
    if ndim is not None and a.ndim not in ndim:
        raise InvalidArgument(f"{what}: expected {' or '.join(map(str, ndim))} dimensions, "
                              f"got shape {a.shape}", "wrong shape")
    return a


def _ptr(a, ctype=ctypes.c_float):
    return a.ctypes.data_as(POINTER(ctype))


def _copy(ptr, shape, dtype=np.float32):
    """A NumPy copy of n library-owned values (before the owner is freed)."""
    if not ptr or 0 in shape:
        return None if not ptr else np.zeros(shape, dtype)
    return np.ctypeslib.as_array(ptr, shape=tuple(shape)).astype(dtype, copy=True)


def set_num_threads(n):
    """Threads of the library's BLAS and loops (one OpenMP pool)."""
    _lib.cs_set_threads(int(n))


def get_num_threads():
    return _lib.cs_get_threads()


# ------------------------------------------------------------------ tokenizer
class _Tokenizer:
    def __init__(self, path):
        h = c_void_p()
        _check(_lib.cs_tokenizer_load(_bytes(path, "vocab"), byref(h)))
        self.handle = h
        self.lock = threading.Lock()

    def __del__(self):
        if getattr(self, "handle", None):
            _lib.cs_tokenizer_free(self.handle)


_tokenizers = {}
_tokenizers_lock = threading.Lock()


def _resolve_vocab(cache_dir=None, download=True):
    out = ctypes.create_string_buffer(_n.PATH_MAX)
    _check(_lib.cs_resolve_vocab(_bytes(cache_dir, "cache_dir") if cache_dir else None,
                                 int(bool(download)), None, None, out, len(out)))
    return out.value.decode()


def _tokenizer(vocab):
    path = os.fspath(vocab) if vocab is not None else _resolve_vocab()
    with _tokenizers_lock:
        if path not in _tokenizers:
            _tokenizers[path] = _Tokenizer(path)
        return _tokenizers[path]


def _tokenize_with(handle, lock, texts, context_length, truncate):
    if isinstance(texts, (str, bytes)):
        texts = [texts]
    ctx = int(context_length)
    ids = np.zeros((len(texts), ctx), np.int32)
    n = c_int()
    with lock:
        for i, t in enumerate(texts):
            b = _bytes(t, "texts")  # by length: a text may hold NUL
            _check(_lib.cs_tokenize_bytes(handle, b, len(b), ctx, int(bool(truncate)),
                                          _ptr(ids[i], ctypes.c_int32), byref(n)))
    return ids.astype(np.int64)


def tokenize(texts, context_length=77, truncate=False, vocab=None):
    """Token ids [n, context_length] (int64, zero padded) exactly as
    clip.tokenize gives them. A text longer than the context raises
    InvalidArgument unless truncate. vocab: the BPE vocabulary (.txt.gz or a
    Hugging Face folder); default ~/.cache/clip/bpe_simple_vocab_16e6.txt.gz,
    downloaded when absent."""
    tok = _tokenizer(vocab)
    return _tokenize_with(tok.handle, tok.lock, texts, context_length, truncate)


# ------------------------------------------------------------------ method building blocks
def _tokens_batch(tokens, what):
    t = _f32(tokens, what, (2, 3))
    return (t, False) if t.ndim == 3 else (t[None], True)


def feature_surgery(tokens, class_emb, redundant=None):
    """Feature surgery of image tokens [T, D] or [B, T, D] (normalized here)
    against class embeddings [C, D]: similarity [.., T, C]. redundant None:
    the class-weighted redundant features (identically zero with C = 1);
    redundant [D]: the explicit mode (e.g. the empty prompt's embedding)."""
    t, single = _tokens_batch(tokens, "tokens")
    c = _f32(class_emb, "class_emb", (2,))
    B, T, D = t.shape
    r = None
    if redundant is not None:
        r = _f32(redundant, "redundant").reshape(-1)
        if r.size != D:
            raise InvalidArgument(f"redundant: expected {D} values, got {r.size}", "wrong shape")
    out = np.empty((B, T, c.shape[0]), np.float32)
    for b in range(B):
        _check(_lib.cs_feature_surgery(_ptr(t[b]), T, _ptr(c), c.shape[0], D,
                                       None if r is None else _ptr(r), _ptr(out[b])))
    return out[0] if single else out


def similarity(tokens, class_emb):
    """Plain CLIP's cosine similarity of tokens [.., T, D] (normalized here)
    with class embeddings [C, D] (used as given): [.., T, C]."""
    t, single = _tokens_batch(tokens, "tokens")
    c = _f32(class_emb, "class_emb", (2,))
    B, T, D = t.shape
    out = np.empty((B, T, c.shape[0]), np.float32)
    for b in range(B):
        _check(_lib.cs_similarity(_ptr(t[b]), T, _ptr(c), c.shape[0], D, _ptr(out[b])))
    return out[0] if single else out


def similarity_maps(sim, shape):
    """Per-class min-max maps of a similarity [.., T, C], reshaped to the token
    grid and resized bilinearly to shape = (H, W): [.., H, W, C] in [0, 1].
    sim holds all 1 + N tokens (row 0, the class token, is left out), or the
    N patch tokens alone as the authors' get_similarity_map takes them
    (sim[:, 1:, :]); N is a square, 1 + N is not, so the two cannot be
    confused."""
    s, single = _tokens_batch(sim, "sim")
    B, T, C = s.shape
    side = int(round(T ** 0.5))
    if side * side == T:  # patch tokens only: the library skips a row 0
        s = np.concatenate([np.zeros((B, 1, C), np.float32), s], axis=1)
        T += 1
    H, W = (int(v) for v in shape[:2])
    out = np.empty((B, H, W, C), np.float32)
    for b in range(B):
        _check(_lib.cs_similarity_maps(_ptr(s[b]), T, C, H, W, _ptr(out[b])))
    return out[0] if single else out


# ------------------------------------------------------------------ images
class _ImageArg:
    """A job's image: a path (decoded by the library exactly as PIL opens
    it), a PIL image (converted to RGB), an H x W x 3 uint8 array, or
    normalized pixels [3, R, R] float32 (allow_pixels)."""

    def __init__(self, image, allow_pixels=True):
        self.img = None
        self.owned = False
        self.pixels = None
        self.keep = None
        if isinstance(image, (str, bytes, os.PathLike)):
            self.img = _n.Image()
            _check(_lib.cs_image_load(_bytes(image, "image"), None, byref(self.img)))
            self.owned = True
            return
        if hasattr(image, "convert") and hasattr(image, "size") and not isinstance(image, np.ndarray):
            image = np.asarray(image.convert("RGB"))  # a PIL image
        a = np.asarray(image)
        if a.dtype == np.uint8 and a.ndim == 3 and a.shape[2] == 3:
            self.keep = np.ascontiguousarray(a)
            self.img = _n.Image(a.shape[1], a.shape[0], _ptr(self.keep, ctypes.c_uint8), None)
        elif allow_pixels and a.ndim == 3 and a.shape[0] == 3 and a.shape[1] == a.shape[2] \
                and a.dtype.kind == "f":
            self.pixels = np.ascontiguousarray(a, dtype=np.float32)
        else:
            raise InvalidArgument("image: expected a path, a PIL image, an H x W x 3 uint8 array"
                                  + (" or normalized pixels [3, R, R] float32" if allow_pixels
                                     else "") + f", got {type(image).__name__} "
                                  + f"{getattr(a, 'shape', '')} {getattr(a, 'dtype', '')}",
                                  "bad argument")

    def input(self):
        if self.img is not None:
            return _n.Input(ctypes.pointer(self.img), None, 0, 0, 0)
        return _n.Input(None, _ptr(self.pixels), self.pixels.shape[1], 0, 0)

    def close(self):
        if self.owned:
            _lib.cs_image_free(byref(self.img))
            self.owned = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ------------------------------------------------------------------ class sets
class Classes:
    """A class set: names with synonyms, prompt templates and the names'
    embeddings (computed by a model on first use, through the library's
    embedding cache, or given).

    classes: "person,bench" or "@FILE" (one class per line, commas separating
    synonyms); a list whose items are names or lists of synonyms; or use
    Classes.from_embeddings. templates: "default" (the method's 85), "none"
    (the name alone), a file with one template per line, or a list."""

    def __init__(self, classes, templates="default"):
        self.handle = None
        self.lock = threading.Lock()
        h = c_void_p()
        if isinstance(classes, (str, bytes)):
            _check(_lib.cs_classes_parse(_bytes(classes, "classes"), byref(h)))
        else:
            classes = list(classes)
            if not classes:
                raise InvalidArgument("classes: the list is empty", "bad argument")
            if all(isinstance(c, (str, bytes)) for c in classes):
                arr, _keep = _strings(classes, "classes")
                _check(_lib.cs_classes_from_names(arr, len(classes), byref(h)))
            else:
                _check(_lib.cs_classes_new(byref(h)))
                self.handle = h
                for c in classes:
                    syn = [c] if isinstance(c, (str, bytes)) else list(c)
                    arr, _keep = _strings(syn, "classes")
                    _check(_lib.cs_classes_add(h, arr, len(syn)))
        self.handle = h
        self._set_templates(templates)

    @classmethod
    def from_embeddings(cls, embeddings, names=None):
        """Classes whose embeddings [C, D] are given (used as given)."""
        self = cls.__new__(cls)
        self.handle = None
        self.lock = threading.Lock()
        e = _f32(embeddings, "embeddings", (2,))
        h = c_void_p()
        arr = None
        if names is not None:
            if len(names) != e.shape[0]:
                raise InvalidArgument(f"names: {len(names)} names for {e.shape[0]} embeddings",
                                      "wrong shape")
            arr, _keep = _strings(names, "names")
        _check(_lib.cs_classes_from_embeddings(_ptr(e), e.shape[0], e.shape[1], arr, byref(h)))
        self.handle = h
        return self

    def _set_templates(self, templates):
        if isinstance(templates, (str, bytes, os.PathLike)):
            _check(_lib.cs_classes_set_templates(self.handle, _bytes(templates, "templates")))
        else:
            arr, _keep = _strings(list(templates), "templates")
            _check(_lib.cs_classes_set_template_list(self.handle, arr, len(_keep)))

    def __len__(self):
        return _lib.cs_classes_count(self.handle)

    @property
    def names(self):
        """Each class's (first) name."""
        return [_lib.cs_classes_name(self.handle, c).decode() for c in range(len(self))]

    @property
    def synonyms(self):
        """Each class's names."""
        out = [[] for _ in range(len(self))]
        for k in range(_lib.cs_classes_num_names(self.handle)):
            out[_lib.cs_classes_name_class(self.handle, k)].append(
                _lib.cs_classes_name_text(self.handle, k).decode())
        return out

    def embeddings(self, model=None):
        """The names' embeddings [K, D] (K names, synonyms included), computed
        with model when not yet known."""
        if model is not None:
            with model._lock, self.lock:
                _check(_lib.cs_classes_embed(self.handle, model._handle(), None, None))
        with self.lock:
            D = _lib.cs_classes_dim(self.handle)
            K = _lib.cs_classes_num_names(self.handle)
            return _copy(_lib.cs_classes_embeddings(self.handle), (K, D)) if D else None

    def __del__(self):
        if getattr(self, "handle", None):
            _lib.cs_classes_free(self.handle)
            self.handle = None


def _as_classes(classes, templates):
    if isinstance(classes, Classes):
        return classes
    if isinstance(classes, np.ndarray) and classes.dtype.kind == "f":
        return Classes.from_embeddings(classes)
    return Classes(classes, templates)


def _method(name):
    m = c_int()
    _check(_lib.cs_method_parse(_bytes(name, "method"), byref(m)))
    return m.value


_REDUNDANT = {"auto": 0, "classes": 1, "empty": 2}
_REDUNDANT_NAMES = {v: k for k, v in _REDUNDANT.items()}


def _redundancy(name):
    if name not in _REDUNDANT:
        raise InvalidArgument(f"redundant: expected one of {', '.join(_REDUNDANT)}, got {name!r}",
                              "bad argument")
    return _REDUNDANT[name]


# ------------------------------------------------------------------ results
@dataclass
class Explanation:
    maps: np.ndarray          # [H, W, C] in [0, 1]
    similarity: np.ndarray    # [1+N, C] after feature surgery (plain: cosine)
    tokens: np.ndarray        # [1+N, D] the vision tower's output, not normalized
    pixels: np.ndarray        # [3, R, R] the normalized input
    redundant: str            # what feature surgery used: "classes", "empty" ("auto" for plain)
    redundant_features: np.ndarray  # [D] the empty prompt's ensemble with "empty", else None


@dataclass
class Segmentation:
    labels: np.ndarray   # [H, W] uint8
    logits: np.ndarray   # [H, W, C] the upsampled cosine, before any scale
    scores: np.ndarray   # [H, W, C] class probabilities
    cosine: np.ndarray   # [N, C] patch-class cosine (None with sliding windows)
    tokens: np.ndarray   # [1+N, D] the method's tokens (None with sliding windows)
    logit_scale: float


@dataclass
class WordUnit:
    text: str
    start: int        # code points [start, end) of the caption; -1 for the start/end tokens
    end: int
    first_token: int
    n_tokens: int
    cosine: float     # with the image's CLS feature
    rank: int         # 1 = highest cosine


@dataclass
class Words:
    ids: np.ndarray             # [T] token ids
    token_features: np.ndarray  # [T, D] L2-normalized
    units: list                 # [U] WordUnit
    ranking: list               # unit indices by descending cosine
    top: list                   # the figure's three best units that have a place in the caption
    similarity: np.ndarray      # [1+N, U]
    maps: np.ndarray            # [H, W, U]
    image_tokens: np.ndarray    # [1+N, D]
    truncated: bool
    dropped: int


# ------------------------------------------------------------------ models
class Model:
    """A CLIP model opened by load(). One call at a time runs on it (a lock);
    the computation itself uses the library's threads (set_num_threads)."""

    def __init__(self, handle):
        self._h = handle
        self._lock = threading.Lock()
        cfg = _lib.cs_model_config(handle).contents
        self.config = {name: (list(getattr(cfg, name)) if name == "resnet_layers"
                              else getattr(cfg, name)) for name, _ in _n.Config._fields_}
        self.config["vision_kind"] = "resnet" if cfg.vision_kind == 1 else "vit"

    def _handle(self):
        if not self._h:
            raise Error("the model is closed", "bad argument")
        return self._h

    def close(self):
        with self._lock:
            if self._h:
                _lib.cs_model_free(self._h)
                self._h = None

    def __del__(self):
        if getattr(self, "_h", None):
            _lib.cs_model_free(self._h)
            self._h = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def input_resolution(self):
        return self.config["image_resolution"]

    @property
    def embed_dim(self):
        return self.config["embed_dim"]

    @property
    def context_length(self):
        return self.config["context_length"]

    def num_tokens(self, resolution=None):
        """1 + N: the image tokens at an R x R input."""
        return _lib.cs_model_num_tokens(self._handle(), int(resolution or self.input_resolution))

    # -------------------------------------------------------------- towers
    def encode_image(self, pixels, method="surgery"):
        """Image tokens [B, 1+N, D] (after ln_post and proj, not normalized)
        of normalized pixels [3, R, R] or [B, 3, R, R]. method: "surgery",
        "clip" or a later dense method ("maskclip", "sclip", "clearclip",
        "naclip", "gem")."""
        p = _f32(pixels, "pixels", (3, 4))
        if p.ndim == 3:
            p = p[None]
        B, ch, R, R2 = p.shape
        if ch != 3 or R != R2:
            raise InvalidArgument(f"pixels: expected [B, 3, R, R], got {p.shape}", "wrong shape")
        mode = _lib.cs_method_vision_mode(_method(method))
        with self._lock:
            h = self._handle()
            T = _lib.cs_model_num_tokens(h, R)
            if T <= 0:
                _raise(_n.STATUS_ARG)
            out = np.empty((B, T, self.embed_dim), np.float32)
            _check(_lib.cs_encode_images(h, _ptr(p), B, R, mode, _ptr(out)))
        return out

    def encode_text(self, token_ids):
        """Text features [n, D] (not normalized) of token ids [n, L] (zero
        padded, as tokenize gives them)."""
        ids = np.asarray(token_ids)
        if ids.ndim == 1:
            ids = ids[None]
        if ids.ndim != 2 or ids.dtype.kind not in "iu":
            raise InvalidArgument(f"token_ids: expected integers [n, L], got {ids.shape} "
                                  f"{ids.dtype}", "wrong shape")
        ids32 = np.ascontiguousarray(ids, dtype=np.int32)
        if not np.array_equal(ids32, ids):
            raise InvalidArgument("token_ids: ids out of the int32 range", "bad argument")
        out = np.empty((ids.shape[0], self.embed_dim), np.float32)
        with self._lock:
            _check(_lib.cs_encode_text(self._handle(), _ptr(ids32, ctypes.c_int32),
                                       ids.shape[0], ids.shape[1], _ptr(out)))
        return out

    def tokenize(self, texts, context_length=None, truncate=False):
        """tokenize() with this model's vocabulary (load's vocab option)."""
        with self._lock:
            tok = c_void_p()
            _check(_lib.cs_model_tokenizer(self._handle(), byref(tok)))
            return _tokenize_with(tok, _NoLock, texts, context_length or self.context_length,
                                  truncate)

    def class_embeddings(self, names, templates="default"):
        """Prompt ensembles [C, D]: for each name every template filled in,
        each prompt's feature normalized, averaged, renormalized (the
        authors' encode_text_with_prompt_ensemble). names: a list (one class
        per item, commas included) or a Classes; templates: "default",
        "none", a file or a list. The library's embedding cache serves
        names already computed."""
        if isinstance(names, (str, bytes)):
            names = [names]
        return _as_classes(names, templates).embeddings(self)

    def empty_prompt_embedding(self, templates="default"):
        """The empty prompt's ensemble [D]: the explicit redundant features."""
        cl = Classes(["_"], templates)
        ptr = _n.f32p()
        with self._lock:
            _check(_lib.cs_classes_empty_prompt(cl.handle, self._handle(), byref(ptr)))
            return _copy(ptr, (self.embed_dim,))

    # -------------------------------------------------------------- jobs
    def explain(self, image, classes, method="surgery", resolution=None, redundant="auto",
                templates="default", details=False):
        """Similarity maps [H, W, C] in [0, 1] of the classes on an image (a
        path, a PIL image, an H x W x 3 uint8 array, or normalized pixels
        [3, R, R]); H x W is the image's size (R x R for pixels). details:
        an Explanation (maps, similarity, tokens, pixels, redundancy used)."""
        cl = _as_classes(classes, templates)
        opts = _lib.cs_explain_defaults()
        opts.method = _method(method)
        opts.redundant = _redundancy(redundant)
        opts.resolution = int(resolution or 0)
        r = _n.ExplainResult()
        with _ImageArg(image) as img, self._lock, cl.lock:
            inp = img.input()
            _check(_lib.cs_explain(self._handle(), cl.handle, byref(inp), 1, byref(opts),
                                   byref(r)))
        try:
            maps = _copy(r.maps, (r.height, r.width, r.n_classes))
            if not details:
                return maps
            R = r.resolution
            return Explanation(
                maps=maps, similarity=_copy(r.similarity, (r.n_tokens, r.n_classes)),
                tokens=_copy(r.tokens, (r.n_tokens, r.dim)), pixels=_copy(r.pixels, (3, R, R)),
                redundant=_REDUNDANT_NAMES.get(r.redundant, str(r.redundant)),
                redundant_features=_copy(r.redundant_features, (r.dim,)))
        finally:
            _lib.cs_explain_result_free(byref(r))

    def points(self, image, classes, threshold=0.8, redundant="auto", combined=False,
               resolution=None, templates="default"):
        """Point prompts for SAM per class (one target with combined): a list
        of (points [k, 2] int32 (x, y) in image pixels, labels [k] uint8:
        1 positive, 0 negative), positives first."""
        cl = _as_classes(classes, templates)
        opts = _lib.cs_points_defaults()
        opts.threshold = float(threshold)
        opts.redundant = _redundancy(redundant)
        opts.combined = int(bool(combined))
        opts.resolution = int(resolution or 0)
        r = _n.PointsResult()
        with _ImageArg(image) as img, self._lock, cl.lock:
            inp = img.input()
            _check(_lib.cs_points(self._handle(), cl.handle, byref(inp), byref(opts), byref(r)))
        try:
            n = r.offsets[r.n_targets]
            pts = _copy(r.points, (n, 2), np.int32)
            labels = _copy(r.labels, (n,), np.uint8)
            out = [(pts[r.offsets[t]:r.offsets[t + 1]], labels[r.offsets[t]:r.offsets[t + 1]])
                   for t in range(r.n_targets)]
            return out
        finally:
            _lib.cs_points_result_free(byref(r))

    def segment(self, image, classes, method="surgery", resolution=None, window=0, stride=0,
                short_side=0, max_long_side=0, bg_thresh=0.0, logit_scale=0.0, bg_class=-1,
                pamr_steps=0, name_logits=False, area_thresh=0.0, templates="default",
                details=False):
        """Open-vocabulary segmentation: labels [H, W] uint8, each pixel the
        class whose best name is most similar (options as cs_segment_options
        in the header). details: a Segmentation (labels, logits, scores,
        cosine, tokens)."""
        cl = _as_classes(classes, templates)
        opts = _lib.cs_segment_defaults()
        opts.method = _method(method)
        opts.resolution = int(resolution or 0)
        opts.window, opts.stride, opts.short_side = int(window), int(stride), int(short_side)
        opts.bg_thresh, opts.logit_scale = float(bg_thresh), float(logit_scale)
        opts.bg_class, opts.pamr_steps = int(bg_class), int(pamr_steps)
        opts.max_long_side, opts.name_logits = int(max_long_side), int(bool(name_logits))
        opts.area_thresh = float(area_thresh)
        r = _n.SegmentResult()
        with _ImageArg(image) as img, self._lock, cl.lock:
            inp = img.input()
            _check(_lib.cs_segment_arrays(self._handle(), cl.handle, byref(inp), 1, byref(opts),
                                          byref(r)))
        try:
            H, W, C = r.height, r.width, r.n_classes
            labels = _copy(r.labels, (H, W), np.uint8)
            if not details:
                return labels
            return Segmentation(
                labels=labels, logits=_copy(r.logits, (H, W, C)), scores=_copy(r.scores, (H, W, C)),
                cosine=_copy(r.cosine, (r.n_tokens - 1, C)) if r.cosine else None,
                tokens=_copy(r.tokens, (r.n_tokens, r.dim)) if r.tokens else None,
                logit_scale=r.logit_scale)
        finally:
            _lib.cs_segment_result_free(byref(r))

    def classify(self, image, classes, method="surgery", resolution=None, templates="default"):
        """Multi-label scores [C] of an image (not pixels): "surgery" row 0 of
        the class-weighted feature surgery, "clip" softmax(100 cos)."""
        cl = _as_classes(classes, templates)
        opts = _lib.cs_classify_defaults()
        opts.method = _method(method)
        opts.resolution = int(resolution or 0)
        scores = np.empty(len(cl), np.float32)
        with _ImageArg(image, allow_pixels=False) as img, self._lock, cl.lock:
            _check(_lib.cs_classify(self._handle(), cl.handle, byref(img.img), 1, byref(opts),
                                    _ptr(scores)))
        return scores

    def words(self, image, captions, group="tokens", resolution=None):
        """Which words of each caption CLIP sees where (docs/words.md): a
        Words per caption (a str gives one Words)."""
        single = isinstance(captions, (str, bytes))
        caps = [captions] if single else list(captions)
        if group not in ("tokens", "words"):
            raise InvalidArgument(f"group: expected 'tokens' or 'words', got {group!r}",
                                  "bad argument")
        opts = _lib.cs_words_defaults()
        opts.group = 0 if group == "tokens" else 1
        opts.resolution = int(resolution or 0)
        arr, _keep = _strings(caps, "captions")
        res = (_n.WordsResult * max(len(caps), 1))()
        if not caps:
            return []
        with _ImageArg(image) as img, self._lock:
            inp = img.input()
            _check(_lib.cs_words(self._handle(), byref(inp), arr, len(caps), byref(opts), res))
        out = []
        try:
            for r in res[:len(caps)]:
                U, T = r.n_units, r.n_tokens
                units = [WordUnit(ctypes.string_at(u.text).decode("utf-8", "replace"), u.start,
                                  u.end, u.first_token, u.n_tokens, u.cosine, u.rank)
                         for u in r.units[:U]]
                out.append(Words(
                    ids=_copy(r.ids, (T,), np.int32), token_features=_copy(r.token_features,
                                                                            (T, r.dim)),
                    units=units, ranking=list(r.ranking[:U]), top=list(r.top),
                    similarity=_copy(r.similarity, (r.n_image_tokens, U)),
                    maps=_copy(r.maps, (r.height, r.width, U)),
                    image_tokens=_copy(r.image_tokens, (r.n_image_tokens, r.dim)),
                    truncated=bool(r.truncated), dropped=r.dropped))
        finally:
            for r in res[:len(caps)]:
                _lib.cs_words_result_free(byref(r))
        return out[0] if single else out


class _NoLockType:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


_NoLock = _NoLockType()  # the model's own lock already covers its tokenizer

_PRECISIONS = {"fp32": 0, "bf16": 1, "int8": 2}


def load(name, device="cpu", download_root=None, download=True, vocab=None, surgery_blocks=6,
         precision="fp32", embedding_cache=True):
    """Open a model as clip.load does: a name ("ViT-B/16", "RN50", ...,
    downloaded into download_root, default ~/.cache/clip, and checked
    against its SHA-256), a .pt / .safetensors file or Hugging Face folder,
    or "synthetic:ARCH" (random weights). device: "cpu" (the library runs
    on the CPU). vocab: the BPE vocabulary, default the model folder's own
    or the cache's (downloaded)."""
    if device != "cpu":
        raise InvalidArgument(f"device: only 'cpu' is supported, got {device!r}", "bad argument")
    if precision not in _PRECISIONS:
        raise InvalidArgument(f"precision: expected 'fp32', 'bf16' or 'int8', got {precision!r}",
                              "bad argument")
    opts = _lib.cs_load_defaults()
    keep = []
    if download_root is not None:
        keep.append(_bytes(download_root, "download_root"))
        opts.cache_dir = keep[-1]
    if vocab is not None:
        keep.append(_bytes(vocab, "vocab"))
        opts.vocab = keep[-1]
    opts.download = int(bool(download))
    opts.surgery_blocks = int(surgery_blocks)
    opts.precision = _PRECISIONS[precision]
    if not _lib.cs_precision_fast(opts.precision):
        warnings.warn(f"precision={precision!r}: this CPU has no kernel of its own for it, so it runs "
                      "a portable one, several times slower than fp32", RuntimeWarning, stacklevel=2)
    opts.embedding_cache = int(bool(embedding_cache))
    h = c_void_p()
    _check(_lib.cs_load(_bytes(name, "name"), byref(opts), byref(h)))
    return Model(h)


# ------------------------------------------------------------------ Segment Anything
class SamEmbedding:
    """One image encoded by a Sam (set_image / encode)."""

    def __init__(self):
        self._e = _n.SamEmbedding()

    @property
    def array(self):
        """[E, G, G] float32."""
        e = self._e
        return _copy(e.data, (e.dim, e.grid, e.grid))

    @property
    def image_size(self):
        return (self._e.image_h, self._e.image_w)

    def __del__(self):
        if getattr(self, "_e", None) is not None and self._e.data:
            _lib.cs_sam_embedding_free(byref(self._e))


class Sam:
    """Meta's Segment Anything at parity with its SamPredictor: set_image,
    then predict with points, a box and/or a low-res mask."""

    def __init__(self, handle):
        self._h = handle
        self._lock = threading.Lock()
        self._embedding = None

    def __del__(self):
        if getattr(self, "_h", None):
            _lib.cs_sam_free(self._h)
            self._h = None

    def encode(self, image):
        """The image's embedding (a path, a PIL image or an H x W x 3 uint8 array)."""
        emb = SamEmbedding()
        with _ImageArg(image, allow_pixels=False) as img, self._lock:
            _check(_lib.cs_sam_encode(self._h, byref(img.img), byref(emb._e)))
        return emb

    def set_image(self, image):
        self._embedding = self.encode(image)

    def predict(self, point_coords=None, point_labels=None, box=None, mask_input=None,
                multimask_output=True, return_logits=False, embedding=None):
        """SamPredictor.predict: (masks [C, H, W] bool (logits with
        return_logits), iou [C], low-res logits [C, 4G, 4G]); coordinates in
        the original image's pixels."""
        emb = embedding or self._embedding
        if emb is None:
            raise InvalidArgument("predict: no image (call set_image first)", "bad argument")
        p = _n.SamPrompt()
        keep = []
        if point_coords is not None:
            pts = _f32(point_coords, "point_coords", (2,))
            lab = np.ascontiguousarray(np.ones(len(pts)) if point_labels is None
                                       else point_labels, dtype=np.int32)
            if pts.shape[1] != 2 or lab.shape != (pts.shape[0],):
                raise InvalidArgument(f"point_coords/point_labels: expected [n, 2] and [n], got "
                                      f"{pts.shape} and {lab.shape}", "wrong shape")
            keep += [pts, lab]
            p.n_points, p.points, p.labels = len(pts), _ptr(pts), _ptr(lab, ctypes.c_int32)
        if box is not None:
            b = _f32(box, "box").reshape(-1)
            if b.size != 4:
                raise InvalidArgument(f"box: expected 4 values, got {b.size}", "wrong shape")
            keep.append(b)
            p.box = _ptr(b)
        if mask_input is not None:
            G4 = 4 * emb._e.grid
            mi = _f32(mask_input, "mask_input")
            if mi.size != G4 * G4:
                raise InvalidArgument(f"mask_input: expected [{G4}, {G4}] (leading 1s allowed), "
                                      f"got {mi.shape}", "wrong shape")
            keep.append(mi)
            p.mask_input = _ptr(mi)
        p.multimask = int(bool(multimask_output))
        r = _n.SamResult()
        with self._lock:
            _check(_lib.cs_sam_predict(self._h, byref(emb._e), byref(p), byref(r)))
        try:
            C, H, W, L = r.n_masks, r.height, r.width, r.lowres
            masks = _copy(r.logits, (C, H, W)) if return_logits else \
                _copy(r.masks, (C, H, W), np.uint8).astype(bool)
            return masks, _copy(r.iou, (C,)), _copy(r.lowres_logits, (C, L, L))
        finally:
            _lib.cs_sam_result_free(byref(r))


def load_sam(name, download_root=None, download=True, decoder_heads=0):
    """Open a SAM checkpoint: "vit_b" / "vit_l" / "vit_h" (Meta's files,
    downloaded into download_root, default ~/.cache/clip) or a path (.pth or
    .safetensors)."""
    path = ctypes.create_string_buffer(_n.PATH_MAX)
    _check(_lib.cs_sam_resolve(_bytes(name, "name"),
                               _bytes(download_root, "download_root") if download_root else None,
                               int(bool(download)), None, None, path, len(path)))
    opts = _n.SamLoadOptions(int(decoder_heads))
    h = c_void_p()
    _check(_lib.cs_sam_load(path.value, byref(opts), byref(h)))
    return Sam(h)
