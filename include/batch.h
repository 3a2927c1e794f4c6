/* netvsc-patch: many images in one invocation: batches through shared
 * appliances, parallel workers, progress, one result per image. */
#ifndef NETVSC_PATCH_BATCH_H
#define NETVSC_PATCH_BATCH_H

#include <stddef.h>

#include "options.h"
#include "status.h"

struct target {
  const char *path;
  const char *format;          /* NULL: --format or detection */
  int domain;                  /* PATH is a libvirt domain's name (-d) */
};

/* Read --from FILE ("-": stdin).  Lines: one image per line, optionally
 * followed by a tab and its format (nothing else splits a line: spaces
 * belong to the path); a CR before the LF is dropped; blank lines and
 * lines starting with '#' are skipped; a NUL byte is an error (exit 2).
 * NUL (-0/--null): entries end at NUL bytes and each is a path exactly.
 * *BUF owns the strings. */
int targets_read (const char *file, int nul, struct target **targets, size_t *n,
                  char **buf, struct np_error *err);

/* The default for -j: as many workers as there are cores, but no more
 * appliances than memory holds. */
int batch_default_jobs (int direct);

/* Run every target, reporting each as it finishes.  Returns the highest
 * exit code. */
int batch_run (const struct options *o, const struct target *targets, size_t n);

#endif
