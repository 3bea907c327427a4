/* The SAM prompts file (`clip-surgery sam --prompts FILE.json`): a JSON list
 * of prompt sets, parsed with cJSON into one allocation: the set array, then
 * every set's points and labels, then the strings. */
#include <cjson/cJSON.h>
#include <math.h>
#include <string.h>
#include "base/fileio.h"
#include "sam.h"

#define MAX_SETS 4096
#define MAX_POINTS 4096

/* Bytes a parsed list needs (the checks of fill() have passed). */
typedef struct sizes {
    size_t points, strings;
} sizes;

static const char *k_keys[] = {"name", "points", "labels", "box", "mask_input", "multimask"};

/* One set: every key known and well-typed. */
static cs_status check_set(const char *path, int i, const cJSON *o, sizes *z) {
    if (!cJSON_IsObject(o))
        return error_set(CS_ERR_FORMAT, "%s: prompt set %d is not a JSON object", path, i + 1);
    const cJSON *it;
    cJSON_ArrayForEach(it, o) {
        int known = 0;
        for (size_t k = 0; k < sizeof k_keys / sizeof *k_keys; k++) known |= !strcmp(it->string, k_keys[k]);
        if (!known)
            return error_set(CS_ERR_FORMAT, "%s: prompt set %d: unknown key '%s' (name, points, labels, "
                           "box, mask_input, multimask)", path, i + 1, it->string);
    }
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(o, "name"), *pts = cJSON_GetObjectItemCaseSensitive(o, "points");
    const cJSON *lab = cJSON_GetObjectItemCaseSensitive(o, "labels"), *box = cJSON_GetObjectItemCaseSensitive(o, "box");
    const cJSON *mask = cJSON_GetObjectItemCaseSensitive(o, "mask_input"), *mm = cJSON_GetObjectItemCaseSensitive(o, "multimask");
    if ((name && !cJSON_IsString(name)) || (mask && !cJSON_IsString(mask)) || (mm && !cJSON_IsBool(mm)))
        return error_set(CS_ERR_FORMAT, "%s: prompt set %d: name and mask_input must be strings, "
                       "multimask true or false", path, i + 1);
    int n = pts ? cJSON_GetArraySize(pts) : 0;
    if (pts && (!cJSON_IsArray(pts) || n > MAX_POINTS))
        return error_set(CS_ERR_FORMAT, "%s: prompt set %d: points must be a list of at most %d [x, y]",
                       path, i + 1, MAX_POINTS);
    cJSON_ArrayForEach(it, pts) {
        if (!cJSON_IsArray(it) || cJSON_GetArraySize(it) != 2 || !cJSON_IsNumber(cJSON_GetArrayItem(it, 0)) ||
            !cJSON_IsNumber(cJSON_GetArrayItem(it, 1)))
            return error_set(CS_ERR_FORMAT, "%s: prompt set %d: a point is not [x, y]", path, i + 1);
    }
    if (lab) {
        if (!cJSON_IsArray(lab) || cJSON_GetArraySize(lab) != n)
            return error_set(CS_ERR_FORMAT, "%s: prompt set %d: labels must be a list as long as points (%d)",
                           path, i + 1, n);
        cJSON_ArrayForEach(it, lab) {
            if (!cJSON_IsNumber(it) || (it->valuedouble != 0 && it->valuedouble != 1))
                return error_set(CS_ERR_FORMAT, "%s: prompt set %d: labels must be 1 (foreground) or 0 "
                               "(background)", path, i + 1);
        }
    }
    if (box) {
        int ok = cJSON_IsArray(box) && cJSON_GetArraySize(box) == 4;
        cJSON_ArrayForEach(it, box) ok &= cJSON_IsNumber(it);
        if (!ok) return error_set(CS_ERR_FORMAT, "%s: prompt set %d: box must be [x0, y0, x1, y1]", path, i + 1);
    }
    if (!n && !box && !mask)
        return error_set(CS_ERR_FORMAT, "%s: prompt set %d has no points, box or mask_input", path, i + 1);
    z->points += (size_t)n;
    z->strings += (name ? strlen(name->valuestring) + 1 : 0) + (mask ? strlen(mask->valuestring) + 1 : 0);
    return CS_OK;
}

static const char *copy_string(const cJSON *s, char **strings) {
    if (!s) return NULL;
    size_t len = strlen(s->valuestring) + 1;
    memcpy(*strings, s->valuestring, len);
    *strings += len;
    return *strings - len;
}

/* Numbers beyond float's range become infinities, which predict refuses
 * as outside the image. */
static float to_float(const cJSON *x) {
    double v = x->valuedouble;
    return fabs(v) > 3e38 ? (float)(v > 0 ? INFINITY : -INFINITY) : (float)v;
}

static void fill(const cJSON *o, int multimask_default, cs_sam_prompt_set *set, float **pf,
                 int32_t **pl, char **strings) {
    const cJSON *pts = cJSON_GetObjectItemCaseSensitive(o, "points"), *lab = cJSON_GetObjectItemCaseSensitive(o, "labels");
    const cJSON *box = cJSON_GetObjectItemCaseSensitive(o, "box"), *mm = cJSON_GetObjectItemCaseSensitive(o, "multimask");
    set->name = copy_string(cJSON_GetObjectItemCaseSensitive(o, "name"), strings);
    set->mask_input = copy_string(cJSON_GetObjectItemCaseSensitive(o, "mask_input"), strings);
    set->multimask = mm ? cJSON_IsTrue(mm) : multimask_default;
    set->n_points = pts ? cJSON_GetArraySize(pts) : 0;
    set->points = *pf;
    set->labels = *pl;
    int k = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, pts) {
        (*pf)[2 * k] = to_float(cJSON_GetArrayItem(it, 0));
        (*pf)[2 * k + 1] = to_float(cJSON_GetArrayItem(it, 1));
        (*pl)[k] = lab ? (int32_t)cJSON_GetArrayItem(lab, k)->valuedouble : 1;
        k++;
    }
    *pf += 2 * k;
    *pl += k;
    set->has_box = box != NULL;
    for (int c = 0; box && c < 4; c++) set->box[c] = to_float(cJSON_GetArrayItem(box, c));
}

cs_status cs_sam_prompts_parse(const char *text, size_t len, const char *path, int multimask_default,
                               cs_sam_prompt_set **sets, int *n) {
    *sets = NULL;
    *n = 0;
    cJSON *root = cJSON_ParseWithLength(text, len);
    if (!root) return error_set(CS_ERR_FORMAT, "%s: not valid JSON", path);
    int count = cJSON_GetArraySize(root);
    cs_status s = CS_OK;
    if (!cJSON_IsArray(root) || count < 1 || count > MAX_SETS)
        s = error_set(CS_ERR_FORMAT, "%s: expected a list of 1 to %d prompt sets", path, MAX_SETS);
    sizes z = {0, 0};
    const cJSON *o;
    int i = 0;
    if (s == CS_OK) cJSON_ArrayForEach(o, root) {
        if ((s = check_set(path, i++, o, &z)) != CS_OK) break;
    }
    size_t bytes = sizeof(cs_sam_prompt_set) * (size_t)count + z.points * (2 * sizeof(float) + sizeof(int32_t)) +
                   z.strings;
    char *block = s == CS_OK ? mem_alloc(bytes, 1) : NULL;
    if (s == CS_OK && !block) s = CS_ERR_NOMEM;
    if (s == CS_OK) {
        cs_sam_prompt_set *list = (cs_sam_prompt_set *)block;
        float *pf = (float *)(list + count);
        int32_t *pl = (int32_t *)(pf + 2 * z.points);
        char *strings = (char *)(pl + z.points);
        i = 0;
        cJSON_ArrayForEach(o, root) fill(o, multimask_default, &list[i++], &pf, &pl, &strings);
        *sets = list;
        *n = count;
    }
    cJSON_Delete(root);
    return s;
}

cs_status cs_sam_prompts_load(const char *path, int multimask_default, cs_sam_prompt_set **sets, int *n) {
    char *text;
    size_t len;
    *sets = NULL;
    *n = 0;
    cs_status s = cs_read_file(path, (size_t)64 << 20, &text, &len);
    if (s != CS_OK) return s;
    s = cs_sam_prompts_parse(text, len, path, multimask_default, sets, n);
    cs_free(text);
    return s;
}

void cs_sam_prompts_free(cs_sam_prompt_set *sets) { cs_free(sets); }
