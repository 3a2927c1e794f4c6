/* netvsc-patch: one target (an image or a hive file) taken through
 * the whole pipeline, and what came of it. */
#ifndef NETVSC_PATCH_JOB_H
#define NETVSC_PATCH_JOB_H

#include <limits.h>

#include "logreplay.h"
#include "options.h"
#include "guestdefer.h"

struct disk_backend;
#include "plan.h"

enum outcome_status {
  ST_PATCHED,        /* changes written and verified */
  ST_UNCHANGED,      /* every value already as requested */
  ST_WOULD_PATCH,    /* --dry-run with changes to make */
  ST_CHECK_DIFFERS,  /* --check: values not in place */
  ST_LISTED,         /* --list */
  ST_RECOVERED,      /* --replay-only: recovered hive written */
  ST_NO_ADAPTER,     /* nothing matched */
  ST_DEFERRED,       /* nothing matched; --defer's boot-time action will */
  ST_REFUSED,        /* unsafe to write */
  ST_INVALID,        /* a value the driver's Ndi\Params does not allow */
  ST_ERROR,
};

struct outcome {
  const char *target;          /* as the user named it */
  int is_image;
  const char *format;          /* images: qemu format */
  char root[64];               /* images: Windows volume device */
  char hive_path[256];         /* images: guest path of SYSTEM */
  const char *written_to;      /* hive mode: the file written */
  char backup[PATH_MAX];       /* --backup: where the original went */
  enum outcome_status status;
  int exit_code;
  char message[1024];          /* the one-line error, if any */
  struct control_sets cs;
  struct plan plan;
  int have_plan;
  int replayed;                /* the hive was dirty and recovered from its logs */
  struct replay_result replay;
  int logs_reset;              /* logs emptied after the write */
  enum defer_result defer;     /* images: the boot-time action (--defer, --remove) */
};

void job_run_hive (const struct options *o, const char *hive, struct outcome *out);
/* IMAGE with FORMAT (NULL: detect), alone. */
void job_run_image (const struct options *o, const char *image, const char *format,
                    struct outcome *out);
/* N images through one opening of the backend where it can (one
 * appliance launch); each gets its own outcome in OUTS[i]. */
void job_run_batch (const struct options *o, const char *const *paths,
                    const char *const *formats, size_t n, struct outcome *outs);
/* The libvirt domain NAME (o->connect): its disks as one guest, the
 * Windows volume searched across all of them (domain.h). */
void job_run_domain (const struct options *o, const char *name, struct outcome *out);
const struct disk_backend *job_backend (const struct options *o);
void outcome_free (struct outcome *out);

const char *outcome_status_name (enum outcome_status s);

#endif
