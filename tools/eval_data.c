/* Datasets for eval: the generic layout (images paired with masks by file
 * name), PASCAL VOC's published layout, and labels.json image-level labels
 * (the format of ../shared/data/voc14). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include "base/fileio.h"
#include "eval.h"

static char *join(const char *dir, const char *a, const char *b, const char *c) {
    size_t n = strlen(dir) + strlen(a) + strlen(b) + strlen(c) + 2;
    char *p = malloc(n);
    snprintf(p, n, "%s/%s%s%s", dir, a, b, c);
    return p;
}

static eval_item *add_item(eval_dataset *d) {
    d->items = realloc(d->items, sizeof *d->items * (size_t)(d->n + 1));
    eval_item *it = &d->items[d->n++];
    memset(it, 0, sizeof *it);
    it->n_labels = -1;
    return it;
}

void eval_dataset_free(eval_dataset *d) {
    for (int i = 0; i < d->n; i++) {
        free(d->items[i].image);
        free(d->items[i].mask);
        free(d->items[i].name);
        free(d->items[i].labels);
    }
    free(d->items);
    for (int c = 0; c < d->n_names; c++) free(d->names[c]);
    free(d->names);
    free(d->spec);
    cJSON_Delete(d->labels);
    memset(d, 0, sizeof *d);
}

static int is_image_name(const char *name) {
    const char *ext = strrchr(name, '.');
    return ext && (!strcasecmp(ext, ".png") || !strcasecmp(ext, ".jpg") || !strcasecmp(ext, ".jpeg"));
}

/* --images DIR: every JPEG/PNG whose stem ends with --image-suffix; its mask
 * is --masks DIR/<stem without the suffix><mask suffix>.png. */
static int load_generic(const cli_args *a, eval_dataset *d) {
    const char *dir = cli_get(a, "images"), *masks = cli_get(a, "masks");
    const char *isuf = cli_get(a, "image-suffix"), *msuf = cli_get(a, "mask-suffix");
    isuf = isuf ? isuf : "";
    msuf = msuf ? msuf : "";
    struct dirent **list;
    int k = scandir(dir, &list, NULL, alphasort);
    if (k < 0) {
        cli_error("--images '%s': cannot read the folder", dir);
        return CLI_EXIT_USAGE;
    }
    for (int e = 0; e < k; e++) {
        const char *name = list[e]->d_name;
        size_t stem = strrchr(name, '.') ? (size_t)(strrchr(name, '.') - name) : 0, ls = strlen(isuf);
        if (is_image_name(name) && stem >= ls && !strncmp(name + stem - ls, isuf, ls)) {
            eval_item *it = add_item(d);
            it->image = join(dir, name, "", "");
            it->name = strdup(name);
            if (masks) {
                char *base = strndup(name, stem - ls);
                it->mask = join(masks, base, msuf, ".png");
                free(base);
            }
        }
        free(list[e]);
    }
    free(list);
    size_t n = strlen(dir) + 9;
    d->spec = malloc(n);
    snprintf(d->spec, n, "generic:%s", dir);
    return 0;
}

/* voc:DIR: ImageSets/Segmentation/<split>.txt, JPEGImages/<id>.jpg,
 * SegmentationClass/<id>.png (palette indices). */
static int load_voc(const cli_args *a, const char *root, eval_dataset *d) {
    const char *split = cli_get(a, "split") ? cli_get(a, "split") : "val";
    char *list = join(root, "ImageSets/Segmentation/", split, ".txt"), *text;
    size_t len;
    cs_status s = cs_read_file(list, 64 << 20, &text, &len);
    free(list);
    if (s != CS_OK) return cli_fail(s);
    char *save = NULL;
    for (char *id = strtok_r(text, " \t\r\n", &save); id; id = strtok_r(NULL, " \t\r\n", &save)) {
        eval_item *it = add_item(d);
        it->image = join(root, "JPEGImages/", id, ".jpg");
        it->mask = join(root, "SegmentationClass/", id, ".png");
        it->name = malloc(strlen(id) + 5);
        sprintf(it->name, "%s.jpg", id);
    }
    cs_free(text);
    size_t n = strlen(root) + strlen(split) + 8;
    d->spec = malloc(n);
    snprintf(d->spec, n, "voc:%s:%s", root, split);
    return 0;
}

/* labels.json: {"classes": [...], "labels": {"<file>": ["<class>", ...]}}. */
static int load_labels_json(const char *path, eval_dataset *d) {
    char *text;
    size_t len;
    cs_status s = cs_read_file(path, 256 << 20, &text, &len);
    if (s != CS_OK) return cli_fail(s);
    d->labels = cJSON_Parse(text);
    cs_free(text);
    const cJSON *labels = cJSON_GetObjectItemCaseSensitive(d->labels, "labels");
    const cJSON *classes = cJSON_GetObjectItemCaseSensitive(d->labels, "classes");
    if (!cJSON_IsObject(labels) || (classes && !cJSON_IsArray(classes))) {
        cli_error("%s: not a labels.json (an object with \"labels\" and optional \"classes\")", path);
        return CLI_EXIT_USAGE;
    }
    const cJSON *c;
    cJSON_ArrayForEach(c, classes) {
        if (!cJSON_IsString(c)) {
            cli_error("%s: \"classes\" must hold strings", path);
            return CLI_EXIT_USAGE;
        }
        d->names = realloc(d->names, sizeof *d->names * (size_t)(d->n_names + 1));
        d->names[d->n_names++] = strdup(c->valuestring);
    }
    return 0;
}

int eval_dataset_load(const cli_args *a, eval_dataset *d) {
    memset(d, 0, sizeof *d);
    const char *ds = cli_get(a, "dataset");
    int rc;
    if (ds && !strncmp(ds, "voc:", 4)) rc = load_voc(a, ds + 4, d);
    else if (ds) {
        cli_error("--dataset '%s' is not voc:DIR (or use --images/--masks for the generic layout)", ds);
        return CLI_EXIT_USAGE;
    } else rc = load_generic(a, d);
    if (!rc && cli_has(a, "labels")) rc = load_labels_json(cli_get(a, "labels"), d);
    if (!rc && d->n == 0) {
        cli_error("%s: no images in the dataset (check --images, --image-suffix or the split)", d->spec);
        rc = CLI_EXIT_USAGE;
    }
    return rc;
}

static int class_of_label(const eval_dataset *d, const seg_classes *sc, const char *label) {
    for (int c = 0; c < d->n_names; c++)
        if (!strcmp(d->names[c], label)) return c;
    for (int c = 0; !d->n_names && c < sc->C; c++)
        if (!strcmp(sc->names[c], label)) return c;
    return -1;
}

int eval_dataset_resolve_labels(eval_dataset *d, const seg_classes *sc) {
    const cJSON *labels = cJSON_GetObjectItemCaseSensitive(d->labels, "labels");
    if (!labels) return 0;
    if (d->n_names && d->n_names != sc->C) {
        cli_error("labels.json names %d classes, the class list %d", d->n_names, sc->C);
        return CLI_EXIT_USAGE;
    }
    for (int i = 0; i < d->n; i++) {
        eval_item *it = &d->items[i];
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(labels, it->name), *l;
        if (!cJSON_IsArray(list)) continue;
        it->n_labels = 0;
        it->labels = calloc((size_t)cJSON_GetArraySize(list) + 1, sizeof *it->labels);
        cJSON_ArrayForEach(l, list) {
            int c = cJSON_IsString(l) ? class_of_label(d, sc, l->valuestring) : -1;
            if (c < 0) {
                cli_error("labels.json: label %s of %s is not one of the classes",
                          cJSON_IsString(l) ? l->valuestring : "(not a string)", it->name);
                return CLI_EXIT_USAGE;
            }
            it->labels[it->n_labels++] = c;
        }
    }
    return 0;
}
