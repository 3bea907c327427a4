/* What it costs a process to use a weight file in place: touching the first
 * MB megabytes of the file through a read-only map (one read per 4 KiB, as a
 * forward pass reaches every weight) and unmapping it (or exiting), page
 * cache warm. Two maps of the same file, interleaved run by run:
 *   library  file_map_input, what the loaders use: 2 MiB aligned, MADV_HUGEPAGE
 *   4 KiB    the same map shifted 4 KiB off the 2 MiB grid, so that no page
 *            can be mapped by one 2 MiB entry (what an ordinary map of a file
 *            cached in 4 KiB pages costs)
 * and how much of each was mapped in 2 MiB pages (FilePmdMapped). When the
 * library map gets none, the file's cached pages are small ones (read
 * ahead in 4 KiB pages, e.g. by MADV_WILLNEED, or a file system without
 * large folios): evict them (dd if=FILE iflag=nocache count=0) and the
 * next run reads it in 2 MiB folios where the kernel can. The first run
 * (not timed) reads a cold file in.
 * Usage: bench_map FILE [MB] [RUNS]   (MB default: the whole file; RUNS 9)
 * Example: build/bench_map ViT-B-16-f32.safetensors 330   (its image tower) */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>
#include "base/fileio.h"
#include "clip_surgery.h"
#include "median.h"

enum { MAX_RUNS = 1000 };
#define HUGE_SIZE ((size_t)2 << 20)

/* FilePmdMapped of the mapping that starts at `start`, in kB (-1 if the
 * kernel does not say). */
static long pmd_mapped_kb(const void *start) {
    FILE *f = fopen("/proc/self/smaps", "r");
    if (!f) return -1;
    char line[512];
    long kb = -1;
    int inside = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2) { /* a mapping's first line */
            if (inside) break;
            inside = lo == (uintptr_t)start;
        } else if (inside && sscanf(line, "FilePmdMapped: %ld kB", &kb) == 1) {
            break;
        }
    }
    fclose(f);
    return kb;
}

/* The library's map, or the same shifted 4 KiB off the 2 MiB grid. */
static int map_file(const char *path, int small_pages, void **map, void **release, size_t *len) {
    int fd;
    size_t size;
    if (small_pages) {
        if (file_open_input(path, &fd, &size) != CS_OK) return -1;
        uint8_t *room = mmap(NULL, size + 2 * HUGE_SIZE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (room == MAP_FAILED) return close(fd), -1;
        uint8_t *start = (uint8_t *)(((uintptr_t)room + HUGE_SIZE - 1) & ~(uintptr_t)(HUGE_SIZE - 1)) + 4096;
        void *p = mmap(start, size, PROT_READ, MAP_PRIVATE | MAP_FIXED, fd, 0);
        close(fd);
        if (p == MAP_FAILED) return munmap(room, size + 2 * HUGE_SIZE), -1;
        *map = p, *release = room, *len = size + 2 * HUGE_SIZE;
        return 0;
    }
    if (file_open_input(path, &fd, &size) != CS_OK || file_map_input(path, fd, size, map) != CS_OK)
        return -1;
    *release = *map, *len = size;
    return 0;
}

/* One run: touch the first `bytes`, note the 2 MiB-mapped kB, unmap. */
static int run_once(const char *path, int small_pages, size_t bytes, double *touch, double *unmap,
                    long *pmd_kb, unsigned *sum) {
    void *map, *release;
    size_t len;
    if (map_file(path, small_pages, &map, &release, &len) != 0) return -1;
    const volatile uint8_t *p = map;
    double t0 = 1e3 * cs_now();
    for (size_t i = 0; i < bytes; i += 4096) *sum += p[i];
    double t1 = 1e3 * cs_now();
    *pmd_kb = pmd_mapped_kb(map);
    double t2 = 1e3 * cs_now();
    munmap(release, len);
    *unmap = 1e3 * cs_now() - t2;
    *touch = t1 - t0;
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2 || argc > 4) {
        fprintf(stderr, "usage: bench_map FILE [MB] [RUNS]   (MB: default the whole file; RUNS 1..%d, default 9)\n",
                MAX_RUNS);
        return 2;
    }
    const char *path = argv[1];
    int fd;
    size_t size;
    if (file_open_input(path, &fd, &size) != CS_OK) {
        fprintf(stderr, "bench_map: %s\n", cs_last_error());
        return 2;
    }
    close(fd);
    long mb = argc > 2 ? atol(argv[2]) : 0;
    int runs = argc > 3 ? atoi(argv[3]) : 9;
    if (mb < 0 || runs < 1 || runs > MAX_RUNS || size == 0) {
        fprintf(stderr, "bench_map: MB must be >= 0, RUNS 1..%d, and the file not empty\n", MAX_RUNS);
        return 2;
    }
    size_t bytes = mb && (size_t)mb << 20 < size ? (size_t)mb << 20 : size;
    static double touch[2][MAX_RUNS], unmap[2][MAX_RUNS];
    long pmd_kb[2] = {0, 0};
    unsigned sum = 0;
    double warm_touch, warm_unmap; /* the untimed first run reads a cold file in */
    if (run_once(path, 0, bytes, &warm_touch, &warm_unmap, &pmd_kb[0], &sum) != 0) {
        fprintf(stderr, "bench_map: %s: cannot map: %s\n", path, cs_last_error());
        return 1;
    }
    for (int r = 0; r < runs; r++)
        for (int small = 0; small < 2; small++)
            if (run_once(path, small, bytes, &touch[small][r], &unmap[small][r], &pmd_kb[small], &sum) != 0) {
                fprintf(stderr, "bench_map: %s: cannot map\n", path);
                return 1;
            }
    printf("%s: first %.0f of %.0f MB touched (a read per 4 KiB), medians of %d, page cache warm (first "
           "run %.1f ms)\n", path, bytes / 1048576.0, size / 1048576.0, runs, warm_touch + warm_unmap);
    printf("%-44s %9s %9s %14s\n", "map", "touch ms", "unmap ms", "MB in 2 MiB");
    static const char *names[2] = {"library (2 MiB aligned, MADV_HUGEPAGE)", "4 KiB pages (off the 2 MiB grid)"};
    for (int small = 0; small < 2; small++)
        printf("%-44s %9.2f %9.2f %14.0f\n", names[small], bench_median(touch[small], runs),
               bench_median(unmap[small], runs), pmd_kb[small] < 0 ? -1.0 : pmd_kb[small] / 1024.0);
    if (pmd_kb[0] == 0)
        printf("none of the library map was in 2 MiB pages: the file is cached in small pages "
               "(evict them, e.g. dd if=FILE iflag=nocache count=0, and run again) or this kernel "
               "keeps no huge pages for the file system\n");
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("peak RSS %ld MB (checksum %u)\n", ru.ru_maxrss / 1024, sum);
    return 0;
}
