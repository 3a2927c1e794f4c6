/* netvsc-patch: where a hive's transaction logs live, behind one small
 * interface, so that what is done to them is written once for both
 * pipelines: beside a hive file on the host (hive mode, logfind.h) or
 * beside SYSTEM in a guest's volume (a disk backend, disk.h). */
#ifndef NETVSC_PATCH_LOGSITE_H
#define NETVSC_PATCH_LOGSITE_H

#include <limits.h>

#include "disk.h"
#include "logfind.h"
#include "status.h"

struct log_site {
  /* Nonzero when log I (REPLAY_LOG1, REPLAY_LOG2, REPLAY_LOG) holds a
   * log that must be emptied once its hive is replaced (an empty .LOG,
   * which Vista and later keep, needs nothing). */
  int (*needs_reset) (const struct log_site *s, int i);
  /* A file (under BUF, LEN bytes) to write log I's replacement in. */
  int (*stage) (const struct log_site *s, int i, char *buf, size_t len, struct np_error *err);
  /* Replace log I with STAGED. */
  int (*commit) (const struct log_site *s, int i, const char *staged, struct np_error *err);
  /* After log I was tried (FAILED nonzero with ERR set): STAGED, if
   * made, is the site's to clean up and to rename in ERR. */
  void (*release) (const struct log_site *s, int i, const char *staged, int failed,
                   struct np_error *err);
  /* Named before a warning's message (NULL: the message names the file). */
  const char *subject;

  /* host: the logs found beside the hive */
  const struct host_logs *host;
  /* disk: the backend's volume, the host directory its files are
   * fetched to (the logs as DIR/SYSTEM.LOG...), a scratch file */
  const struct disk_backend *be;
  struct disk *d;
  const char *dir, *scratch;
};

/* The logs found beside a hive on the host. */
void log_site_host (struct log_site *s, const struct host_logs *found);

/* The logs beside SYSTEM in D's Windows volume; their copies were
 * fetched into DIR; warnings name SUBJECT (the image). */
void log_site_disk (struct log_site *s, const struct disk_backend *be, struct disk *d,
                    const char *dir, const char *scratch, const char *subject);

/* After a recovered hive was patched and put in place (HIVE is its new
 * bytes on the host): empty the logs beside it, which Windows must not
 * replay over it (see hive_log_reset).  Failures are warnings: the hive
 * is patched and clean either way.  Returns how many were emptied. */
int log_site_reset (const struct log_site *s, const char *hive);

#endif
