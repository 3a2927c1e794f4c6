/* netvsc-patch: -x, a trace of what the tool does, on stderr.
 *
 * The appliance backend also traces the libguestfs API calls themselves
 * (guestfs_set_trace, "libguestfs: trace: ..." lines), as the virt
 * tools' -x does.  Hive mode and --direct have no such API underneath;
 * every mode traces the steps the tool takes, one "netvsc-patch: trace:
 * SUBJECT: STEP" line each (the hive's checks, recovery, planning,
 * write, verification, rename; an image's volume, copy out and back;
 * --direct's qemu-nbd and NTFS steps, direct_trace). */
#ifndef NETVSC_PATCH_TRACE_H
#define NETVSC_PATCH_TRACE_H

#include "options.h"

/* One step of SUBJECT (what the user named), if O asked for -x.
 * Guest and file names in it are escaped (escape.h).  -q does not hide
 * it: a trace is asked for. */
void trace_step (const struct options *o, const char *subject, const char *fmt, ...)
  __attribute__ ((format (printf, 3, 4)));

#endif
