/* netvsc-patch: a Windows disk image, whichever backend opens it.
 *
 * The appliance backend (image.c) goes through libguestfs: the guest
 * filesystem is parsed inside a VM, away from the host.  The direct
 * backend (direct.c) serves the image with qemu-nbd and parses NTFS in
 * this process: much faster, for images you trust.  job.c sees only
 * this interface; neither backend knows anything of the registry. */
#ifndef NETVSC_PATCH_DISK_H
#define NETVSC_PATCH_DISK_H

#include "status.h"

#include <stddef.h>

struct disk;                    /* a backend's private state */
struct disk_batch;              /* several disks opened together */

struct disk_request {
  const char *path;             /* host path of the image */
  const char *format;           /* qemu format name, never probed */
  int readonly;                 /* nothing will be written */
  int verbose;
  int quiet;
  /* qemu "json:{...}" naming every checked layer and its format
   * (layers.h), or NULL: PATH with FORMAT says it all.  The appliance
   * cannot take it (libguestfs takes one format). */
  const char *qemu_spec;
  int launch_timeout;           /* appliance: seconds a launch that may use KVM can
                                   go without progress (0: the default, -1: never) */
  int trace;                    /* -x: appliance, libguestfs's API trace; --direct,
                                   its steps (trace.h) */
  unsigned blocksize;           /* the disk's logical sector size, 512 or 4096
                                   (--blocksize); 0: from its GPT (parttable.h) */
  const struct keystore *keys;  /* appliance: BitLocker keys (bitlocker.h), or NULL */
};

#define DISK_READ_MAX (4u << 20)

struct disk_backend {
  const char *name;

  /* Open the image: nothing in it is mounted yet. */
  struct disk *(*open) (const struct disk_request *req, struct np_error *err);

  /* Find the NTFS volume holding \Windows\System32\config\SYSTEM
   * (case-insensitively) and make it the volume the calls below use.
   * WANT_ROOT (e.g. "/dev/sda2") restricts the search to that volume;
   * without it, several candidates are an error listing them.  Both
   * backends only list names and let winvol.h decide: one rule, one set
   * of messages (names on the way that differ only in case: refused). */
  int (*find_windows) (struct disk *d, const char *want_root, struct np_error *err);
  const char *(*root) (struct disk *d);       /* "/dev/sda2" */
  const char *(*hive_path) (struct disk *d);  /* "/Windows/System32/config/SYSTEM" */

  /* Does NAME exist in the hive's directory (case-insensitively)? */
  int (*exists) (struct disk *d, const char *name);

  /* Copy NAME from the hive's directory to the host file LOCAL.
   * Returns 0, or -1 with *err. */
  int (*fetch) (struct disk *d, const char *name, const char *local,
                struct np_error *err);

  /* Replace NAME in the hive's directory with the host file LOCAL, never
   * leaving a half-written NAME: the new content is written where
   * nothing refers to it yet and read back and compared (SCRATCH is a
   * host path it may use), then NAME is switched to it in one step that
   * keeps the original's NTFS security descriptor and attributes, and
   * the volume is flushed.  (The appliance uploads a temporary file
   * beside NAME and renames it over NAME; the direct backend writes free
   * clusters and switches NAME's $DATA to them in one MFT record write.)
   * Refuses (NP_EXIT_UNSAFE) a hibernated or Fast Startup volume.
   * Returns 0 or -1 with *err; on failure NAME is unchanged. */
  int (*replace) (struct disk *d, const char *name, const char *local,
                  const char *scratch, struct np_error *err);

  /* Other files of the Windows volume, for --defer (defer.h).  PATH is
   * absolute on the volume, '/'-separated, and matched
   * case-insensitively, as Windows does: "/Windows/System32/GroupPolicy/gpt.ini".
   *
   * read_file: the whole of PATH into *BUF (malloc'd, *LEN bytes, plus a
   * terminating NUL not counted).  Returns 0, 1 if PATH (or a directory
   * on the way) does not exist, or -1 with *err; a file larger than
   * DISK_READ_MAX is refused unread (the files --defer reads hold a few
   * KB; the image is someone else's). */
  int (*read_file) (struct disk *d, const char *path, char **buf, size_t *len,
                    struct np_error *err);
  /* Create or replace PATH with BUF, creating missing directories.  A
   * reader after a crash sees the old content or the new, never a mix
   * (temporary name + rename, or one MFT record write).  Refuses
   * (NP_EXIT_UNSAFE) a hibernated volume, like replace.  Returns 0 or -1
   * with *err. */
  int (*write_file) (struct disk *d, const char *path, const char *buf, size_t len,
                     struct np_error *err);
  /* Delete PATH: 0 if deleted or already absent, -1 with *err.
   * Directories are left alone. */
  int (*remove_file) (struct disk *d, const char *path, struct np_error *err);

  /* Flush and release everything; an error here means the writes may
   * not have reached the image.  Frees D either way. */
  int (*close) (struct disk *d, struct np_error *err);

  /* Release everything after a failure, ignoring errors.  Frees D. */
  void (*abort) (struct disk *d);

  /* Optional: several images through one expensive setup (one appliance
   * launch).  out[i] is the disk of reqs[i], or NULL with errs[i] filled.
   * Returns NULL if nothing could be opened (every errs[i] filled).
   * Each disk's close then only detaches it; close_batch, after all of
   * them, flushes and shuts down: its error concerns every image of the
   * batch that was written. */
  struct disk_batch *(*open_batch) (const struct disk_request *reqs, size_t n,
                                    struct disk **out, struct np_error *errs);
  int (*close_batch) (struct disk_batch *b, struct np_error *err);
  void (*abort_batch) (struct disk_batch *b);
  /* How many images one batch can take. */
  int (*max_disks) (void);
};

extern const struct disk_backend appliance_backend;
extern const struct disk_backend direct_backend;

/* The logical sector size the disk of REQ has by its partition table
 * (parttable_sector_size), read through qemu-nbd as --direct reads it:
 * what the appliance's drive is given when --blocksize is not.
 * Returns 0 with *SECTOR, or -1 with *err. */
int disk_sector_size (const struct disk_request *req, unsigned *sector, struct np_error *err);

/* For the backends' file calls: check PATH (absolute, '/'-separated, no
 * "." or "..", no component past 255 characters, not ending in '/') and
 * split it.  *COMPS (malloc'd) points into *BUF (malloc'd): *N
 * components, the last one the file's name.  Errors name IMAGE. */
int disk_path_split (const char *image, const char *path, char **buf, char ***comps,
                     size_t *n, struct np_error *err);

/* Check the image with qemu-img before any backend opens it: a locked
 * image (a running VM), a missing parent of a differencing disk or a
 * truncated container fail here in milliseconds with qemu's reason. */
int disk_preflight (const char *path, const char *format, struct np_error *err);
/* A remote image (http, https, ssh URI) opened once by qemu-img:
 * 0, or -1 with a one-line *err naming URI and qemu's reason. */
int disk_preflight_remote (const char *uri, const char *format, struct np_error *err);
/* The same, opening each layer of SPECS (layers_qemu_spec: NULL-
 * terminated) instead when not NULL. */
int disk_preflight_spec (const char *path, const char *format, char *const *specs,
                         struct np_error *err);

#endif
