/* netvsc-patch: --defer on an open image: the boot-time action's files
 * in the guest's local Group Policy object, installed, refreshed or
 * removed through the disk backend.  The bytes come from defer.c. */
#ifndef NETVSC_PATCH_GUESTDEFER_H
#define NETVSC_PATCH_GUESTDEFER_H

#include "defer.h"
#include "disk.h"
#include "status.h"

enum defer_result {
  DEFER_NONE,         /* --defer not asked, nothing to remove */
  DEFER_INSTALLED,    /* registered now */
  DEFER_UPDATED,      /* was registered; the script's values changed */
  DEFER_IN_PLACE,     /* registered with these values already */
  DEFER_REMOVED,      /* --remove took it out */
  DEFER_ABSENT,       /* --remove: there was none */
};

/* Install (INSTALL) or remove the action on D's Windows volume.  With
 * DRY, only find out what would be done.  Files are written before the
 * registration that runs them, and removed after it is gone, so that a
 * crash in between leaves an unregistered file, never a registration
 * of a missing or partial script.  Returns 0 with *RES, or -1 with *err. */
int guest_defer (const struct disk_backend *be, struct disk *d,
                 const struct defer_spec *spec, int install, int dry,
                 enum defer_result *res, struct np_error *err);

const char *defer_result_name (enum defer_result r);
/* The mode's name (always, once, setup), its script as Windows names
 * it, and what it does, for reports. */
const char *defer_mode_name (enum defer_mode m);
const char *defer_script_win (enum defer_mode m);
const char *defer_mode_text (enum defer_mode m);

/* Where the script is, as Windows names it (for reports). */
#define DEFER_SCRIPT_WIN \
  "%SystemRoot%\\System32\\GroupPolicy\\Machine\\Scripts\\Startup\\netvsc-patch.ps1"
#define DEFER_SETUP_SCRIPT_WIN "%SystemRoot%\\Setup\\Scripts\\netvsc-patch.ps1"

#endif
