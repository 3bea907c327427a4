/* The pickle machine (a stack, a mark stack and a memo) over pk_node trees.
 * Opcodes are those of protocols 0-5 that Python's pickler and TorchScript's
 * emit in binary mode; text-mode opcodes and those that call arbitrary code
 * (INST, OBJ, EXT*) are refused. Globals are resolved against a fixed table
 * and applied by interpreting them, never by calling anything. */
#include "pickle.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PK_MAX_NODES (1 << 22)   /* ~0.5 GB of nodes at most; data.pkl of ViT-L/14 needs ~40k */
#define PK_MAX_MEMO (1 << 20)    /* memo indices; picklers number them 0, 1, 2, ... */
#define PK_MAX_STRING (64u << 20)
#define PK_MAX_GLOBAL_LINE 512
#define PK_MAX_PROTOCOL 5
#define PK_BLOCK 1024

typedef struct pk_block {
    pk_node nodes[PK_BLOCK];
    int used;
    struct pk_block *next;
} pk_block;

struct pk_arena {
    pk_block *blocks;
    size_t n_nodes;
    size_t n_items; /* container slots over all containers (DUP + APPEND reuse nodes) */
};

typedef struct pk_machine {
    const char *where;
    const uint8_t *buf;
    size_t len, pos, op_pos;
    pk_arena *arena;
    pk_node **stack;
    size_t sp, stack_cap;
    size_t *marks;
    size_t n_marks, marks_cap;
    pk_node **memo;
    size_t memo_cap, memo_count;
    pk_node *root;       /* set by STOP */
    cs_status node_fail; /* why new_node last returned NULL */
} pk_machine;

static const char *type_name(pk_type t) {
    static const char *names[] = {"None", "bool", "int", "float", "str", "bytes", "tuple",
                                  "list", "dict", "object", "global", "storage", "tensor"};
    return (unsigned)t < sizeof names / sizeof *names ? names[t] : "?";
}

static cs_status fail_at(const pk_machine *m, cs_status code, const char *what) {
    return error_set(code, "%s: %s (pickle offset %zu)", m->where, what, m->op_pos);
}

/* ---------------------------------------------------------------- arena */

static void free_arena(pk_arena *a) {
    if (!a) return;
    for (pk_block *b = a->blocks, *next; b; b = next) {
        next = b->next;
        for (int i = 0; i < b->used; i++) {
            pk_node *x = &b->nodes[i];
            cs_free(x->items);
            cs_free(x->tensor);
            if (x->type == PK_GLOBAL) cs_free((char *)x->s);
        }
        cs_free(b);
    }
    cs_free(a);
}

static pk_node *new_node(pk_machine *m, pk_type type) {
    pk_arena *a = m->arena;
    if (a->n_nodes >= PK_MAX_NODES) {
        m->node_fail = fail_at(m, CS_ERR_LIMIT, "more objects than the reader's limit");
        return NULL;
    }
    if (!a->blocks || a->blocks->used == PK_BLOCK) {
        pk_block *b = mem_alloc(1, sizeof *b);
        if (!b) {
            m->node_fail = CS_ERR_NOMEM;
            return NULL;
        }
        b->used = 0;
        b->next = a->blocks;
        a->blocks = b;
    }
    pk_node *x = &a->blocks->nodes[a->blocks->used++];
    memset(x, 0, sizeof *x);
    x->type = type;
    a->n_nodes++;
    return x;
}

static int grow_array(void **arr, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return 1;
    size_t ncap = *cap ? *cap : 16;
    while (ncap < need) ncap *= 2;
    void *p = mem_alloc(ncap, elem);
    if (!p) return 0;
    if (*arr) memcpy(p, *arr, *cap * elem);
    cs_free(*arr);
    *arr = p;
    *cap = ncap;
    return 1;
}

/* Container slots over the whole pickle: a file can fill lists with one
 * DUP'ed node, which the node limit does not see. */
#define PK_MAX_ITEMS ((size_t)PK_MAX_NODES * 4)

static cs_status add_item(pk_machine *m, pk_node *c, pk_node *item) {
    if (c->n == INT_MAX || ++m->arena->n_items > PK_MAX_ITEMS)
        return fail_at(m, CS_ERR_LIMIT, "more container items than the reader's limit");
    size_t cap = (size_t)c->cap;
    if (!grow_array((void **)&c->items, &cap, (size_t)c->n + 1, sizeof *c->items))
        return CS_ERR_NOMEM;
    c->cap = (int)cap;
    c->items[c->n++] = item;
    return CS_OK;
}

/* ---------------------------------------------------------------- stack */

static size_t stack_floor(const pk_machine *m) { return m->n_marks ? m->marks[m->n_marks - 1] : 0; }

static cs_status push(pk_machine *m, pk_node *x) {
    if (!x) return m->node_fail;
    if (!grow_array((void **)&m->stack, &m->stack_cap, m->sp + 1, sizeof *m->stack))
        return CS_ERR_NOMEM;
    m->stack[m->sp++] = x;
    return CS_OK;
}

static pk_node *top(const pk_machine *m) { return m->sp > stack_floor(m) ? m->stack[m->sp - 1] : NULL; }

static cs_status pop(pk_machine *m, pk_node **x) {
    *x = NULL;
    if (m->sp <= stack_floor(m)) return fail_at(m, CS_ERR_FORMAT, "stack underflow");
    *x = m->stack[--m->sp];
    return CS_OK;
}

/* Items pushed since the last MARK: stack[*start .. sp). The mark is removed;
 * the caller drops the items by setting sp = *start. */
static cs_status pop_mark(pk_machine *m, size_t *start) {
    *start = m->sp;
    if (!m->n_marks) return fail_at(m, CS_ERR_FORMAT, "no MARK for an opcode that needs one");
    *start = m->marks[--m->n_marks];
    return CS_OK;
}

/* ---------------------------------------------------------------- reading */

static cs_status need(const pk_machine *m, size_t n) {
    if (n > m->len - m->pos) return fail_at(m, CS_ERR_FORMAT, "truncated pickle");
    return CS_OK;
}

static uint64_t read_le(pk_machine *m, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = v << 8 | m->buf[m->pos + (size_t)i];
    m->pos += (size_t)n;
    return v;
}

static cs_status read_uint(pk_machine *m, int n, uint64_t *v) {
    cs_status s = need(m, (size_t)n);
    if (s == CS_OK) *v = read_le(m, n);
    return s;
}

static cs_status push_int(pk_machine *m, int64_t v) {
    pk_node *x = new_node(m, PK_INT);
    if (x) x->i = v;
    return push(m, x);
}

/* LONG1/LONG4: little-endian two's complement of n bytes; we hold int64. */
static cs_status push_long(pk_machine *m, uint64_t n) {
    cs_status s = need(m, n);
    if (s != CS_OK) return s;
    if (n > 8) return fail_at(m, CS_ERR_UNSUPPORTED, "integer wider than 64 bits");
    uint64_t v = n ? read_le(m, (int)n) : 0;
    if (n && n < 8 && (v >> (8 * n - 1) & 1)) v |= ~(uint64_t)0 << (8 * n);
    return push_int(m, (int64_t)v);
}

static cs_status push_float(pk_machine *m) {
    cs_status s = need(m, 8);
    if (s != CS_OK) return s;
    uint64_t bits = 0;
    for (int i = 0; i < 8; i++) bits = bits << 8 | m->buf[m->pos++]; /* big-endian */
    double d;
    memcpy(&d, &bits, sizeof d);
    pk_node *x = new_node(m, PK_FLOAT);
    if (x) x->f = d;
    return push(m, x);
}

/* A string or bytes object whose length is an n-byte prefix. */
static cs_status push_string(pk_machine *m, pk_type type, int prefix) {
    uint64_t n;
    cs_status s = read_uint(m, prefix, &n);
    if (s != CS_OK) return s;
    if (n > PK_MAX_STRING) return fail_at(m, CS_ERR_LIMIT, "string longer than the reader's limit");
    if ((s = need(m, n)) != CS_OK) return s;
    pk_node *x = new_node(m, type);
    if (x) {
        x->s = (const char *)m->buf + m->pos;
        x->len = (size_t)n;
    }
    m->pos += (size_t)n;
    return push(m, x);
}

/* ---------------------------------------------------------------- containers */

static cs_status build_tuple_from(pk_machine *m, size_t start) {
    pk_node *t = new_node(m, PK_TUPLE);
    if (!t) return m->node_fail;
    for (size_t i = start; i < m->sp; i++) {
        cs_status s = add_item(m, t, m->stack[i]);
        if (s != CS_OK) return s;
    }
    m->sp = start;
    return push(m, t);
}

static cs_status op_tuple_n(pk_machine *m, size_t n) {
    if (m->sp - stack_floor(m) < n) return fail_at(m, CS_ERR_FORMAT, "stack underflow");
    return build_tuple_from(m, m->sp - n);
}

static cs_status op_tuple_mark(pk_machine *m) {
    size_t start;
    cs_status s = pop_mark(m, &start);
    return s != CS_OK ? s : build_tuple_from(m, start);
}

/* APPEND(S), LIST: the items stack[start..sp) go into `list`. */
static cs_status append_from(pk_machine *m, pk_node *list, size_t start) {
    if (!list || list->type != PK_LIST)
        return fail_at(m, CS_ERR_FORMAT, "APPEND to something that is not a list");
    for (size_t i = start; i < m->sp; i++) {
        cs_status s = add_item(m, list, m->stack[i]);
        if (s != CS_OK) return s;
    }
    m->sp = start;
    return CS_OK;
}

static cs_status op_append(pk_machine *m) {
    if (m->sp < stack_floor(m) + 2) return fail_at(m, CS_ERR_FORMAT, "stack underflow");
    return append_from(m, m->stack[m->sp - 2], m->sp - 1);
}

static cs_status op_appends(pk_machine *m) {
    size_t start;
    cs_status s = pop_mark(m, &start);
    if (s != CS_OK) return s;
    if (start <= stack_floor(m)) return fail_at(m, CS_ERR_FORMAT, "APPENDS without a list");
    return append_from(m, m->stack[start - 1], start);
}

static cs_status op_list(pk_machine *m) {
    size_t start;
    cs_status s = pop_mark(m, &start);
    if (s != CS_OK) return s;
    pk_node *list = new_node(m, PK_LIST);
    if (!list) return m->node_fail;
    if ((s = append_from(m, list, start)) != CS_OK) return s;
    return push(m, list);
}

/* SETITEM(S), DICT: key/value pairs stack[start..sp) go into `dict`. */
static cs_status setitems_from(pk_machine *m, pk_node *dict, size_t start) {
    if (!dict || dict->type != PK_DICT)
        return fail_at(m, CS_ERR_FORMAT, "SETITEM on something that is not a dict");
    if ((m->sp - start) % 2) return fail_at(m, CS_ERR_FORMAT, "odd number of items for a dict");
    for (size_t i = start; i < m->sp; i++) {
        cs_status s = add_item(m, dict, m->stack[i]);
        if (s != CS_OK) return s;
    }
    m->sp = start;
    return CS_OK;
}

static cs_status op_setitem(pk_machine *m) {
    if (m->sp < stack_floor(m) + 3) return fail_at(m, CS_ERR_FORMAT, "stack underflow");
    return setitems_from(m, m->stack[m->sp - 3], m->sp - 2);
}

static cs_status op_setitems(pk_machine *m) {
    size_t start;
    cs_status s = pop_mark(m, &start);
    if (s != CS_OK) return s;
    if (start <= stack_floor(m)) return fail_at(m, CS_ERR_FORMAT, "SETITEMS without a dict");
    return setitems_from(m, m->stack[start - 1], start);
}

static cs_status op_dict(pk_machine *m) {
    size_t start;
    cs_status s = pop_mark(m, &start);
    if (s != CS_OK) return s;
    pk_node *dict = new_node(m, PK_DICT);
    if (!dict) return m->node_fail;
    if ((s = setitems_from(m, dict, start)) != CS_OK) return s;
    return push(m, dict);
}

/* ---------------------------------------------------------------- memo */

static cs_status memo_put(pk_machine *m, uint64_t idx) {
    pk_node *x = top(m);
    if (!x) return fail_at(m, CS_ERR_FORMAT, "memoizing an empty stack");
    if (idx >= PK_MAX_MEMO) return fail_at(m, CS_ERR_LIMIT, "memo index over the reader's limit");
    size_t old = m->memo_cap;
    if (!grow_array((void **)&m->memo, &m->memo_cap, (size_t)idx + 1, sizeof *m->memo))
        return CS_ERR_NOMEM;
    if (m->memo_cap > old) memset(m->memo + old, 0, (m->memo_cap - old) * sizeof *m->memo);
    if (!m->memo[idx]) m->memo_count++;
    m->memo[idx] = x;
    return CS_OK;
}

static cs_status memo_get(pk_machine *m, uint64_t idx) {
    if (idx >= m->memo_cap || !m->memo[idx])
        return fail_at(m, CS_ERR_FORMAT, "memo lookup of a key never stored");
    return push(m, m->memo[idx]);
}

/* ---------------------------------------------------------------- globals */

static const struct { const char *name; cs_dtype dtype; } k_storages[] = {
    {"FloatStorage", CS_DT_F32}, {"HalfStorage", CS_DT_F16}, {"BFloat16Storage", CS_DT_BF16},
    {"DoubleStorage", CS_DT_F64}, {"LongStorage", CS_DT_I64}, {"IntStorage", CS_DT_I32},
    {"ByteStorage", CS_DT_U8},    {"BoolStorage", CS_DT_BOOL},
};

/* Functions that only hand back their first argument for our purposes:
 * parameters are tensors, and TorchScript's type tags and typed-list
 * builders wrap plain values. */
static const struct { const char *module, *name; } k_pass_first[] = {
    {"torch._utils", "_rebuild_parameter"},
    {"torch._utils", "_rebuild_parameter_with_state"},
    {"torch.jit._pickle", "restore_type_tag"},
    {"torch.jit._pickle", "build_intlist"},
    {"torch.jit._pickle", "build_doublelist"},
    {"torch.jit._pickle", "build_boollist"},
    {"torch.jit._pickle", "build_tensorlist"},
};

static int is_torchscript_module(const char *module) {
    return strncmp(module, "__torch__", 9) == 0 && (module[9] == 0 || module[9] == '.');
}

static cs_status classify_global(pk_machine *m, const char *module, const char *name, pk_node *g) {
    if (!strcmp(module, "torch._utils") && !strcmp(name, "_rebuild_tensor_v2")) {
        g->global = PK_G_REBUILD_TENSOR;
        return CS_OK;
    }
    if (!strcmp(module, "collections") && !strcmp(name, "OrderedDict")) {
        g->global = PK_G_ORDERED_DICT;
        return CS_OK;
    }
    for (size_t i = 0; i < sizeof k_pass_first / sizeof *k_pass_first; i++)
        if (!strcmp(module, k_pass_first[i].module) && !strcmp(name, k_pass_first[i].name)) {
            g->global = PK_G_PASS_FIRST;
            return CS_OK;
        }
    if (!strcmp(module, "torch")) {
        for (size_t i = 0; i < sizeof k_storages / sizeof *k_storages; i++)
            if (!strcmp(name, k_storages[i].name)) {
                g->global = PK_G_STORAGE_TYPE;
                g->dtype = k_storages[i].dtype;
                return CS_OK;
            }
        size_t n = strlen(name);
        if (n > 7 && !strcmp(name + n - 7, "Storage"))
            return error_set(CS_ERR_UNSUPPORTED, "%s: storage type 'torch.%s' is not supported (pickle offset %zu)",
                           m->where, name, m->op_pos);
    }
    if (is_torchscript_module(module)) {
        g->global = PK_G_CLASS;
        return CS_OK;
    }
    return error_set(CS_ERR_UNSUPPORTED,
                   "%s: global '%s.%s' is not allowed: only PyTorch tensors and modules are read, nothing is executed (pickle offset %zu)",
                   m->where, module, name, m->op_pos);
}

/* Push the global module.name (both NUL-free, of the given lengths). */
static cs_status push_global(pk_machine *m, const char *module, size_t mlen, const char *name, size_t nlen) {
    if (mlen > PK_MAX_GLOBAL_LINE || nlen > PK_MAX_GLOBAL_LINE)
        return fail_at(m, CS_ERR_LIMIT, "global name longer than the reader's limit");
    if (memchr(module, 0, mlen) || memchr(name, 0, nlen))
        return fail_at(m, CS_ERR_FORMAT, "global name contains a NUL byte");
    char mod[PK_MAX_GLOBAL_LINE + 1], nm[PK_MAX_GLOBAL_LINE + 1];
    memcpy(mod, module, mlen);
    mod[mlen] = 0;
    memcpy(nm, name, nlen);
    nm[nlen] = 0;
    pk_node *g = new_node(m, PK_GLOBAL);
    if (!g) return m->node_fail;
    char *full = mem_alloc(mlen + nlen + 2, 1);
    if (!full) return CS_ERR_NOMEM;
    snprintf(full, mlen + nlen + 2, "%s.%s", mod, nm);
    g->s = full;
    g->len = mlen + nlen + 1;
    cs_status s = classify_global(m, mod, nm, g);
    return s != CS_OK ? s : push(m, g);
}

/* GLOBAL: "module\nname\n". */
static cs_status op_global(pk_machine *m) {
    const uint8_t *p = m->buf + m->pos, *end = m->buf + m->len;
    const uint8_t *nl1 = memchr(p, '\n', (size_t)(end - p));
    const uint8_t *nl2 = nl1 ? memchr(nl1 + 1, '\n', (size_t)(end - nl1 - 1)) : NULL;
    if (!nl2) return fail_at(m, CS_ERR_FORMAT, "truncated pickle");
    m->pos = (size_t)(nl2 + 1 - m->buf);
    return push_global(m, (const char *)p, (size_t)(nl1 - p), (const char *)nl1 + 1,
                       (size_t)(nl2 - nl1 - 1));
}

static cs_status op_stack_global(pk_machine *m) {
    pk_node *name, *module;
    cs_status s = pop(m, &name);
    if (s == CS_OK) s = pop(m, &module);
    if (s != CS_OK) return s;
    if (name->type != PK_STR || module->type != PK_STR)
        return fail_at(m, CS_ERR_FORMAT, "STACK_GLOBAL needs two strings");
    return push_global(m, module->s, module->len, name->s, name->len);
}

/* ---------------------------------------------------------------- applying globals */

static int int_tuple(const pk_node *t, int64_t *out, int max) {
    if (t->type != PK_TUPLE || t->n > max) return 0;
    for (int i = 0; i < t->n; i++) {
        if (t->items[i]->type != PK_INT || t->items[i]->i < 0) return 0;
        out[i] = t->items[i]->i;
    }
    return 1;
}

/* _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata]) */
static cs_status rebuild_tensor(pk_machine *m, const pk_node *args) {
    if (args->n < 4 || args->items[0]->type != PK_STORAGE || args->items[1]->type != PK_INT ||
        args->items[1]->i < 0)
        return fail_at(m, CS_ERR_FORMAT, "_rebuild_tensor_v2 needs (storage, offset, size, stride, ...)");
    const pk_node *size = args->items[2], *stride = args->items[3];
    pk_tensor t = *args->items[0]->tensor;
    t.offset = args->items[1]->i;
    if (!int_tuple(size, t.size, CS_MAX_DIMS) || !int_tuple(stride, t.stride, CS_MAX_DIMS) ||
        size->n != stride->n)
        return fail_at(m, CS_ERR_FORMAT,
                       "_rebuild_tensor_v2: size and stride must be tuples of non-negative ints of one length (at most 8)");
    t.ndim = size->n;
    pk_node *x = new_node(m, PK_TENSOR);
    if (!x) return m->node_fail;
    x->tensor = mem_alloc(1, sizeof *x->tensor);
    if (!x->tensor) return CS_ERR_NOMEM;
    *x->tensor = t;
    return push(m, x);
}

static cs_status op_reduce(pk_machine *m) {
    pk_node *args, *fn;
    cs_status s = pop(m, &args);
    if (s == CS_OK) s = pop(m, &fn);
    if (s != CS_OK) return s;
    if (args->type != PK_TUPLE) return fail_at(m, CS_ERR_FORMAT, "REDUCE arguments are not a tuple");
    if (fn->type != PK_GLOBAL) return fail_at(m, CS_ERR_FORMAT, "REDUCE on something that is not a global");
    switch (fn->global) {
    case PK_G_REBUILD_TENSOR: return rebuild_tensor(m, args);
    case PK_G_PASS_FIRST:
        if (args->n < 1) return fail_at(m, CS_ERR_FORMAT, "call without arguments");
        return push(m, args->items[0]);
    case PK_G_ORDERED_DICT:
        if (args->n != 0) return fail_at(m, CS_ERR_UNSUPPORTED, "OrderedDict called with arguments");
        return push(m, new_node(m, PK_DICT));
    default:
        return error_set(CS_ERR_UNSUPPORTED, "%s: '%s' cannot be called (pickle offset %zu)", m->where,
                       fn->s, m->op_pos);
    }
}

static cs_status op_newobj(pk_machine *m) {
    pk_node *args, *cls;
    cs_status s = pop(m, &args);
    if (s == CS_OK) s = pop(m, &cls);
    if (s != CS_OK) return s;
    if (cls->type == PK_GLOBAL && cls->global == PK_G_ORDERED_DICT) return push(m, new_node(m, PK_DICT));
    if (cls->type != PK_GLOBAL || cls->global != PK_G_CLASS)
        return fail_at(m, CS_ERR_UNSUPPORTED, "NEWOBJ of something that is not a TorchScript class");
    pk_node *obj = new_node(m, PK_OBJECT);
    if (obj) {
        obj->s = cls->s;
        obj->len = cls->len;
    }
    return push(m, obj);
}

/* BUILD sets an object's state. A TorchScript module's state is the dict of
 * its attributes; an OrderedDict's (state dicts carry `_metadata`) and a
 * tensor's are of no use here. */
static cs_status op_build(pk_machine *m) {
    pk_node *state;
    cs_status s = pop(m, &state);
    if (s != CS_OK) return s;
    pk_node *obj = top(m);
    if (!obj) return fail_at(m, CS_ERR_FORMAT, "stack underflow");
    if (obj->type == PK_DICT || obj->type == PK_TENSOR) return CS_OK;
    if (obj->type != PK_OBJECT) {
        char what[64];
        snprintf(what, sizeof what, "BUILD on a %s", type_name(obj->type));
        return fail_at(m, CS_ERR_FORMAT, what);
    }
    if (obj->n) {
        obj->items[0] = state;
        return CS_OK;
    }
    return add_item(m, obj, state);
}

/* BINPERSID: ('storage', <T>Storage, key, location, numel[, view metadata]) */
static cs_status op_persid(pk_machine *m) {
    pk_node *pid;
    cs_status s = pop(m, &pid);
    if (s != CS_OK) return s;
    pk_node **it = pid->items;
    if (pid->type != PK_TUPLE || (pid->n != 5 && pid->n != 6) || it[0]->type != PK_STR ||
        it[0]->len != 7 || memcmp(it[0]->s, "storage", 7) != 0 || it[1]->type != PK_GLOBAL ||
        it[1]->global != PK_G_STORAGE_TYPE || it[2]->type != PK_STR || it[4]->type != PK_INT ||
        it[4]->i < 0)
        return fail_at(m, CS_ERR_FORMAT,
                       "persistent id is not a ('storage', type, key, location, numel) tuple");
    pk_node *x = new_node(m, PK_STORAGE);
    if (!x) return m->node_fail;
    x->tensor = mem_calloc(1, sizeof *x->tensor);
    if (!x->tensor) return CS_ERR_NOMEM;
    x->tensor->dtype = it[1]->dtype;
    x->tensor->key = it[2]->s;
    x->tensor->key_len = it[2]->len;
    x->tensor->storage_numel = it[4]->i;
    return push(m, x);
}

/* ---------------------------------------------------------------- the machine */

static cs_status op_mark(pk_machine *m) {
    if (!grow_array((void **)&m->marks, &m->marks_cap, m->n_marks + 1, sizeof *m->marks))
        return CS_ERR_NOMEM;
    m->marks[m->n_marks++] = m->sp;
    return CS_OK;
}

static cs_status op_pop(pk_machine *m) {
    if (m->n_marks && m->marks[m->n_marks - 1] == m->sp) { /* POP of a bare MARK */
        m->n_marks--;
        return CS_OK;
    }
    pk_node *x;
    return pop(m, &x);
}

static cs_status op_pop_mark(pk_machine *m) {
    size_t start;
    cs_status s = pop_mark(m, &start);
    if (s == CS_OK) m->sp = start;
    return s;
}

static cs_status op_dup(pk_machine *m) {
    pk_node *x = top(m);
    return x ? push(m, x) : fail_at(m, CS_ERR_FORMAT, "stack underflow");
}

static cs_status op_proto(pk_machine *m) {
    uint64_t v;
    cs_status s = read_uint(m, 1, &v);
    if (s == CS_OK && v > PK_MAX_PROTOCOL) return fail_at(m, CS_ERR_UNSUPPORTED, "pickle protocol above 5");
    return s;
}

static cs_status op_skip(pk_machine *m, size_t n) {
    cs_status s = need(m, n);
    if (s == CS_OK) m->pos += n;
    return s;
}

static cs_status op_binint(pk_machine *m, int bytes, int is_signed) {
    uint64_t v;
    cs_status s = read_uint(m, bytes, &v);
    if (s != CS_OK) return s;
    return push_int(m, is_signed ? (int64_t)(int32_t)(uint32_t)v : (int64_t)v);
}

static cs_status op_long(pk_machine *m, int prefix) {
    uint64_t n;
    cs_status s = read_uint(m, prefix, &n);
    return s != CS_OK ? s : push_long(m, n);
}

static cs_status op_memo_index(pk_machine *m, int bytes, int get) {
    uint64_t idx;
    cs_status s = read_uint(m, bytes, &idx);
    if (s != CS_OK) return s;
    return get ? memo_get(m, idx) : memo_put(m, idx);
}

static cs_status op_bool(pk_machine *m, int v) {
    pk_node *x = new_node(m, PK_BOOL);
    if (x) x->i = v;
    return push(m, x);
}

/* One opcode; *done is set by STOP. */
static cs_status step(pk_machine *m, int *done) {
    m->op_pos = m->pos;
    uint8_t op = m->buf[m->pos++];
    switch (op) {
    case 0x80: return op_proto(m);
    case 0x95: return op_skip(m, 8); /* FRAME: a length hint */
    case '.': {                       /* STOP */
        pk_node *x;
        cs_status s = pop(m, &x);
        if (s == CS_OK) {
            m->root = x;
            *done = 1;
        }
        return s;
    }
    case '(': return op_mark(m);
    case '0': return op_pop(m);
    case '1': return op_pop_mark(m);
    case '2': return op_dup(m);
    case 'N': return push(m, new_node(m, PK_NONE));
    case 0x88: return op_bool(m, 1);
    case 0x89: return op_bool(m, 0);
    case 'J': return op_binint(m, 4, 1);
    case 'K': return op_binint(m, 1, 0);
    case 'M': return op_binint(m, 2, 0);
    case 0x8a: return op_long(m, 1);
    case 0x8b: return op_long(m, 4);
    case 'G': return push_float(m);
    case 'X': return push_string(m, PK_STR, 4);
    case 0x8c: return push_string(m, PK_STR, 1);
    case 0x8d: return push_string(m, PK_STR, 8);
    case 'T': return push_string(m, PK_STR, 4);
    case 'U': return push_string(m, PK_STR, 1);
    case 'B': return push_string(m, PK_BYTES, 4);
    case 'C': return push_string(m, PK_BYTES, 1);
    case 0x8e: return push_string(m, PK_BYTES, 8);
    case ')': return push(m, new_node(m, PK_TUPLE));
    case 't': return op_tuple_mark(m);
    case 0x85: return op_tuple_n(m, 1);
    case 0x86: return op_tuple_n(m, 2);
    case 0x87: return op_tuple_n(m, 3);
    case ']': return push(m, new_node(m, PK_LIST));
    case 'l': return op_list(m);
    case 'a': return op_append(m);
    case 'e': return op_appends(m);
    case '}': return push(m, new_node(m, PK_DICT));
    case 'd': return op_dict(m);
    case 's': return op_setitem(m);
    case 'u': return op_setitems(m);
    case 'c': return op_global(m);
    case 0x93: return op_stack_global(m);
    case 'R': return op_reduce(m);
    case 0x81: return op_newobj(m);
    case 'b': return op_build(m);
    case 'Q': return op_persid(m);
    case 'q': return op_memo_index(m, 1, 0);
    case 'r': return op_memo_index(m, 4, 0);
    case 0x94: return memo_put(m, m->memo_count);
    case 'h': return op_memo_index(m, 1, 1);
    case 'j': return op_memo_index(m, 4, 1);
    default: {
        char what[64];
        snprintf(what, sizeof what, "unsupported pickle opcode 0x%02x", op);
        return fail_at(m, CS_ERR_UNSUPPORTED, what);
    }
    }
}

cs_status pickle_load(const char *where, const uint8_t *buf, size_t len, cs_pickle *out) {
    memset(out, 0, sizeof *out);
    pk_machine m = {.where = where, .buf = buf, .len = len};
    m.arena = mem_calloc(1, sizeof *m.arena);
    if (!m.arena) return CS_ERR_NOMEM;
    cs_status s = CS_OK;
    int done = 0;
    while (s == CS_OK && !done) {
        if (m.pos >= m.len) {
            m.op_pos = m.pos;
            s = fail_at(&m, CS_ERR_FORMAT, "truncated pickle: no STOP");
            break;
        }
        s = step(&m, &done);
    }
    if (s == CS_OK) {
        out->root = m.root;
        out->arena = m.arena;
    } else {
        free_arena(m.arena);
    }
    cs_free(m.stack);
    cs_free(m.marks);
    cs_free(m.memo);
    return s;
}

void pickle_free(cs_pickle *p) {
    free_arena(p->arena);
    memset(p, 0, sizeof *p);
}

const pk_node *pk_dict_get(const pk_node *dict, const char *key) {
    if (!dict || dict->type != PK_DICT) return NULL;
    size_t n = strlen(key);
    const pk_node *found = NULL;
    for (int i = 0; i + 1 < dict->n; i += 2) {
        const pk_node *k = dict->items[i];
        if (k->type == PK_STR && k->len == n && memcmp(k->s, key, n) == 0) found = dict->items[i + 1];
    }
    return found;
}
