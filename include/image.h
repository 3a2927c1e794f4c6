/* netvsc-patch: one disk image, opened through libguestfs.
 *
 * Knows drives, filesystems and files; nothing of the registry. */
#ifndef NETVSC_PATCH_IMAGE_H
#define NETVSC_PATCH_IMAGE_H

#include <guestfs.h>

#include "status.h"

struct image {
  guestfs_h *g;
  const char *path;            /* host path of the image (borrowed) */
  const char *format;          /* qemu format name (borrowed) */
  int readonly;
  int verbose;
  int quiet;
  char *root;                  /* device of the Windows system volume */
  char *system_path;           /* guest path of the SYSTEM hive */
  char *config_dir;            /* guest path of its directory */
  int mounted_rw;
};

/* Check the image with qemu-img before the appliance is started: a
 * locked image (a running VM), a missing parent of a differencing disk
 * or a truncated container fail here in milliseconds with qemu's own
 * reason. */
int image_preflight (const char *path, const char *format, int readonly,
                     struct np_error *err);

/* Create the handle, add the drive and launch the appliance.  If the
 * launch fails and the user has not set LIBGUESTFS_BACKEND_SETTINGS,
 * retry once with software emulation (force_tcg), with a warning. */
int image_open (struct image *im, const char *path, const char *format,
                int readonly, int verbose, int quiet, struct np_error *err);

/* Find the NTFS filesystem holding \Windows\System32\config\SYSTEM
 * (case-insensitively) and mount it read-only at /.  If WANT_ROOT is
 * set, only that device is accepted.  More than one candidate without
 * WANT_ROOT is an error listing them. */
int image_find_windows (struct image *im, const char *want_root,
                        struct np_error *err);

/* Which of SYSTEM.LOG1/SYSTEM.LOG2 exist beside the hive, as text
 * ("SYSTEM.LOG1 and SYSTEM.LOG2 exist", "no SYSTEM.LOG1/LOG2"). */
void image_describe_logs (struct image *im, char *buf, size_t len);

int image_fetch_hive (struct image *im, const char *local, struct np_error *err);

/* Replace the guest's SYSTEM with LOCAL: remount read-write, upload to
 * a temporary name in the same directory, read it back and compare with
 * LOCAL (SCRATCH is a host file name to download to), carry over the
 * NTFS security descriptor and attributes, rename over SYSTEM, sync. */
int image_put_hive (struct image *im, const char *local, const char *scratch,
                    struct np_error *err);

/* Unmount, shut the appliance down and close.  A failed shutdown is an
 * error: the writes may not have reached the image. */
int image_close (struct image *im, struct np_error *err);

/* Close without caring about errors (after a failure). */
void image_abort (struct image *im);

#endif
