/* netvsc-patch: the appliance backend.  The image is opened by
 * libguestfs, whose appliance (a small VM) parses the guest's
 * filesystems, so a hostile image cannot reach the host's kernel or this
 * process through NTFS. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <guestfs.h>

#include "disk.h"
#include "hostfile.h"

/* Suffix of the temporary file written beside the one it replaces. */
#define TMP_SUFFIX ".netvsc-patch.tmp"

/* One appliance, shared by the images of a batch: launching it is
 * almost all of the cost, so many images go through one launch. */
struct disk_batch {
  guestfs_h *g;
  int verbose;
  int quiet;
  const void *mounted_by;      /* the image whose volume is at / */
  char **partitions;           /* every drive's, listed once */
  int mounted_rw;
  size_t n_images;
  struct image **images;
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
};

/* Keep error lines short: drop libguestfs's debugging advice. */
static void
drop_advice (char *msg)
{
  char *advice = strstr (msg, " This usually means");
  if (advice)
    *advice = '\0';
}

static int
guest_error (struct image *im, struct np_error *err, int code, const char *what)
{
  const char *e = guestfs_last_error (im->g);
  int r = np_error_set (err, code, "%s: %s: %s", im->path, what,
                        e ? e : "unknown libguestfs error");
  drop_advice (err->msg);
  return r;
}

/* --- launch --------------------------------------------------------- */

static guestfs_h *
new_handle (const struct disk_batch *b, int force_tcg)
{
  guestfs_h *g = guestfs_create ();

  if (g == NULL)
    return NULL;
  /* Errors are reported once, as one line, by our caller. */
  guestfs_set_error_handler (g, NULL, NULL);
  /* Keep qemu out of our process group: Ctrl-C is ours to handle
   * (between steps), not a kill of the appliance mid-write. */
  guestfs_set_pgroup (g, 1);
  if (b->verbose > 1) {
    guestfs_set_verbose (g, 1);
    guestfs_set_trace (g, 1);
  }
  if (force_tcg) {
    char *settings[] = { "force_tcg", NULL };
    if (guestfs_set_backend_settings (g, settings) == -1) {
      guestfs_close (g);
      return NULL;
    }
  }
  return g;
}

/* Add every drive of the batch and launch.  Returns 0, or -1 with the
 * libguestfs error in ERRBUF. */
static int
launch (struct disk_batch *b, const struct disk_request *reqs, size_t n, int force_tcg,
        char *errbuf, size_t len)
{
  const char *e;

  b->g = new_handle (b, force_tcg);
  if (b->g == NULL) {
    snprintf (errbuf, len, "cannot create a libguestfs handle");
    return -1;
  }
  for (size_t i = 0; i < n; i++)
    if (guestfs_add_drive_opts (b->g, reqs[i].path,
                                GUESTFS_ADD_DRIVE_OPTS_FORMAT, reqs[i].format,
                                GUESTFS_ADD_DRIVE_OPTS_READONLY, reqs[i].readonly,
                                -1) == -1)
      goto fail;
  if (guestfs_launch (b->g) == 0)
    return 0;
 fail:
  e = guestfs_last_error (b->g);
  snprintf (errbuf, len, "%s", e ? e : "unknown libguestfs error");
  np_one_line (errbuf);
  drop_advice (errbuf);
  guestfs_close (b->g);
  b->g = NULL;
  return -1;
}

static void image_free (struct image *im);
static void image_abort_batch (struct disk_batch *b);

static struct disk_batch *
image_open_batch (const struct disk_request *reqs, size_t n, struct disk **out,
                  struct np_error *errs)
{
  struct disk_batch *b = calloc (1, sizeof *b);
  char error[1024];
  char **devices = NULL;

  for (size_t i = 0; i < n; i++)
    out[i] = NULL;
  if (b == NULL || (b->images = calloc (n, sizeof *b->images)) == NULL) {
    free (b);
    for (size_t i = 0; i < n; i++)
      np_error_set (&errs[i], NP_EXIT_RUNTIME, "out of memory");
    return NULL;
  }
  b->verbose = reqs[0].verbose;
  b->quiet = reqs[0].quiet;

  if (launch (b, reqs, n, 0, error, sizeof error) == -1) {
    if (getenv ("LIBGUESTFS_BACKEND_SETTINGS") != NULL)
      goto fail;
    /* Some hosts expose /dev/kvm but qemu aborts under it; software
     * emulation is slow but works. */
    if (!b->quiet)
      fprintf (stderr, "netvsc-patch: warning: %s%s: the appliance failed to start with "
               "hardware acceleration; retrying with LIBGUESTFS_BACKEND_SETTINGS=force_tcg "
               "(software emulation, slower)\n", reqs[0].path, n > 1 ? " and others" : "");
    if (launch (b, reqs, n, 1, error, sizeof error) == -1)
      goto fail;
  }

  devices = guestfs_list_devices (b->g);
  for (size_t i = 0; i < n; i++) {
    struct image *im = calloc (1, sizeof *im);
    if (im == NULL || devices == NULL || devices[i] == NULL) {
      free (im);
      np_error_set (&errs[i], NP_EXIT_RUNTIME, "%s: the appliance does not show the drive",
                    reqs[i].path);
      continue;
    }
    im->batch = b;
    im->g = b->g;
    im->path = reqs[i].path;
    im->format = reqs[i].format;
    im->readonly = reqs[i].readonly;
    im->verbose = reqs[i].verbose;
    im->quiet = reqs[i].quiet;
    snprintf (im->device, sizeof im->device, "%s", devices[i]);
    b->images[b->n_images++] = im;
    out[i] = (struct disk *) im;
  }
  for (size_t i = 0; devices && devices[i]; i++)
    free (devices[i]);
  free (devices);
  return b;

 fail:
  for (size_t i = 0; i < n; i++)
    np_error_set (&errs[i], NP_EXIT_RUNTIME, "%s: cannot launch the libguestfs appliance%s: %s",
                  reqs[i].path, getenv ("LIBGUESTFS_BACKEND_SETTINGS") ? "" : " (also with force_tcg)",
                  error);
  free (b->images);
  free (b);
  return NULL;
}

static struct disk *
image_open (const struct disk_request *req, struct np_error *err)
{
  struct disk *d = NULL;
  struct disk_batch *b = image_open_batch (req, 1, &d, err);

  if (b == NULL)
    return NULL;
  if (d == NULL) {
    guestfs_close (b->g);
    free (b->images);
    free (b);
    return NULL;
  }
  ((struct image *) d)->own_batch = 1;
  return d;
}

/* --- the Windows volume --------------------------------------------- */

/* If DEV holds a Windows SYSTEM hive, return its guest path (it is left
 * unmounted either way). */
static char *
windows_hive_on (struct image *im, const char *dev)
{
  char *path = NULL;

  im->batch->mounted_by = NULL;
  if (guestfs_umount_all (im->g) == -1 || guestfs_mount_ro (im->g, dev, "/") == -1)
    return NULL;
  path = guestfs_case_sensitive_path (im->g, "/windows/system32/config/system");
  if (path && guestfs_is_file (im->g, path) != 1) {
    free (path);
    path = NULL;
  }
  guestfs_umount_all (im->g);
  return path;
}

/* Is DEV (a filesystem the appliance lists) on this image's drive?
 * /dev/sda1 is on /dev/sda, /dev/sdaa1 is not.  Filesystems are told
 * apart by device, never by UUID: cloned templates share them. */
static const char *
on_my_drive (struct image *im, const char *dev)
{
  size_t n = strlen (im->device);

  if (strncmp (dev, im->device, n) != 0)
    return NULL;
  for (const char *p = dev + n; *p; p++)
    if (*p < '0' || *p > '9')
      return NULL;
  return dev + n;
}

/* The name DEV would have if the image were the only drive: what the
 * user sees and passes to --root, whatever the batch. */
static void
local_name (const char *partnum, char *buf, size_t len)
{
  snprintf (buf, len, "/dev/sda%s", partnum);
}

/* Mount this image's Windows volume at / (read-write if RW), unless it
 * is already. */
static int
ensure_mounted (struct image *im, int rw, struct np_error *err);

static void
free_strings (char **v)
{
  for (size_t i = 0; v && v[i]; i++)
    free (v[i]);
  free (v);
}

/* The filesystems on this image's drive, as pairs (device, type) like
 * guestfs_list_filesystems returns, NULL-terminated.  That call probes
 * every drive of the appliance (seconds per drive under TCG) and would
 * make a batch quadratic: instead the batch lists partitions once, and
 * only this drive's are typed, with blkid. */
static char **
my_filesystems (struct image *im)
{
  struct disk_batch *b = im->batch;
  size_t n = 0, cap = 8;
  char **out = calloc (cap * 2 + 1, sizeof *out);
  char *candidates[130];
  size_t nc = 0;

  if (out == NULL)
    return NULL;
  if (b->partitions == NULL &&
      (b->partitions = guestfs_list_partitions (im->g)) == NULL) {
    free (out);
    return NULL;
  }
  for (size_t i = 0; b->partitions[i] && nc < 128; i++)
    if (on_my_drive (im, b->partitions[i]) && *on_my_drive (im, b->partitions[i]))
      candidates[nc++] = b->partitions[i];
  if (nc == 0)
    candidates[nc++] = im->device;      /* a filesystem on the whole disk */

  for (size_t i = 0; i < nc; i++) {
    char *type = guestfs_vfs_type (im->g, candidates[i]);
    if (type == NULL || *type == '\0') {
      free (type);
      continue;
    }
    if (n == cap) {
      char **grown = realloc (out, (cap * 4 + 1) * sizeof *out);
      if (grown == NULL) {
        free (type);
        break;
      }
      out = grown;
      cap *= 2;
    }
    out[2 * n] = strdup (candidates[i]);
    out[2 * n + 1] = type;
    n++;
  }
  out[2 * n] = NULL;
  return out;
}

static int
image_find_windows (struct disk *d, const char *want_root, struct np_error *err)
{
  struct image *im = (struct image *) d;
  char **fs = my_filesystems (im);
  char found[512] = "", seen[512] = "";
  size_t n_found = 0, n_fs = 0;
  char *path = NULL;
  int r = -1;

  if (fs == NULL)
    return guest_error (im, err, NP_EXIT_RUNTIME, "cannot list filesystems");

  for (size_t i = 0; fs[i] && fs[i + 1]; i += 2) {
    const char *dev = fs[i], *type = fs[i + 1], *partnum;
    char local[48];
    char *p;

    if ((partnum = on_my_drive (im, dev)) == NULL)
      continue;
    local_name (partnum, local, sizeof local);
    if (strcmp (type, "unknown") == 0 || strcmp (type, "swap") == 0)
      continue;
    n_fs++;
    snprintf (seen + strlen (seen), sizeof seen - strlen (seen), "%s%s (%s)",
              n_fs > 1 ? ", " : "", local, type);
    if (strcmp (type, "ntfs") != 0)
      continue;
    if (want_root && strcmp (want_root, local) != 0)
      continue;
    p = windows_hive_on (im, dev);
    if (p == NULL)
      continue;
    n_found++;
    snprintf (found + strlen (found), sizeof found - strlen (found), "%s%s",
              n_found > 1 ? ", " : "", local);
    if (n_found == 1) {
      im->root = strdup (dev);
      snprintf (im->root_local, sizeof im->root_local, "%s", local);
      path = p;
    }
    else
      free (p);
  }

  if (n_found == 0) {
    if (want_root)
      np_error_set (err, NP_EXIT_RUNTIME,
                    "%s: %s is not a Windows system volume (filesystems: %s)",
                    im->path, want_root, n_fs ? seen : "none");
    else if (n_fs == 0)
      np_error_set (err, NP_EXIT_RUNTIME,
                    "%s: no filesystems found (no partitions, or not a disk image?)", im->path);
    else
      np_error_set (err, NP_EXIT_RUNTIME,
                    "%s: no Windows system volume (no NTFS filesystem holds "
                    "\\Windows\\System32\\config\\SYSTEM; filesystems: %s)", im->path, seen);
    goto out;
  }
  if (n_found > 1) {
    np_error_set (err, NP_EXIT_RUNTIME,
                  "%s: %zu Windows installations (%s): choose one with --root DEVICE",
                  im->path, n_found, found);
    goto out;
  }

  if (ensure_mounted (im, 0, err) == -1)
    goto out;
  im->system_path = path;
  path = NULL;
  im->config_dir = strdup (im->system_path);
  *strrchr (im->config_dir, '/') = '\0';
  r = 0;

 out:
  free (path);
  free_strings (fs);
  return r;
}

/* Guest path of NAME in the hive's directory if it exists there
 * (case-insensitively), else NULL. */
static char *
config_file (struct image *im, const char *name)
{
  char *p, *q;
  struct np_error ignored;

  if (ensure_mounted (im, 0, &ignored) == -1)
    return NULL;
  if (asprintf (&p, "%s/%s", im->config_dir, name) == -1)
    return NULL;
  q = guestfs_case_sensitive_path (im->g, p);
  free (p);
  if (q && guestfs_is_file (im->g, q) != 1) {
    free (q);
    q = NULL;
  }
  return q;
}

static int
image_exists (struct disk *d, const char *name)
{
  char *p = config_file ((struct image *) d, name);
  free (p);
  return p != NULL;
}

static int
image_fetch (struct disk *d, const char *name, const char *local, struct np_error *err)
{
  struct image *im = (struct image *) d;
  char *p = config_file (im, name);
  int r = 0;

  if (p == NULL)
    return np_error_set (err, NP_EXIT_RUNTIME, "%s: %s/%s does not exist",
                         im->path, im->config_dir, name);
  if (guestfs_download (im->g, p, local) == -1)
    r = guest_error (im, err, NP_EXIT_RUNTIME, "cannot copy a file out of the guest");
  free (p);
  return r;
}

/* --- write-back ----------------------------------------------------- */

static int
ensure_mounted (struct image *im, int rw, struct np_error *err)
{
  struct disk_batch *b = im->batch;
  const char *e;

  if (b->mounted_by == im && (b->mounted_rw || !rw))
    return 0;
  b->mounted_by = NULL;
  if (guestfs_umount_all (im->g) == -1)
    return guest_error (im, err, NP_EXIT_RUNTIME, "cannot unmount");
  if (!rw) {
    if (guestfs_mount_ro (im->g, im->root, "/") == -1)
      return guest_error (im, err, NP_EXIT_RUNTIME, "cannot mount the Windows volume");
    b->mounted_by = im;
    b->mounted_rw = 0;
    return 0;
  }
  if (guestfs_mount (im->g, im->root, "/") == 0) {
    struct guestfs_statvfs *st = guestfs_statvfs (im->g, "/");
    int rdonly = st == NULL || (st->flag & 1 /* ST_RDONLY */);
    guestfs_free_statvfs (st);
    b->mounted_by = im;
    b->mounted_rw = !rdonly;
    if (!rdonly)
      return 0;
    /* Recent ntfs-3g does not refuse a hibernated or Fast Startup
     * volume: it falls back to a read-only mount.  Same verdict. */
    return np_error_set (err, NP_EXIT_UNSAFE,
                         "%s: refused: Windows on %s is hibernated or was stopped with Fast "
                         "Startup (the volume only mounts read-only); shut the guest down "
                         "fully (shutdown /s /t 0, or turn Fast Startup off) and try again",
                         im->path, im->root_local);
  }
  /* ntfs-3g refuses a read-write mount of a hibernated volume or one
   * left unclean by Fast Startup: Windows would overwrite our change
   * (or we its saved state) at the next resume. */
  e = guestfs_last_error (im->g);
  if (e && (strcasestr (e, "hibernat") || strcasestr (e, "unclean") ||
            strcasestr (e, "unsafe state") || strcasestr (e, "Fast Restart") ||
            strcasestr (e, "Metadata kept in Windows cache")))
    return np_error_set (err, NP_EXIT_UNSAFE,
                         "%s: refused: Windows on %s is hibernated or was stopped with Fast "
                         "Startup; shut the guest down fully (shutdown /s /t 0, or turn Fast "
                         "Startup off) and try again", im->path, im->root_local);
  return guest_error (im, err, NP_EXIT_RUNTIME, "cannot mount the Windows volume read-write");
}

/* Give the new file the original's NTFS security descriptor and
 * attributes (ntfs-3g exposes them as extended attributes). */
static void
copy_ntfs_metadata (struct image *im, const char *from, const char *to)
{
  const char *names[] = { "system.ntfs_acl", "system.ntfs_attrib" };

  for (size_t i = 0; i < 2; i++) {
    size_t size;
    char *val = guestfs_getxattr (im->g, from, names[i], &size);
    if (val == NULL) {
      if (im->verbose)
        fprintf (stderr, "netvsc-patch: %s: cannot read %s of %s: %s\n", im->path,
                 names[i], from, guestfs_last_error (im->g));
      continue;
    }
    if (guestfs_setxattr (im->g, names[i], val, (int) size, to) == -1 && im->verbose)
      fprintf (stderr, "netvsc-patch: %s: cannot set %s on %s: %s\n", im->path,
               names[i], to, guestfs_last_error (im->g));
    free (val);
  }
}

static int
image_replace (struct disk *d, const char *name, const char *local,
               const char *scratch, struct np_error *err)
{
  struct image *im = (struct image *) d;
  char *tmp = NULL, *target = NULL;
  int same, r = -1;

  if (ensure_mounted (im, 1, err) == -1)
    return -1;
  target = config_file (im, name);
  if (target == NULL && asprintf (&target, "%s/%s", im->config_dir, name) == -1)
    target = NULL;
  if (target == NULL || asprintf (&tmp, "%s%s", target, TMP_SUFFIX) == -1) {
    free (target);
    return np_error_set (err, NP_EXIT_RUNTIME, "out of memory");
  }

  if (guestfs_upload (im->g, local, tmp) == -1) {
    guest_error (im, err, NP_EXIT_RUNTIME, "cannot copy the new file into the guest");
    goto fail;
  }
  if (guestfs_sync (im->g) == -1) {
    guest_error (im, err, NP_EXIT_RUNTIME, "sync failed");
    goto fail;
  }
  /* Read back what the guest filesystem holds before trusting it. */
  unlink (scratch);
  if (guestfs_download (im->g, tmp, scratch) == -1) {
    guest_error (im, err, NP_EXIT_RUNTIME, "cannot read back the new file");
    goto fail;
  }
  same = hostfile_same (local, scratch);
  unlink (scratch);
  if (same != 0) {
    np_error_set (err, NP_EXIT_RUNTIME,
                  "%s: %s does not read back identically; original left in place",
                  im->path, tmp);
    goto fail;
  }
  if (guestfs_is_file (im->g, target) == 1)
    copy_ntfs_metadata (im, target, tmp);
  if (guestfs_rename (im->g, tmp, target) == -1) {
    guest_error (im, err, NP_EXIT_RUNTIME, "cannot rename the new file into place");
    goto fail;
  }
  if (guestfs_sync (im->g) == -1) {
    guest_error (im, err, NP_EXIT_RUNTIME, "sync failed");
    goto out;
  }
  r = 0;
  goto out;

 fail:
  /* Leave no stray file in the guest; the original is untouched. */
  guestfs_rm_f (im->g, tmp);
 out:
  free (tmp);
  free (target);
  return r;
}

/* --- teardown ------------------------------------------------------- */

static void
image_free (struct image *im)
{
  free (im->root);
  free (im->system_path);
  free (im->config_dir);
  free (im);
}

/* Unmount, shut the appliance down and close: an error here means the
 * writes of every image in the batch may not be on disk. */
static int
image_close_batch (struct disk_batch *b, struct np_error *err)
{
  const char *e = NULL;
  int r = 0;

  if (guestfs_umount_all (b->g) == -1 || guestfs_shutdown (b->g) == -1) {
    e = guestfs_last_error (b->g);
    r = np_error_set (err, NP_EXIT_RUNTIME, "the appliance did not shut down cleanly; "
                      "writes may not be on disk: %s", e ? e : "unknown error");
  }
  image_abort_batch (b);
  return r;
}

/* Detach one image from its batch (the batch frees it). */
static void
image_release (struct image *im)
{
  if (im->batch->mounted_by == im) {
    guestfs_umount_all (im->g);
    im->batch->mounted_by = NULL;
  }
}

static int
image_close (struct disk *d, struct np_error *err)
{
  struct image *im = (struct image *) d;
  struct np_error e2;

  image_release (im);
  if (!im->own_batch)
    return 0;
  if (image_close_batch (im->batch, &e2) == -1)
    return np_error_set (err, e2.code, "%s: %s", im->path, e2.msg);
  return 0;
}

static void
image_abort_batch (struct disk_batch *b)
{
  guestfs_close (b->g);
  free_strings (b->partitions);
  for (size_t i = 0; i < b->n_images; i++)
    image_free (b->images[i]);
  free (b->images);
  free (b);
}

static void
image_abort (struct disk *d)
{
  struct image *im = (struct image *) d;

  image_release (im);
  if (im->own_batch)
    image_abort_batch (im->batch);
}

static int
image_max_disks (void)
{
  guestfs_h *g = guestfs_create ();
  int n;

  if (g == NULL)
    return 1;
  guestfs_set_error_handler (g, NULL, NULL);
  n = guestfs_max_disks (g);
  guestfs_close (g);
  /* one drive is the appliance's own */
  return n > 2 ? n - 1 : 1;
}

static const char *
image_root (struct disk *d)
{
  return ((struct image *) d)->root_local;
}

static const char *
image_hive_path (struct disk *d)
{
  return ((struct image *) d)->system_path;
}

const struct disk_backend appliance_backend = {
  .name = "appliance",
  .open = image_open,
  .find_windows = image_find_windows,
  .root = image_root,
  .hive_path = image_hive_path,
  .exists = image_exists,
  .fetch = image_fetch,
  .replace = image_replace,
  .close = image_close,
  .abort = image_abort,
  .open_batch = image_open_batch,
  .close_batch = image_close_batch,
  .abort_batch = image_abort_batch,
  .max_disks = image_max_disks,
};
