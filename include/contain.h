/* netvsc-patch: containing the parsers.  libhivex and libntfs-3g parse
 * untrusted bytes in this process, and both can abort (an assertion in
 * hivex's mark_block_unused, found by fuzzing, is one).  A job that
 * runs them runs in a forked child: if the child dies, that target
 * fails with exit 1 and one line, its temporary files are removed,
 * and the other targets of the run go on. */
#ifndef NETVSC_PATCH_CONTAIN_H
#define NETVSC_PATCH_CONTAIN_H

#include <pthread.h>
#include <stddef.h>

#include "options.h"
#include "status.h"

/* A target's report as the child rendered it (or as the parent
 * rendered the crash), ready to print. */
struct contained {
  char *out, *err;             /* stdout and stderr bytes */
  size_t out_len, err_len;
  int exit_code;
  int patched;                 /* the target was written */
};

/* Hive mode: job_run_hive on o->hive in a child; prints the report as
 * job_run_hive + report_outcome would; *PATCHED says whether the hive
 * was written.  Returns the exit code. */
int contain_hive (const struct options *o, int *patched);

/* One image (FORMAT: NULL to detect) through the backend in a child:
 * --direct, where libntfs-3g and libhivex both run in this process.
 * LOCK (may be NULL) is held across fork(): the batch's stdio lock, so
 * the child never inherits a stream locked by another thread. */
void contain_image (const struct options *o, const char *path, const char *format,
                    pthread_mutex_t *lock, struct contained *c);

/* The libvirt domain NAME (job_run_domain) in a child, as contain_image. */
void contain_domain (const struct options *o, const char *name, pthread_mutex_t *lock,
                     struct contained *c);

/* Print C (stderr bytes, then stdout bytes) and free it. */
void contain_print (struct contained *c);

/* The appliance backend's hive stage, whose libguestfs handle cannot
 * cross a fork: FN(ARG) is run in a child first, on scratch files; if
 * the child dies, -1 with ERR naming IMAGE (nothing was written). */
int contain_rehearse (const char *image, int (*fn) (void *), void *arg,
                      struct np_error *err);

/* In a contained child: 1; the job need not contain itself again. */
int contain_active (void);
/* In a contained child, tell the parent (no-ops otherwise): a file
 * created outside the child's private TMPDIR (removed if the child
 * dies), and that the target is about to be written. */
void contain_note_temp (const char *path);
void contain_note_write (void);

#endif
