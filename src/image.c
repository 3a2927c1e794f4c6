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

static int
guest_error (struct image *im, struct np_error *err, int code, const char *what)
{
  const char *e = guestfs_last_error (im->g);
  int r = np_error_set (err, code, "%s: %s: %s", im->path, what,
                        e ? e : "unknown libguestfs error");
  /* Keep the line short: drop libguestfs's debugging advice. */
  char *advice = strstr (err->msg, " This usually means");
  if (advice)
    *advice = '\0';
  return r;
}

/* --- launch --------------------------------------------------------- */

static int
configure (struct image *im, int force_tcg, struct np_error *err)
{
  im->g = guestfs_create ();
  if (im->g == NULL)
    return np_error_set (err, NP_EXIT_RUNTIME, "%s: cannot create a libguestfs handle",
                         im->path);
  /* Errors are reported once, as one line, by our caller. */
  guestfs_set_error_handler (im->g, NULL, NULL);
  /* Keep qemu out of our process group: Ctrl-C is ours to handle
   * (between steps), not a kill of the appliance mid-write. */
  guestfs_set_pgroup (im->g, 1);
  if (im->verbose > 1) {
    guestfs_set_verbose (im->g, 1);
    guestfs_set_trace (im->g, 1);
  }
  if (force_tcg) {
    char *settings[] = { "force_tcg", NULL };
    if (guestfs_set_backend_settings (im->g, settings) == -1)
      return guest_error (im, err, NP_EXIT_RUNTIME, "cannot set force_tcg");
  }
  if (guestfs_add_drive_opts (im->g, im->path,
                              GUESTFS_ADD_DRIVE_OPTS_FORMAT, im->format,
                              GUESTFS_ADD_DRIVE_OPTS_READONLY, im->readonly,
                              -1) == -1)
    return guest_error (im, err, NP_EXIT_RUNTIME, "cannot add the image");
  return 0;
}

static void image_abort (struct disk *d);

static struct disk *
image_open (const struct disk_request *req, struct np_error *err)
{
  struct image *im = calloc (1, sizeof *im);
  char first_error[512];
  const char *e;
  const char *path = req->path;

  if (im == NULL) {
    np_error_set (err, NP_EXIT_RUNTIME, "out of memory");
    return NULL;
  }
  im->path = req->path;
  im->format = req->format;
  im->readonly = req->readonly;
  im->verbose = req->verbose;
  im->quiet = req->quiet;

  if (configure (im, 0, err) == -1)
    goto fail;
  if (guestfs_launch (im->g) == 0)
    return (struct disk *) im;

  e = guestfs_last_error (im->g);
  snprintf (first_error, sizeof first_error, "%s", e ? e : "unknown error");
  np_one_line (first_error);
  if (getenv ("LIBGUESTFS_BACKEND_SETTINGS") != NULL) {
    np_error_set (err, NP_EXIT_RUNTIME, "%s: cannot launch the libguestfs appliance: %s",
                  path, first_error);
    goto fail;
  }
  /* Some hosts expose /dev/kvm but qemu aborts under it; software
   * emulation is slow but works. */
  if (!im->quiet)
    fprintf (stderr, "netvsc-patch: warning: %s: the appliance failed to start with "
             "hardware acceleration; retrying with LIBGUESTFS_BACKEND_SETTINGS=force_tcg "
             "(software emulation, slower)\n", path);
  guestfs_close (im->g);
  im->g = NULL;
  if (configure (im, 1, err) == -1)
    goto fail;
  if (guestfs_launch (im->g) == -1) {
    guest_error (im, err, NP_EXIT_RUNTIME, "cannot launch the libguestfs appliance "
                 "(also with force_tcg)");
    goto fail;
  }
  return (struct disk *) im;

 fail:
  image_abort ((struct disk *) im);
  return NULL;
}

/* --- the Windows volume --------------------------------------------- */

/* If DEV holds a Windows SYSTEM hive, return its guest path (it is left
 * unmounted either way). */
static char *
windows_hive_on (struct image *im, const char *dev)
{
  char *path = NULL;

  if (guestfs_mount_ro (im->g, dev, "/") == -1)
    return NULL;
  path = guestfs_case_sensitive_path (im->g, "/windows/system32/config/system");
  if (path && guestfs_is_file (im->g, path) != 1) {
    free (path);
    path = NULL;
  }
  guestfs_umount_all (im->g);
  return path;
}

static void
free_strings (char **v)
{
  for (size_t i = 0; v && v[i]; i++)
    free (v[i]);
  free (v);
}

static int
image_find_windows (struct disk *d, const char *want_root, struct np_error *err)
{
  struct image *im = (struct image *) d;
  char **fs = guestfs_list_filesystems (im->g);
  char found[512] = "", seen[512] = "";
  size_t n_found = 0, n_fs = 0;
  char *path = NULL;
  int r = -1;

  if (fs == NULL)
    return guest_error (im, err, NP_EXIT_RUNTIME, "cannot list filesystems");

  for (size_t i = 0; fs[i] && fs[i + 1]; i += 2) {
    const char *dev = fs[i], *type = fs[i + 1];
    char *p;

    if (strcmp (type, "unknown") == 0 || strcmp (type, "swap") == 0)
      continue;
    n_fs++;
    snprintf (seen + strlen (seen), sizeof seen - strlen (seen), "%s%s (%s)",
              n_fs > 1 ? ", " : "", dev, type);
    if (strcmp (type, "ntfs") != 0)
      continue;
    if (want_root && strcmp (want_root, dev) != 0)
      continue;
    p = windows_hive_on (im, dev);
    if (p == NULL)
      continue;
    n_found++;
    snprintf (found + strlen (found), sizeof found - strlen (found), "%s%s",
              n_found > 1 ? ", " : "", dev);
    if (n_found == 1) {
      im->root = strdup (dev);
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

  if (guestfs_mount_ro (im->g, im->root, "/") == -1) {
    guest_error (im, err, NP_EXIT_RUNTIME, "cannot mount the Windows volume");
    goto out;
  }
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
remount_rw (struct image *im, struct np_error *err)
{
  const char *e;

  if (im->mounted_rw)
    return 0;
  if (guestfs_umount_all (im->g) == -1)
    return guest_error (im, err, NP_EXIT_RUNTIME, "cannot unmount");
  if (guestfs_mount (im->g, im->root, "/") == 0) {
    im->mounted_rw = 1;
    return 0;
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
                         "Startup off) and try again", im->path, im->root);
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

  if (remount_rw (im, err) == -1)
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

static int
image_close (struct disk *d, struct np_error *err)
{
  struct image *im = (struct image *) d;
  int r = 0;

  if (guestfs_umount_all (im->g) == -1)
    r = guest_error (im, err, NP_EXIT_RUNTIME, "cannot unmount the Windows volume");
  else if (guestfs_shutdown (im->g) == -1)
    r = guest_error (im, err, NP_EXIT_RUNTIME,
                     "the appliance did not shut down cleanly; writes may not be on disk");
  guestfs_close (im->g);
  image_free (im);
  return r;
}

static void
image_abort (struct disk *d)
{
  struct image *im = (struct image *) d;

  if (im->g)
    guestfs_close (im->g);
  image_free (im);
}

static const char *
image_root (struct disk *d)
{
  return ((struct image *) d)->root;
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
};
