/* Datasets for eval: what every layout shares (items, class names, labels),
 * the generic layout (images paired with masks by file name), labels.json
 * image-level labels (the format of ../shared/data/voc14), and the choice of
 * layout. The published layouts are in eval_seg_data.c (segmentation) and
 * eval_ml_data.c (multi-label). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "eval.h"

char *eval_path(const char *dir, const char *a, const char *b, const char *c) {
    size_t n = strlen(dir) + strlen(a) + strlen(b) + strlen(c) + 2;
    char *p = cli_xmalloc(n);
    snprintf(p, n, "%s/%s%s%s", dir, a, b, c);
    return p;
}

eval_item *eval_add_item(eval_dataset *d, char *image, char *mask, char *name) {
    d->items = cli_xrealloc(d->items, sizeof *d->items * (size_t)(d->n + 1));
    eval_item *it = &d->items[d->n++];
    memset(it, 0, sizeof *it);
    it->image = image;
    it->mask = mask;
    it->name = name;
    it->n_labels = -1;
    return it;
}

int eval_class_index(eval_dataset *d, const char *name) {
    for (int c = 0; c < d->n_names; c++)
        if (!strcmp(d->names[c], name)) return c;
    d->names = cli_xrealloc(d->names, sizeof *d->names * (size_t)(d->n_names + 1));
    d->names[d->n_names] = cli_xstrdup(name);
    return d->n_names++;
}

void eval_item_label(eval_item *it, int cls, int difficult) {
    if (it->n_labels < 0) it->n_labels = 0;
    for (int k = 0; k < it->n_labels; k++)
        if (it->labels[k] == cls) return;
    it->labels = cli_xrealloc(it->labels, sizeof *it->labels * (size_t)(it->n_labels + 1));
    it->labels[it->n_labels] = cls;
    if (difficult && !it->difficult) it->difficult = cli_xcalloc((size_t)it->n_labels + 1, 1);
    else if (it->difficult) it->difficult = cli_xrealloc(it->difficult, (size_t)it->n_labels + 1);
    if (it->difficult) it->difficult[it->n_labels] = (uint8_t)difficult;
    it->n_labels++;
}

void eval_set_spec(eval_dataset *d, const char *layout, const char *path, const char *split) {
    size_t n = strlen(layout) + strlen(path) + (split ? strlen(split) : 0) + 3;
    d->spec = cli_xmalloc(n);
    if (split) snprintf(d->spec, n, "%s:%s:%s", layout, path, split);
    else snprintf(d->spec, n, "%s:%s", layout, path);
}

int eval_read_text(const char *path, char **text) {
    size_t len;
    cs_status s = cs_read_file(path, (size_t)1 << 30, text, &len);
    return s == CS_OK ? 0 : cli_fail(s);
}

const char *eval_split(const cli_args *a, const char *dflt) {
    return cli_get(a, "split") ? cli_get(a, "split") : dflt;
}

void eval_dataset_free(eval_dataset *d) {
    for (int i = 0; i < d->n; i++) {
        free(d->items[i].image);
        free(d->items[i].mask);
        free(d->items[i].name);
        free(d->items[i].labels);
        free(d->items[i].difficult);
    }
    free(d->items);
    for (int c = 0; c < d->n_names; c++) free(d->names[c]);
    free(d->names);
    free(d->spec);
    free(d->label_map);
    memset(d, 0, sizeof *d);
}

static int is_image_name(const char *name) {
    const char *ext = strrchr(name, '.');
    return ext && (!strcasecmp(ext, ".png") || !strcasecmp(ext, ".jpg") || !strcasecmp(ext, ".jpeg"));
}

int eval_scan_folder(eval_dataset *d, const char *dir, const char *isuf, const char *masks, const char *msuf) {
    struct dirent **list;
    int k = scandir(dir, &list, NULL, alphasort);
    if (k < 0) {
        cli_error("'%s': cannot read the folder", dir);
        return CLI_EXIT_USAGE;
    }
    size_t ls = strlen(isuf);
    for (int e = 0; e < k; e++) {
        const char *name = list[e]->d_name, *dot = strrchr(name, '.');
        size_t stem = dot ? (size_t)(dot - name) : 0;
        if (is_image_name(name) && stem >= ls && !strncmp(name + stem - ls, isuf, ls)) {
            char *mask = NULL;
            if (masks) {
                char *base = cli_xstrndup(name, stem - ls);
                mask = eval_path(masks, base, msuf, ".png");
                free(base);
            }
            eval_add_item(d, eval_path(dir, name, "", ""), mask, cli_xstrdup(name));
        }
        free(list[e]);
    }
    free(list);
    return 0;
}

/* --images DIR: every JPEG/PNG whose stem ends with --image-suffix; its mask
 * is --masks DIR/<stem without the suffix><mask suffix>.png. */
static int load_generic(const cli_args *a, eval_dataset *d) {
    const char *dir = cli_get(a, "images"), *masks = cli_get(a, "masks");
    const char *isuf = cli_get(a, "image-suffix"), *msuf = cli_get(a, "mask-suffix");
    d->has_masks = masks != NULL;
    eval_set_spec(d, "generic", dir, NULL);
    return eval_scan_folder(d, dir, isuf ? isuf : "", masks, msuf ? msuf : "");
}

/* The dataset's class index of a labels.json label: its position in
 * "classes" when given, else the label's own entry among the names. */
static int labels_json_class(eval_dataset *d, const cJSON *label) {
    if (!cJSON_IsString(label)) return -1;
    if (!d->names_by_position) return eval_class_index(d, label->valuestring);
    for (int c = 0; c < d->n_names; c++)
        if (!strcmp(d->names[c], label->valuestring)) return c;
    return -1;
}

/* labels.json: {"classes": [...], "labels": {"<file>": ["<class>", ...]}};
 * images it does not name keep their mask's classes. */
static int apply_labels_json(const cJSON *root, const char *path, eval_dataset *d) {
    const cJSON *labels = cJSON_GetObjectItemCaseSensitive(root, "labels");
    const cJSON *classes = cJSON_GetObjectItemCaseSensitive(root, "classes"), *c;
    if (!cJSON_IsObject(labels) || (classes && !cJSON_IsArray(classes))) {
        cli_error("%s: not a labels.json (an object with \"labels\" and optional \"classes\")", path);
        return CLI_EXIT_USAGE;
    }
    cJSON_ArrayForEach(c, classes) {
        if (!cJSON_IsString(c)) {
            cli_error("%s: \"classes\" must hold strings", path);
            return CLI_EXIT_USAGE;
        }
        eval_class_index(d, c->valuestring);
    }
    d->names_by_position = classes != NULL;
    for (int i = 0; i < d->n; i++) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(labels, d->items[i].name), *l;
        if (!cJSON_IsArray(list)) continue;
        d->items[i].n_labels = 0;
        cJSON_ArrayForEach(l, list) {
            int k = labels_json_class(d, l);
            if (k < 0) {
                cli_error("%s: label %s of %s is not one of its \"classes\"", path,
                          cJSON_IsString(l) ? l->valuestring : "(not a string)", d->items[i].name);
                return CLI_EXIT_USAGE;
            }
            eval_item_label(&d->items[i], k, 0);
        }
    }
    return 0;
}

static int load_labels_json(const char *path, eval_dataset *d) {
    char *text;
    int rc = eval_read_text(path, &text);
    if (rc) return rc;
    cJSON *root = cJSON_Parse(text);
    cs_free(text);
    rc = apply_labels_json(root, path, d);
    cJSON_Delete(root);
    return rc;
}

/* --dataset LAYOUT:PATH. own_labels: the layout gives image-level labels
 * (so --labels would be a second source). */
typedef struct eval_layout {
    const char *name;
    int (*load)(const cli_args *a, const char *path, eval_dataset *d);
    int uses_images, own_labels;
} eval_layout;

static const eval_layout k_layouts[] = {
    {"voc", eval_load_voc, 0, 0},
    {"context", eval_load_context, 0, 0},
    {"cityscapes", eval_load_cityscapes, 0, 0},
    {"cocostuff", eval_load_cocostuff, 0, 0},
    {"voc20", eval_load_voc20, 0, 0},
    {"context60", eval_load_context60, 0, 0},
    {"cocoobject", eval_load_cocoobject, 0, 0},
    {"ade20k", eval_load_ade20k, 0, 0},
    {"voc07", eval_load_voc07, 0, 1},
    {"coco", eval_load_coco, 1, 1},
    {"csv", eval_load_csv, 1, 1},
};

static const eval_layout *find_layout(const char *spec) {
    const char *colon = strchr(spec, ':');
    for (size_t i = 0; colon && i < sizeof k_layouts / sizeof *k_layouts; i++)
        if (strlen(k_layouts[i].name) == (size_t)(colon - spec) && !strncmp(spec, k_layouts[i].name, colon - spec))
            return &k_layouts[i];
    return NULL;
}

static int load_layout(const cli_args *a, const char *spec, eval_dataset *d) {
    const eval_layout *l = find_layout(spec);
    if (!l) {
        cli_error("--dataset '%s' is not voc:, voc20:, context:, context60:, cityscapes:, cocostuff:, cocoobject:, "
                  "ade20k:, voc07:, coco: or csv: with a path (or use --images for the generic layout)", spec);
        return CLI_EXIT_USAGE;
    }
    if (cli_has(a, "images") && !l->uses_images) {
        cli_error("--images goes with the generic layout, coco: or csv:, not --dataset %s:", l->name);
        return CLI_EXIT_USAGE;
    }
    const char *generic_only[] = {"masks", "image-suffix", "mask-suffix"};
    for (int i = 0; i < 3; i++)
        if (cli_has(a, generic_only[i])) {
            cli_error("--%s goes with the generic layout (--images DIR), not --dataset %s:", generic_only[i],
                      l->name);
            return CLI_EXIT_USAGE;
        }
    if (cli_has(a, "labels") && l->own_labels) {
        cli_error("--labels: --dataset %s: has image-level labels of its own", l->name);
        return CLI_EXIT_USAGE;
    }
    return l->load(a, strchr(spec, ':') + 1, d);
}

int eval_dataset_load(const cli_args *a, eval_dataset *d) {
    memset(d, 0, sizeof *d);
    const char *ds = cli_get(a, "dataset");
    int rc;
    if (ds) rc = load_layout(a, ds, d);
    else if (cli_has(a, "images")) rc = load_generic(a, d);
    else {
        cli_error("eval needs --dataset LAYOUT:PATH or --images DIR (see --help)");
        return CLI_EXIT_USAGE;
    }
    if (!rc && cli_has(a, "labels")) rc = load_labels_json(cli_get(a, "labels"), d);
    if (!rc && d->n == 0) {
        cli_error("%s: no images in the dataset (check the path, --image-suffix or the split)", d->spec);
        rc = CLI_EXIT_USAGE;
    }
    return rc;
}

/* Class index of each dataset name, or an exit code. */
static int map_names(const eval_dataset *d, const cs_classes *cl, int *to_class) {
    int C = cs_classes_count(cl);
    if (d->names_by_position) {
        if (d->n_names != C) {
            cli_error("%s: the dataset names %d classes, the class list %d", d->spec, d->n_names, C);
            return CLI_EXIT_USAGE;
        }
        for (int k = 0; k < d->n_names; k++) to_class[k] = k;
        return 0;
    }
    for (int k = 0; k < d->n_names; k++) {
        to_class[k] = -1;
        for (int c = 0; c < C && to_class[k] < 0; c++)
            if (!strcmp(cs_classes_name(cl, c), d->names[k])) to_class[k] = c;
        if (to_class[k] < 0) {
            cli_error("%s: class '%s' of the labels is not in the class list (matched by first names)",
                      d->spec, d->names[k]);
            return CLI_EXIT_USAGE;
        }
    }
    return 0;
}

int eval_dataset_resolve_labels(eval_dataset *d, const cs_classes *cl) {
    int *to_class = cli_xmalloc(sizeof(int) * (size_t)(d->n_names + 1));
    int rc = map_names(d, cl, to_class);
    for (int i = 0; !rc && i < d->n; i++)
        for (int k = 0; k < d->items[i].n_labels; k++) d->items[i].labels[k] = to_class[d->items[i].labels[k]];
    free(to_class);
    return rc;
}
