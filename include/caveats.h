/* netvsc-patch: what a run cannot carry or check, said beside its
 * report (text and JSON alike, read off the outcome).
 *
 * Two kinds today:
 * - "clones": values written offline live in the adapter's own class
 *   instance key (Control\Class\{4d36e972-...}\NNNN).  A VM created from
 *   a copy of the disk gets a new synthetic NIC instance (new
 *   NetCfgInstanceId, new NNNN), so a non-generalized template's clones
 *   do not inherit them; --defer's boot-time action does follow them.
 * - "host-limit": a buffer size above what the VMBus host accepts, when
 *   the driver's Ndi\Params does not bound it (real netvsc hives may
 *   not describe the two sizes at all).  The figures are Linux netvsc's
 *   (drivers/net/hyperv/hyperv_net.h, "Max buffer sizes allowed by a
 *   host": NETVSC_RECEIVE_BUFFER_SIZE 31 MB, NETVSC_SEND_BUFFER_SIZE
 *   15 MB; hosts speaking NVSP 2 or older take 15 MB of receive buffer,
 *   NETVSC_RECEIVE_BUFFER_SIZE_LEGACY). */
#ifndef NETVSC_PATCH_CAVEATS_H
#define NETVSC_PATCH_CAVEATS_H

#include <stdint.h>

#include "job.h"

#define CAVEAT_HOST_MAX_RECEIVE_KB (31u * 1024)  /* NETVSC_RECEIVE_BUFFER_SIZE */
#define CAVEAT_HOST_MAX_SEND_KB (15u * 1024)     /* NETVSC_SEND_BUFFER_SIZE */

enum caveat_kind {
  CAVEAT_CLONES,               /* a note: the report's own stream */
  CAVEAT_HOST_LIMIT,           /* a warning: stderr */
};

struct caveat {
  enum caveat_kind kind;
  char text[320];              /* one line, no target name, no newline */
};

#define CAVEATS_MAX 4
struct caveats {
  size_t n;
  struct caveat v[CAVEATS_MAX];
};

/* The caveats of one outcome (none for errors and refusals). */
void caveats_of (const struct options *o, const struct outcome *out, struct caveats *c);

/* "clones", "host-limit" (JSON's "kind"); "note" or "warning". */
const char *caveat_kind_name (enum caveat_kind k);
const char *caveat_severity (enum caveat_kind k);

/* The host's largest buffer in KB for keyword NAME (one of the two
 * buffer sizes, any case), or 0 for other keywords. */
uint32_t caveat_host_max_kb (const char *name);

#endif
