/* Pre-packed fp32 linear layers through oneDNN's matmul (gemm_f32.h). */
#include "gemm_f32.h"
#include "base/base.h"

#ifdef CS_HAVE_DNNL
#include <oneapi/dnnl/dnnl.h>
#include <pthread.h>
#include <string.h>

/* Primitives kept per weight: the row counts a tower sees in turn (one
 * image's tokens, twice that in the dual blocks' out-projection, a batch
 * of images, a text batch). */
#define F32_PRIMS 4

typedef struct f32_prim {
    int M, flags; /* flags: 1 bias, 2 accumulate; M 0: empty */
    dnnl_primitive_t mm;
    dnnl_memory_t src, dst, bias;
} f32_prim;

struct f32_pack {
    int N, K;
    dnnl_memory_desc_t wmd; /* the layout the weights were reordered into */
    void *data;             /* the packed weights */
    dnnl_memory_t wei;      /* (wrapping data) */
    dnnl_stream_t stream;   /* a model runs one pass at a time: one stream per weight */
    f32_prim prim[F32_PRIMS];
    int next;               /* the slot a new primitive replaces */
};

static dnnl_engine_t g_engine;
static pthread_once_t g_engine_once = PTHREAD_ONCE_INIT;

static void engine_init(void) {
    if (dnnl_engine_create(&g_engine, dnnl_cpu, 0) != dnnl_success) g_engine = NULL;
}

int op_f32_pack_available(void) {
    pthread_once(&g_engine_once, engine_init);
    return g_engine != NULL;
}

int op_f32_pack_pays(void) { return op_f32_pack_available() && __builtin_cpu_supports("avx512f"); }

static cs_status dnnl_error(dnnl_status_t st, const char *what, int N, int K) {
    if (st == dnnl_out_of_memory) return CS_ERR_NOMEM;
    return error_set(CS_ERR_UNSUPPORTED, "oneDNN: %s for a %d x %d fp32 weight failed (status %d)", what, N, K,
                     (int)st);
}

/* The matmul y[M, N] = x[M, K] w^T (+ b) (+ y), its weights in layout wmd
 * (NULL: "any", the layout it prefers). */
static dnnl_status_t matmul_pd(int M, int N, int K, int flags, const dnnl_memory_desc_t *wmd,
                               dnnl_primitive_desc_t *pd) {
    dnnl_dims_t xd = {M, K}, wd = {K, N}, yd = {M, N}, bd = {1, N};
    dnnl_memory_desc_t xmd, wany, ymd, bmd;
    dnnl_status_t st = dnnl_memory_desc_init_by_tag(&xmd, 2, xd, dnnl_f32, dnnl_ab);
    if (st == dnnl_success) st = dnnl_memory_desc_init_by_tag(&ymd, 2, yd, dnnl_f32, dnnl_ab);
    if (st == dnnl_success) st = dnnl_memory_desc_init_by_tag(&bmd, 2, bd, dnnl_f32, dnnl_ab);
    if (st == dnnl_success && !wmd) {
        st = dnnl_memory_desc_init_by_tag(&wany, 2, wd, dnnl_f32, dnnl_format_tag_any);
        wmd = &wany;
    }
    dnnl_matmul_desc_t md;
    if (st == dnnl_success) st = dnnl_matmul_desc_init(&md, &xmd, wmd, flags & 1 ? &bmd : NULL, &ymd);
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    if (st == dnnl_success && (flags & 2)) {
        st = dnnl_primitive_attr_create(&attr);
        if (st == dnnl_success) st = dnnl_post_ops_create(&po);
        if (st == dnnl_success) st = dnnl_post_ops_append_sum(po, 1.0f);
        if (st == dnnl_success) st = dnnl_primitive_attr_set_post_ops(attr, po);
    }
    if (st == dnnl_success) st = dnnl_primitive_desc_create(pd, &md, attr, g_engine, NULL);
    dnnl_post_ops_destroy(po);
    dnnl_primitive_attr_destroy(attr);
    return st;
}

/* The part of a blocked layout's offset that index i of dimension d
 * contributes: its outer block times the dimension's stride, plus its
 * place in each inner block on d (offsets are separable by dimension). */
static size_t blocked_part(const dnnl_memory_desc_t *md, int d, dnnl_dim_t i) {
    const dnnl_blocking_desc_t *bd = &md->format_desc.blocking;
    dnnl_dim_t block = 1, inner_stride = 1, off = 0;
    for (int b = bd->inner_nblks - 1; b >= 0; b--) {
        if (bd->inner_idxs[b] == d) {
            off += (i / block) % bd->inner_blks[b] * inner_stride;
            block *= bd->inner_blks[b];
        }
        inner_stride *= bd->inner_blks[b];
    }
    return (size_t)(off + i / block * bd->strides[d]);
}

/* Write w [N, K] (the K x N matrix B = w^T) into p->data in the layout
 * p->wmd, padding zero. Our own loop rather than a oneDNN reorder: its
 * ba -> BA16a64b reorder (jit:uni) took about twice as long on the
 * ViT-B/16 weights here. Tiles of 64 columns of B by 16 rows keep both
 * sides in cache. */
static cs_status write_blocked(struct f32_pack *p, const float *w) {
    const dnnl_memory_desc_t *md = &p->wmd;
    if (md->format_kind != dnnl_blocked)
        return error_set(CS_ERR_UNSUPPORTED, "oneDNN chose a weight layout that is not blocked (kind %d)",
                         (int)md->format_kind);
    int N = p->N, K = p->K;
    size_t *fk = mem_alloc((size_t)K + N, sizeof(size_t)), *fn = fk + K;
    if (!fk) return CS_ERR_NOMEM;
    for (int k = 0; k < K; k++) fk[k] = (size_t)md->offset0 + blocked_part(md, 0, k);
    for (int n = 0; n < N; n++) fn[n] = blocked_part(md, 1, n);
    size_t bytes = dnnl_memory_desc_get_size(md);
    if (bytes > (size_t)N * K * sizeof(float)) memset(p->data, 0, bytes);
    float *dst = p->data;
#pragma omp parallel for schedule(static)
    for (int n0 = 0; n0 < N; n0 += 64)
        for (int k0 = 0; k0 < K; k0 += 16)
            for (int k = k0; k < K && k < k0 + 16; k++)
                for (int n = n0; n < N && n < n0 + 64; n++) dst[fk[k] + fn[n]] = w[(size_t)n * K + k];
    cs_free(fk);
    return CS_OK;
}

static void prim_clear(f32_prim *e) {
    dnnl_primitive_destroy(e->mm);
    dnnl_memory_destroy(e->src);
    dnnl_memory_destroy(e->dst);
    dnnl_memory_destroy(e->bias);
    memset(e, 0, sizeof *e);
}

void op_f32_free(op_f32_weights *w) {
    struct f32_pack *p = w->pack;
    if (!p) return;
    for (int i = 0; i < F32_PRIMS; i++) prim_clear(&p->prim[i]);
    dnnl_memory_destroy(p->wei);
    dnnl_stream_destroy(p->stream);
    cs_free(p->data);
    cs_free(p);
    w->pack = NULL;
}

/* The layout is the one the matmul prefers for a tower's typical row count
 * (a few hundred tokens); the primitives of other row counts are made for
 * that same layout. */
#define F32_LAYOUT_M 256

cs_status op_f32_pack(const float *w, int N, int K, op_f32_weights *out) {
    out->pack = NULL;
    if (!op_f32_pack_available()) return error_set(CS_ERR_UNSUPPORTED, "oneDNN's CPU engine is not available");
    struct f32_pack *p = mem_calloc(1, sizeof *p);
    if (!p) return CS_ERR_NOMEM;
    p->N = N;
    p->K = K;
    out->pack = p;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_status_t st = dnnl_stream_create(&p->stream, g_engine, dnnl_stream_default_flags);
    if (st == dnnl_success) st = matmul_pd(F32_LAYOUT_M, N, K, 0, NULL, &pd);
    if (st == dnnl_success) p->wmd = *dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    dnnl_primitive_desc_destroy(pd);
    /* Our allocation: transparent huge pages, as for every weight. */
    size_t bytes = st == dnnl_success ? dnnl_memory_desc_get_size(&p->wmd) : 0;
    if (st == dnnl_success && !(p->data = mem_alloc(bytes, 1))) st = dnnl_out_of_memory;
    if (st == dnnl_success) st = dnnl_memory_create(&p->wei, &p->wmd, g_engine, p->data);
    cs_status s = st == dnnl_success ? write_blocked(p, w) : dnnl_error(st, "packing", N, K);
    if (s != CS_OK) op_f32_free(out);
    return s;
}

size_t op_f32_packed_bytes(const op_f32_weights *w) {
    return w->pack ? dnnl_memory_desc_get_size(&w->pack->wmd) : 0;
}

/* The primitive for (M, flags), made on first use in the oldest slot. */
static dnnl_status_t prim_get(struct f32_pack *p, int M, int flags, f32_prim **out) {
    for (int i = 0; i < F32_PRIMS; i++)
        if (p->prim[i].M == M && p->prim[i].flags == flags) {
            *out = &p->prim[i];
            return dnnl_success;
        }
    f32_prim *e = &p->prim[p->next];
    prim_clear(e);
    dnnl_primitive_desc_t pd = NULL;
    dnnl_status_t st = matmul_pd(M, p->N, p->K, flags, &p->wmd, &pd);
    if (st == dnnl_success) st = dnnl_primitive_create(&e->mm, pd);
    /* The memory objects wrap the caller's buffers, set on every call. */
    if (st == dnnl_success)
        st = dnnl_memory_create(&e->src, dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0), g_engine,
                                DNNL_MEMORY_NONE);
    if (st == dnnl_success)
        st = dnnl_memory_create(&e->dst, dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0), g_engine,
                                DNNL_MEMORY_NONE);
    if (st == dnnl_success && (flags & 1))
        st = dnnl_memory_create(&e->bias, dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 1),
                                g_engine, DNNL_MEMORY_NONE);
    dnnl_primitive_desc_destroy(pd);
    if (st != dnnl_success) {
        prim_clear(e);
        return st;
    }
    e->M = M;
    e->flags = flags;
    p->next = (p->next + 1) % F32_PRIMS;
    *out = e;
    return dnnl_success;
}

cs_status op_linear_f32(const float *x, int M, int K, const op_f32_weights *w, const float *b,
                        int accumulate, float *y) {
    struct f32_pack *p = w->pack;
    if (M <= 0) return CS_OK;
    f32_prim *e = NULL;
    int flags = (b ? 1 : 0) | (accumulate ? 2 : 0);
    dnnl_status_t st = prim_get(p, M, flags, &e);
    if (st != dnnl_success) return dnnl_error(st, "a matmul", p->N, K);
    st = dnnl_memory_set_data_handle(e->src, (void *)x);
    if (st == dnnl_success) st = dnnl_memory_set_data_handle(e->dst, y);
    if (st == dnnl_success && b) st = dnnl_memory_set_data_handle(e->bias, (void *)b);
    dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, e->src}, {DNNL_ARG_WEIGHTS, p->wei}, {DNNL_ARG_DST, e->dst},
                               {DNNL_ARG_BIAS, e->bias}};
    if (st == dnnl_success) st = dnnl_primitive_execute(e->mm, p->stream, b ? 4 : 3, args);
    if (st == dnnl_success) st = dnnl_stream_wait(p->stream);
    return st == dnnl_success ? CS_OK : dnnl_error(st, "a matmul", p->N, K);
}

#else /* built without oneDNN: nothing is ever packed */

int op_f32_pack_available(void) { return 0; }

int op_f32_pack_pays(void) { return 0; }

cs_status op_f32_pack(const float *w, int N, int K, op_f32_weights *out) {
    out->pack = NULL;
    return error_set(CS_ERR_UNSUPPORTED, "the library was built without oneDNN");
}

void op_f32_free(op_f32_weights *w) { w->pack = NULL; }

size_t op_f32_packed_bytes(const op_f32_weights *w) { return 0; }

cs_status op_linear_f32(const float *x, int M, int K, const op_f32_weights *w, const float *b,
                        int accumulate, float *y) {
    return CS_ERR_UNSUPPORTED;
}

#endif
