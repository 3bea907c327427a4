/* Layer 1: whole-file reads and atomic writes (temporary file + rename, so a
 * failure never leaves a partial output behind). */
#ifndef CS_FILEIO_H
#define CS_FILEIO_H

#include <stdio.h>
#include "base.h"

/* cs_read_file, cs_atomic_file (open, commit, abort), the output
 * transactions and cs_mkdirs are public (clip_surgery.h). */

/* Open an existing file for reading, refusing anything but a regular file
 * BEFORE it can block: the open is non-blocking (a FIFO with no writer, a
 * terminal or a device returns at once), then fstat decides, then blocking
 * mode is restored. A missing file is CS_ERR_MISSING (bad input), a
 * non-regular one CS_ERR_ARG, an unreadable one CS_ERR_IO (permission:
 * a runtime failure). *size gets the file's size. Every reader opens its
 * input through these. */
cs_status file_open_input(const char *path, int *fd, size_t *size);
/* The same as a stdio stream. */
cs_status file_fopen_input(const char *path, FILE **f, size_t *size);

/* Map an open input file of size > 0 read-only (private) and close fd;
 * munmap(*map, size) releases it. The map starts on a 2 MiB boundary (the
 * file's offset 0 with it) and asks for huge pages (MADV_HUGEPAGE): where
 * the kernel keeps a file's page cache in 2 MiB folios (those it reads in
 * for such a map), each is mapped by one page-table entry instead of 512,
 * so touching and unmapping the ~330 MB of a ViT-B/16 image tower, once per
 * process, costs 2-5 ms instead of 35-45 (bench/bench_map.c measures it).
 * Elsewhere the advice is ignored and the map is an ordinary one. */
cs_status file_map_input(const char *path, int fd, size_t size, void **map);

/* cs_atomic_commit, renamed at once even inside an output transaction: for
 * caches and downloads, which are not a run's outputs and are needed right
 * away. */
cs_status atomic_commit_now(cs_atomic_file *af);

#endif
