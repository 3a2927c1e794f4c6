/* netvsc-patch: the direct backend's private header (see direct.c):
 * its state and what its files share.  Nothing outside src/direct*.c
 * includes it.  Sections name the file that defines each item. */
#ifndef NETVSC_PATCH_DIRECT_INTERNAL_H
#define NETVSC_PATCH_DIRECT_INTERNAL_H

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* libntfs-3g's headers expect the system headers above first. */
#include <ntfs-3g/types.h>
#include <ntfs-3g/attrib.h>
#include <ntfs-3g/device.h>
#include <ntfs-3g/dir.h>
#include <ntfs-3g/inode.h>
#include <ntfs-3g/lcnalloc.h>
#include <ntfs-3g/logging.h>
#include <ntfs-3g/runlist.h>
#include <ntfs-3g/security.h>
#include <ntfs-3g/unistr.h>
#include <ntfs-3g/volume.h>

#include <libnbd.h>

#include "bytes.h"
#include "disk.h"
#include "parttable.h"

/* Largest single NBD request we send: well under qemu-nbd's 32 MiB. */
#define NBD_CHUNK (4u << 20)

#define MAX_PARTS PARTTABLE_MAX
#define SECTOR 512u

/* The NBD export, and the alignment its server asks for; or (nbd NULL)
 * the image file itself, SIZE bytes of disk from offset 0 (direct_file.c). */
struct nbd_io {
  struct nbd_handle *nbd;
  uint32_t align;              /* power of two, >= 1 */
  int fd;                      /* the image file when nbd is NULL, else -1 */
  uint64_t size;               /* ... and the disk's size in it */
  uint32_t max;                /* largest request (a multiple of align); 0: NBD_CHUNK */
};

/* What the ntfs_device_operations work on: a window of the NBD export. */
struct window {
  struct nbd_io io;
  uint64_t offset, size;
  s64 pos;                     /* for seek/read/write */
  int writable;                /* the NBD export is writable */
};

struct direct {
  const char *path;            /* host path of the image (borrowed) */
  const char *format;
  int readonly, verbose, quiet;
  int trace;                   /* -x: direct_trace's steps even without -v */
  unsigned blocksize;          /* disk_request's: 0, 512 or 4096 */
  struct nbd_handle *nbd;
  struct nbd_io io;            /* nbd with its alignment */
  pid_t child;                 /* qemu-nbd */
  int remote;                  /* connected to a remote NBD server, no qemu-nbd */
  int qemu_log;                /* file with no name: qemu-nbd's stderr */
  uint64_t disk_size;
  struct part parts[MAX_PARTS];
  size_t n_parts;
  struct part *win;            /* the Windows volume */
  struct window window;
  /* libntfs-3g wants a mutable table; it lives here, not in a global. */
  struct ntfs_device_operations ops;
  ntfs_volume *vol;            /* the Windows volume, when mounted */
  int rw;                      /* ... read-write */
  MFT_REF config;              /* \Windows\System32\config */
  char *config_dir;            /* "/Windows/System32/config" (on-disk case) */
  char *hive_path;             /* config_dir + "/SYSTEM" (on-disk case) */
};

/* --- direct.c: the backend (open, the Windows volume, lookups, close) */

void direct_trace (const struct direct *d, const char *fmt, ...)
  __attribute__((format (printf, 2, 3)));
void direct_warn (const struct direct *d, const char *fmt, ...)
  __attribute__((format (printf, 2, 3)));
/* Fill *err with libnbd's last error, or errno E's text, after WHAT;
 * return -1. */
int direct_nbd_failed (const struct direct *d, struct np_error *err, const char *what);
int direct_ntfs_failed (const struct direct *d, struct np_error *err, const char *what, int e);
/* The Windows volume mounted read-write / read-only. */
int direct_mount_rw (struct direct *d, struct np_error *err);
int direct_mount_ro (struct direct *d, struct np_error *err);
/* Unmount (flushed to the image) and mount read-write again: a crash
 * from here on finds exactly the state the step left. */
int direct_commit (struct direct *d, const char *step, struct np_error *err);
/* NAME in directory DIR, case-insensitively (see direct.c). */
int direct_lookup (ntfs_volume *vol, MFT_REF dir, const char *name, MFT_REF *mref,
                   unsigned *dt, char **spelt);
/* The whole unnamed $DATA of MREF into *BUF (malloc'd); EFBIG, unread, if
 * it is larger than MAX bytes. */
int direct_read_data (ntfs_volume *vol, MFT_REF mref, size_t max, char **buf, size_t *len);

/* --- direct_nbd.c: the NBD export as a libntfs-3g device -------------- */

/* LEN bytes at OFFSET of the disk; past its end, zeros. */
int direct_disk_read (struct direct *d, void *buf, size_t len, uint64_t offset,
                      struct np_error *err);
/* The ntfs_device_operations over a window (struct window) of the export. */
void nbd_device_ops_init (struct ntfs_device_operations *ops);
/* Connect D's handle to the NBD URI d->path itself (no qemu-nbd). */
int direct_connect_uri (struct direct *d, struct np_error *err);

/* --- direct_qemu.c: the qemu-nbd process ----------------------------- */

/* Where PROG is in $PATH (malloc'd), or NULL. */
char *find_in_path (const char *prog);
/* Start qemu-nbd (PROG, ARGV) by socket activation, connected: *SOCK is
 * our end.  Returns 0 or -1 with errno. */
int spawn_qemu_nbd (struct direct *d, const char *prog, char **argv, int *sock);
/* Wait up to TIMEOUT_MS for it; 0 if it exited cleanly. */
int reap_qemu_nbd (struct direct *d, int timeout_ms);
/* What qemu-nbd said on stderr, as one line. */
void qemu_nbd_message (const struct direct *d, char *buf, size_t len);

/* --- direct_file.c: raw and fixed VHD read and written in place ------ */

/* Open REQ's image itself if its format allows (directfile.h): 1 and
 * d->io set up, 0 if qemu-nbd must serve it, -1 with *err (locked by
 * another process, a truncated fixed VHD). */
int direct_file_open (struct direct *d, const struct disk_request *req, struct np_error *err);
/* Flush and close it (its locks go with it). */
int direct_file_close (struct direct *d, struct np_error *err);

/* --- direct_swap.c: replacing the hive's data in one MFT record write - */

int direct_data_equals (struct direct *d, MFT_REF mref, const char *buf, size_t len);
int direct_swap_data (struct direct *d, MFT_REF sys, const char *path, const char *name,
                      const char *buf, size_t len, struct np_error *err);
int direct_replace (struct disk *dk, const char *name, const char *local, const char *scratch,
                    struct np_error *err);

/* --- direct_files.c: other files of the volume (--defer) ------------- */

int direct_read_file (struct disk *dk, const char *path, char **buf, size_t *len,
                      struct np_error *err);
int direct_write_file (struct disk *dk, const char *path, const char *buf, size_t len,
                       struct np_error *err);
int direct_remove_file (struct disk *dk, const char *path, struct np_error *err);

#endif
