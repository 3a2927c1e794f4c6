/* netvsc-patch: finding a hive's transaction logs beside it on the host.
 *
 * Windows keeps them as FILE.LOG1 and FILE.LOG2 (Vista and later) or as
 * the single FILE.LOG (XP / Server 2003; later versions keep an empty
 * one for compatibility).  NTFS compares names without case, so a copy
 * taken from a Windows disk may spell them in any case (SYSTEM.log1,
 * system.LOG): they are looked up in the hive's directory ignoring case.
 * Two names that differ only in case (SYSTEM.LOG1 and SYSTEM.log1) cannot
 * both come from one NTFS directory: which one holds the hive's log is
 * unknowable, so that is reported as ambiguous for the caller to refuse. */
#ifndef NETVSC_PATCH_LOGFIND_H
#define NETVSC_PATCH_LOGFIND_H

#include <limits.h>

#include "logreplay.h"

struct host_logs {
  /* REPLAY_LOG1, REPLAY_LOG2, REPLAY_LOG: the file as spelt in the
   * directory, or HIVE.LOG1 / HIVE.LOG2 / HIVE.LOG when absent */
  char path[REPLAY_NLOGS][PATH_MAX + 8];
  int found[REPLAY_NLOGS];
  /* non-empty: e.g. "SYSTEM.LOG1 and SYSTEM.log1 both exist beside it" */
  char ambiguous[2 * NAME_MAX + 64];
};

/* Find the logs of the hive HIVE.  Never fails: when the directory
 * cannot be listed (no read permission), the usual spellings are
 * probed instead. */
void host_logs_find (const char *hive, struct host_logs *logs);

/* "SYSTEM.LOG1 and SYSTEM.LOG2 exist beside it", "no .LOG1, .LOG2 or
 * .LOG file beside it", for messages. */
void host_logs_describe (const struct host_logs *logs, char *buf, size_t len);

#endif
