/* netvsc-patch: the appliance backend's private header (see image.c):
 * its state and what its files share.  Nothing outside src/image*.c
 * includes it.  Sections name the file that defines each item. */
#ifndef NETVSC_PATCH_IMAGE_INTERNAL_H
#define NETVSC_PATCH_IMAGE_INTERNAL_H

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <guestfs.h>

#include "disk.h"

/* Suffix of the temporary file written beside the one it replaces. */
#define TMP_SUFFIX ".netvsc-patch.tmp"

/* One appliance, shared by the images of a batch: launching it is
 * almost all of the cost, so many images go through one launch. */
struct disk_batch {
  guestfs_h *g;
  int verbose;
  int trace;                   /* -x: guestfs_set_trace */
  int quiet;
  const void *mounted_by;      /* the image whose volume is at / */
  char **partitions;           /* every drive's, listed once */
  int mounted_rw;
  size_t n_images;
  struct image **images;
  unsigned *blocksizes;        /* each drive's logical sector size (0: default) */
};

/* One image of a batch: drive INDEX of the appliance. */
struct image {
  struct disk_batch *batch;
  guestfs_h *g;                /* batch->g */
  int own_batch;               /* opened alone: close shuts down */
  const char *path;            /* host path of the image (borrowed) */
  const char *format;          /* qemu format name (borrowed) */
  int readonly;
  int verbose;
  int quiet;
  char device[32];             /* the drive in the appliance: /dev/sdX */
  char *root;                  /* Windows volume, appliance name (/dev/sdX2) */
  char root_local[48];         /* the same as if the image were alone (/dev/sda2) */
  char *system_path;           /* guest path of the SYSTEM hive */
  char *config_dir;            /* guest path of its directory */
  const struct keystore *keys; /* BitLocker keys given, or NULL */
  struct {                     /* BitLocker volumes opened (image_crypt.c) */
    char local[48];            /* "/dev/sda2" */
    char mapped[64];           /* "/dev/mapper/netvsc_sdb2" */
  } crypt[8];
  size_t n_crypt;
};

/* --- image.c: launch, batches, the Windows volume, mounting, close -- */

/* Fill *err with CODE and libguestfs's last error after WHAT, naming
 * the image; return -1. */
int image_guest_error (struct image *im, struct np_error *err, int code, const char *what);
/* A libguestfs failure about guest PATH. */
int image_path_error (struct image *im, const char *path, const char *what,
                      struct np_error *err);
/* Mount this image's Windows volume at / (read-write if RW), unless it
 * is already. */
int image_ensure_mounted (struct image *im, int rw, struct np_error *err);
/* Guest path of NAME in the hive's directory if it exists there
 * (case-insensitively), else NULL. */
char *image_config_file (struct image *im, const char *name);

/* --- image_replace.c: replacing a file of the hive's directory ------ */

/* Set the extended attribute NAME of guest file PATH to the LEN bytes
 * of VAL, and read it back (see image_replace.c for why not with
 * guestfs_setxattr). */
int image_set_xattr (struct image *im, const char *path, const char *name, const char *val,
                     size_t len, struct np_error *err);
/* Give the new file TO the NTFS security descriptor and attributes of
 * FROM. */
int image_copy_ntfs_metadata (struct image *im, const char *from, const char *to,
                              struct np_error *err);
int image_replace (struct disk *d, const char *name, const char *local, const char *scratch,
                   struct np_error *err);

/* --- image_crypt.c: BitLocker volumes ----------------------------- */

/* Is DEV, which blkid gave no type, a BitLocker volume by its first
 * sector (bitlocker.h's rule, as --direct applies it)? */
int image_crypt_is_bitlocker (struct image *im, const char *dev);
/* Open BitLocker volume DEV (LOCAL as the user names it) with the keys
 * given for it, read-only if the image is: 0 and *MAPPED (the device
 * to mount, kept in im->crypt), 1 if no key was given, -1 if none
 * opened it (WHY: cryptsetup's reason, without any key). */
int image_crypt_open (struct image *im, const char *dev, const char *local,
                      const char **mapped, char *why, size_t len);
/* The device LOCAL was opened as, or NULL. */
const char *image_crypt_mapped (const struct image *im, const char *local);
/* Close what image_crypt_open opened (after unmounting). */
void image_crypt_close (struct image *im);

/* --- image_files.c: other files of the volume (--defer) ------------- */

int image_read_file (struct disk *d, const char *path, char **buf, size_t *len,
                     struct np_error *err);
int image_write_file (struct disk *d, const char *path, const char *buf, size_t len,
                      struct np_error *err);
int image_remove_file (struct disk *d, const char *path, struct np_error *err);

#endif
