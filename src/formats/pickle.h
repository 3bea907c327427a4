/* Layer 3: a pickle reader for PyTorch's data.pkl (protocol 2, as torch.save
 * and TorchScript write it). It never calls anything: it runs the pickle
 * machine over a small object tree in which the few globals PyTorch needs are
 * interpreted (tensor rebuilds, storage types, OrderedDict, TorchScript
 * classes as plain objects). Any other global fails with CS_ERR_UNSUPPORTED
 * naming it. */
#ifndef CS_PICKLE_H
#define CS_PICKLE_H

#include <stddef.h>
#include <stdint.h>
#include "tensors.h"

typedef enum pk_type {
    PK_NONE, PK_BOOL, PK_INT, PK_FLOAT, PK_STR, PK_BYTES,
    PK_TUPLE, PK_LIST, PK_DICT,
    PK_OBJECT,  /* an instance of a TorchScript class (`__torch__.*`) */
    PK_GLOBAL,  /* an allowed global, not yet applied */
    PK_STORAGE, /* a persistent id ('storage', type, key, location, numel) */
    PK_TENSOR   /* a view into a storage, from _rebuild_tensor_v2 */
} pk_type;

typedef enum pk_global_kind {
    PK_G_REBUILD_TENSOR, /* torch._utils._rebuild_tensor_v2 */
    PK_G_PASS_FIRST,     /* returns its first argument: _rebuild_parameter, TorchScript type tags */
    PK_G_ORDERED_DICT,   /* collections.OrderedDict */
    PK_G_STORAGE_TYPE,   /* torch.<T>Storage */
    PK_G_CLASS           /* __torch__.* */
} pk_global_kind;

typedef struct pk_tensor {
    cs_dtype dtype;
    const char *key;     /* storage key: the archive entry data/<key> */
    size_t key_len;
    int64_t storage_numel, offset;
    int ndim;
    int64_t size[CS_MAX_DIMS], stride[CS_MAX_DIMS];
} pk_tensor;

typedef struct pk_node pk_node;
struct pk_node {
    pk_type type;
    int64_t i;          /* BOOL, INT */
    double f;           /* FLOAT */
    const char *s;      /* STR, BYTES: into the pickle bytes (not NUL-terminated);
                           GLOBAL, OBJECT: the qualified class name (NUL-terminated) */
    size_t len;
    pk_node **items;    /* TUPLE, LIST: elements; DICT: keys and values alternating;
                           OBJECT: items[0] is the BUILD state, if any */
    int n, cap;
    pk_global_kind global;
    cs_dtype dtype;     /* GLOBAL of kind PK_G_STORAGE_TYPE */
    pk_tensor *tensor;  /* STORAGE (size/stride unused), TENSOR */
    int visited;        /* free for the caller's walk */
};


typedef struct pk_arena pk_arena;

typedef struct cs_pickle {
    pk_node *root;
    pk_arena *arena; /* every node and buffer of the tree */
} cs_pickle;

/* Run the pickle in buf[0..len); `where` names it in messages ("f.pt:
 * data.pkl"). buf must outlive the tree (strings point into it). On failure
 * nothing is left to free. */
cs_status pickle_load(const char *where, const uint8_t *buf, size_t len, cs_pickle *out);
void pickle_free(cs_pickle *p);

/* The value of a DICT under a string key, or NULL. */
const pk_node *pk_dict_get(const pk_node *dict, const char *key);

#endif
