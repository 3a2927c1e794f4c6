/* netvsc-patch: which volume of an image is Windows, and where its
 * SYSTEM hive is: one rule and one set of messages for both backends.
 *
 * A backend reports the filesystems it found (device and type) and, for
 * each one this module asks it to look inside, the names it finds along
 * \Windows\System32\config\SYSTEM (and the hive's logs), through a
 * listing callback.  This module knows nothing of libguestfs or
 * libntfs-3g: it walks, decides and words the errors.
 *
 * The rule: a name is looked up as Windows does, ignoring case.  NTFS
 * may hold names that differ only in case (ntfs-3g's POSIX namespace,
 * or a Linux tool, can create them); Windows then opens one of them and
 * we cannot tell which, so two such names anywhere on the way (Windows
 * and WINDOWS, System32 and SYSTEM32, config and Config, SYSTEM and
 * system, SYSTEM.LOG1 and system.log1) make the volume ambiguous, and
 * it is refused rather than patched in a hive Windows may not read. */
#ifndef NETVSC_PATCH_WINVOL_H
#define NETVSC_PATCH_WINVOL_H

#include <stddef.h>

#include "status.h"

enum winvol_kind { WINVOL_OTHER, WINVOL_DIR, WINVOL_FILE };

/* One directory entry, as a backend lists it. */
struct winvol_name {
  char *name;                  /* as spelt on disk (malloc'd) */
  enum winvol_kind kind;       /* WINVOL_FILE: a regular file */
};

/* The backend's look inside a volume: every entry of directory DIR
 * (a path on the volume, '/'-separated, as spelt on disk: "/",
 * "/Windows/System32") whose name equals NAME ignoring case.  Fills
 * *OUT (malloc'd, may be NULL if *N is 0; each name malloc'd) and *N.
 * Returns 0, or -1 with a one-line reason in WHY (the volume is then
 * reported unreadable). */
typedef int (*winvol_list_fn) (void *ctx, const char *dir, const char *name,
                               struct winvol_name **out, size_t *n, char *why, size_t len);

enum winvol_state {
  WINVOL_NOT_LOOKED,           /* not NTFS, or not the --root asked for */
  WINVOL_LOOKED,
  WINVOL_UNREADABLE,           /* its NTFS cannot be mounted or read */
  WINVOL_ENCRYPTED,            /* BitLocker, not opened (why: a key's failure, if any) */
};

/* A filesystem of the image and what was seen on it. */
struct winvol_fs {
  char dev[32];                /* as the user names it: "/dev/sda2" */
  char type[32];               /* "ntfs", "vfat", ... */
  enum winvol_state state;
  char why[256];               /* WINVOL_UNREADABLE: the reason; WINVOL_ENCRYPTED:
                                  why the key given did not open it ("": no key) */
  int windows;                 /* holds Windows\System32\config\SYSTEM */
  char hive[512];              /* its path as spelt: "/Windows/System32/config/SYSTEM" */
  char clash[2][512];          /* the first two names that differ only in
                                  case, full paths; clash[0][0] == 0: none */
  size_t clash_n;              /* how many names there were (2 or more) */
};

/* The filesystems of one image. */
struct winvol {
  const char *image;           /* the user's name for it, for messages */
  const char *want_root;       /* --root, or NULL */
  struct winvol_fs *fs;
  size_t n, cap;
  int oom;                     /* a filesystem could not be recorded */
  int can_decrypt;             /* the backend opens BitLocker with --key (the
                                  appliance); else the messages point at it */
};

void winvol_init (struct winvol *w, const char *image, const char *want_root);
void winvol_free (struct winvol *w);

/* Record a filesystem the backend found.  TYPE "", "unknown" and
 * "swap" are not filesystems anyone would name (not recorded).  Returns
 * the record if the backend must look inside it (NTFS, and the --root
 * asked for if any) with winvol_look or winvol_unreadable, else NULL.
 * Out of memory: NULL, and winvol_choose says so. */
struct winvol_fs *winvol_add (struct winvol *w, const char *dev, const char *type);

/* Record an encrypted (BitLocker) volume the backend did not open:
 * WHY is why the key given failed, or NULL if no key was given.
 * winvol_add records a filesystem of type BITLOCKER_TYPE this way. */
void winvol_add_encrypted (struct winvol *w, const char *dev, const char *why);

/* Walk FS through LIST (its volume mounted by the caller).  Returns 0,
 * or -1 if LIST failed (FS is then unreadable, with LIST's reason). */
int winvol_look (struct winvol_fs *fs, winvol_list_fn list, void *ctx);

/* The backend could not mount FS at all: WHY (one line). */
void winvol_unreadable (struct winvol_fs *fs, const char *why);

/* The Windows volume: its record (hive says where SYSTEM is, exactly
 * spelt), or NULL with *ERR (exit 1): no filesystems, none holds
 * Windows (unreadable NTFS named as needing repair), several do (choose
 * with --root), --root names no filesystem or not Windows, or names on
 * the way to the hive or its logs differ only in case.  None holds
 * Windows but a BitLocker volume was not opened (or --root names one):
 * NP_EXIT_ENCRYPTED, saying how to give its key (or, where the backend
 * cannot decrypt, to use the appliance). */
const struct winvol_fs *winvol_choose (const struct winvol *w, struct np_error *err);

#endif
