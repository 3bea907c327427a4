/* Multi-label datasets: PASCAL VOC 2007's classification lists, COCO
 * instances JSON and a generic CSV. Every listed image gets a label list
 * (empty: negative for every class); there are no masks. */
#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "eval.h"

/* An item found by a key (an id string or number) through binary search. */
typedef struct keyed { const char *id; double num; int item; } keyed;

static int by_id(const void *a, const void *b) { return strcmp(((const keyed *)a)->id, ((const keyed *)b)->id); }

static int by_num(const void *a, const void *b) {
    double x = ((const keyed *)a)->num, y = ((const keyed *)b)->num;
    return (x > y) - (x < y);
}

static int find_keyed(const keyed *index, int n, keyed key, int (*cmp)(const void *, const void *)) {
    const keyed *k = bsearch(&key, index, (size_t)n, sizeof *index, cmp);
    return k ? k->item : -1;
}

/* ------------------------------------------------------------ VOC 2007 */

/* One class file: "<id> <1|-1|0>" per line. */
static int read_voc07_class(const char *path, int cls, const keyed *index, eval_dataset *d) {
    char *text;
    int rc = eval_read_text(path, &text);
    if (rc) return rc;
    char *save = NULL;
    for (char *line = strtok_r(text, "\r\n", &save); line && !rc; line = strtok_r(NULL, "\r\n", &save)) {
        char id[256];
        int value, item;
        if (sscanf(line, "%255s %d", id, &value) != 2 || value < -1 || value > 1) {
            cli_error("%s: line '%s' is not '<id> 1|-1|0'", path, line);
            rc = CLI_EXIT_USAGE;
        } else if ((item = find_keyed(index, d->n, (keyed){id, 0, 0}, by_id)) < 0) {
            cli_error("%s: image %s is not in the split's image list", path, id);
            rc = CLI_EXIT_USAGE;
        } else if (value >= 0) {
            eval_item_label(&d->items[item], cls, value == 0);
        }
    }
    cs_free(text);
    return rc;
}

/* Every <class>_<split>.txt of the Main folder, in name order. */
static int read_voc07_classes(const char *main, const char *split, const keyed *index, eval_dataset *d) {
    struct dirent **files;
    int n = scandir(main, &files, NULL, alphasort), rc = 0;
    char suffix[256];
    snprintf(suffix, sizeof suffix, "_%s.txt", split);
    size_t ls = strlen(suffix);
    for (int i = 0; i < n; i++) {
        const char *name = files[i]->d_name;
        size_t len = strlen(name);
        if (!rc && len > ls && !strcmp(name + len - ls, suffix)) {
            char *cls = cli_xstrndup(name, len - ls), *path = eval_path(main, name, "", "");
            rc = read_voc07_class(path, eval_class_index(d, cls), index, d);
            free(cls);
            free(path);
        }
        free(files[i]);
    }
    if (n >= 0) free(files);
    if (!rc && d->n_names == 0) {
        cli_error("%s: no <class>_%s.txt files", main, split);
        rc = CLI_EXIT_USAGE;
    }
    return rc;
}

/* voc07:DIR (VOCdevkit/VOC2007): the images of ImageSets/Main/<split>.txt
 * (default test), JPEGImages/<id>.jpg; ImageSets/Main/<class>_<split>.txt
 * says per image 1 (positive), -1 (negative) or 0 (difficult: left out of
 * that class's AP, as the VOC devkit's classification protocol does).
 * The classes are those files' names, in name order, matched by name. */
int eval_load_voc07(const cli_args *a, const char *root, eval_dataset *d) {
    const char *split = eval_split(a, "test");
    char *main = eval_path(root, "ImageSets/Main", "", ""), *list = eval_path(main, split, ".txt", ""), *text;
    char *images = eval_path(root, "JPEGImages", "", "");
    eval_set_spec(d, "voc07", root, split);
    int rc = eval_read_text(list, &text);
    keyed *index = NULL;
    if (!rc) {
        char *save = NULL;
        for (char *id = strtok_r(text, " \t\r\n", &save); id; id = strtok_r(NULL, " \t\r\n", &save)) {
            char *name = cli_xmalloc(strlen(id) + 5);
            sprintf(name, "%s.jpg", id);
            eval_add_item(d, eval_path(images, name, "", ""), NULL, name)->n_labels = 0;
            index = cli_xrealloc(index, sizeof *index * (size_t)d->n);
            index[d->n - 1] = (keyed){id, 0, d->n - 1};
        }
        qsort(index, (size_t)d->n, sizeof *index, by_id);
        rc = read_voc07_classes(main, split, index, d);
        cs_free(text);
    }
    free(index);
    free(main);
    free(list);
    free(images);
    return rc;
}

/* ------------------------------------------------------------ COCO */

static const cJSON *get(const cJSON *o, const char *key) { return cJSON_GetObjectItemCaseSensitive(o, key); }

static int coco_bad(const char *path, const char *what) {
    cli_error("%s: not a COCO instances file (%s)", path, what);
    return CLI_EXIT_USAGE;
}

/* Categories in id order become the dataset's classes; index maps ids. */
static int coco_categories(const cJSON *root, const char *path, eval_dataset *d, keyed **index) {
    const cJSON *cats = get(root, "categories"), *c;
    int n = cJSON_GetArraySize(cats), k = 0;
    if (!cJSON_IsArray(cats) || n == 0) return coco_bad(path, "no \"categories\"");
    *index = cli_xcalloc((size_t)n, sizeof **index);
    cJSON_ArrayForEach(c, cats) {
        if (!cJSON_IsNumber(get(c, "id")) || !cJSON_IsString(get(c, "name")))
            return coco_bad(path, "a category without a numeric id and a name");
        (*index)[k] = (keyed){get(c, "name")->valuestring, get(c, "id")->valuedouble, k};
        k++;
    }
    qsort(*index, (size_t)n, sizeof **index, by_num);
    for (k = 0; k < n; k++) {
        d->names = cli_xrealloc(d->names, sizeof *d->names * (size_t)(k + 1));
        d->names[k] = cli_xstrdup((*index)[k].id);
        (*index)[k].item = k;
    }
    d->n_names = n;
    d->names_by_position = 1;
    return 0;
}

/* Images in file-name order; index maps image ids to items. */
static int coco_images(const cJSON *root, const char *path, const char *dir, eval_dataset *d, keyed **index) {
    const cJSON *images = get(root, "images"), *im;
    int n = cJSON_GetArraySize(images), k = 0;
    if (!cJSON_IsArray(images)) return coco_bad(path, "no \"images\"");
    *index = cli_xcalloc((size_t)n + 1, sizeof **index);
    cJSON_ArrayForEach(im, images) {
        if (!cJSON_IsNumber(get(im, "id")) || !cJSON_IsString(get(im, "file_name")))
            return coco_bad(path, "an image without a numeric id and a file_name");
        (*index)[k++] = (keyed){get(im, "file_name")->valuestring, get(im, "id")->valuedouble, 0};
    }
    qsort(*index, (size_t)n, sizeof **index, by_id);
    for (k = 0; k < n; k++) {
        const char *file = (*index)[k].id;
        eval_add_item(d, eval_path(dir, file, "", ""), NULL, cli_xstrdup(file))->n_labels = 0;
        (*index)[k].item = k;
    }
    qsort(*index, (size_t)n, sizeof **index, by_num);
    return 0;
}

/* Each image's labels: the categories of its annotations. */
static int coco_annotations(const cJSON *root, const char *path, const keyed *images, const keyed *cats,
                            eval_dataset *d) {
    const cJSON *anns = get(root, "annotations"), *an;
    if (!cJSON_IsArray(anns)) return coco_bad(path, "no \"annotations\"");
    cJSON_ArrayForEach(an, anns) {
        const cJSON *image = get(an, "image_id"), *cat = get(an, "category_id");
        if (!cJSON_IsNumber(image) || !cJSON_IsNumber(cat)) return coco_bad(path, "an annotation without ids");
        int item = find_keyed(images, d->n, (keyed){"", image->valuedouble, 0}, by_num);
        int cls = find_keyed(cats, d->n_names, (keyed){"", cat->valuedouble, 0}, by_num);
        if (item < 0 || cls < 0) {
            cli_error("%s: an annotation names image %.0f or category %.0f, which the file does not list", path,
                      image->valuedouble, cat->valuedouble);
            return CLI_EXIT_USAGE;
        }
        eval_item_label(&d->items[item], cls, 0);
    }
    return 0;
}

/* coco:ANNOTATIONS.json --images DIR (e.g. instances_val2017.json and
 * val2017/): every image of "images" (those without annotations are
 * negative for every class, as torchvision's CocoDetection lists them),
 * labelled with the categories of its annotations (crowd ones included);
 * the classes are the categories in id order, matched by position. */
int eval_load_coco(const cli_args *a, const char *json, eval_dataset *d) {
    eval_set_spec(d, "coco", json, NULL);
    if (!cli_has(a, "images")) {
        cli_error("--dataset coco:%s needs --images DIR (the folder of the file names)", json);
        return CLI_EXIT_USAGE;
    }
    char *text;
    int rc = eval_read_text(json, &text);
    if (rc) return rc;
    cJSON *root = cJSON_Parse(text);
    cs_free(text);
    keyed *cats = NULL, *images = NULL;
    if (!root) rc = coco_bad(json, "not JSON");
    if (!rc) rc = coco_categories(root, json, d, &cats);
    if (!rc) rc = coco_images(root, json, cli_get(a, "images"), d, &images);
    if (!rc) rc = coco_annotations(root, json, images, cats, d);
    free(cats);
    free(images);
    cJSON_Delete(root);
    return rc;
}

/* ------------------------------------------------------------ CSV */

static char *trim(char *s) {
    while (isspace((unsigned char)*s)) s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1])) s[--n] = '\0';
    return s;
}

static int is_image_file_name(const char *name) {
    const char *ext = strrchr(name, '.');
    return ext && (!strcasecmp(ext, ".jpg") || !strcasecmp(ext, ".jpeg") || !strcasecmp(ext, ".png"));
}

/* A first line whose first field is not an image file name. */
static int is_header(const char *line) {
    char *field = cli_xstrndup(line, strcspn(line, ","));
    int header = !is_image_file_name(trim(field));
    free(field);
    return header;
}

/* One "image,label;label" line. */
static void csv_line(char *line, const char *dir, eval_dataset *d) {
    char *comma = strchr(line, ','), *save = NULL;
    if (comma) *comma = '\0';
    char *image = trim(line);
    eval_item *it = eval_add_item(d, eval_path(dir, image, "", ""), NULL, cli_xstrdup(image));
    it->n_labels = 0;
    for (char *l = comma ? strtok_r(comma + 1, ";", &save) : NULL; l; l = strtok_r(NULL, ";", &save)) {
        l = trim(l);
        if (*l) eval_item_label(it, eval_class_index(d, l), 0);
    }
}

/* csv:FILE [--images DIR]: one image per line, "image,label;label;...":
 * the image's path relative to DIR (default: the CSV's folder), then its
 * class names (none: negative for every class). No quoting: the first
 * comma ends the path. A first line whose first field is not a .jpg, .jpeg
 * or .png name is a header and skipped; blank lines are skipped. Labels
 * match the class list's first names; without --class-list the classes are
 * the labels in order of first appearance. */
int eval_load_csv(const cli_args *a, const char *csv, eval_dataset *d) {
    eval_set_spec(d, "csv", csv, NULL);
    char *text, *save = NULL;
    int rc = eval_read_text(csv, &text);
    if (rc) return rc;
    const char *slash = strrchr(csv, '/');
    char *dir = cli_has(a, "images") ? cli_xstrdup(cli_get(a, "images"))
                : slash ? cli_xstrndup(csv, (size_t)(slash - csv)) : cli_xstrdup(".");
    int first = 1;
    char *start = strncmp(text, "\xEF\xBB\xBF", 3) ? text : text + 3; /* a UTF-8 byte order mark */
    for (char *line = strtok_r(start, "\r\n", &save); line; line = strtok_r(NULL, "\r\n", &save)) {
        line = trim(line);
        if (*line && !(first && is_header(line))) csv_line(line, dir, d);
        if (*line) first = 0;
    }
    free(dir);
    cs_free(text);
    return 0;
}
