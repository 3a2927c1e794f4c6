/* netvsc-patch: the appliance backend.  The image is opened by
 * libguestfs, whose appliance (a small VM) parses the guest's
 * filesystems, so a hostile image cannot reach the host's kernel or this
 * process through NTFS. */
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

/* Only to compute inherited security descriptors (write_file): pure
 * functions over bytes, no filesystem access from this process.
 * libntfs-3g's headers expect the system headers above first. */
#include <ntfs-3g/types.h>
#include <ntfs-3g/layout.h>
#include <ntfs-3g/security.h>
#include <ntfs-3g/acls.h>

#include "disk.h"
#include "escape.h"
#include "hostfile.h"
#include "interrupt.h"
#include "launchwatch.h"
#include "winvol.h"

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

/* A libguestfs failure about guest PATH. */
static int
path_error (struct image *im, const char *path, const char *what, struct np_error *err)
{
  const char *e = guestfs_last_error (im->g);
  int r = np_error_set (err, NP_EXIT_RUNTIME, "%s: %s: %s: %s", im->path, path, what,
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

/* Add every drive of the batch and launch, watched (launchwatch.h): a
 * launch that may use KVM is ended after BOUND seconds without progress
 * (0: never), and any launch by SIGINT/SIGTERM.  Returns 0, or -1 with
 * the error in ERRBUF; *END says whether the watch ended it. */
static int
launch (struct disk_batch *b, const struct disk_request *reqs, size_t n, int force_tcg,
        int bound, enum launch_end *end, char *errbuf, size_t len)
{
  struct launch_watch *w;
  struct timespec t0, t1;
  double longest = -1;
  const char *e;
  int r;

  *end = LAUNCH_RAN;
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
  w = launch_watch_start (b->g, launch_may_use_kvm (b->g) ? bound : 0, b->verbose > 1);
  clock_gettime (CLOCK_MONOTONIC, &t0);
  r = guestfs_launch (b->g);
  clock_gettime (CLOCK_MONOTONIC, &t1);
  if (w)
    *end = launch_watch_stop (w, &longest);
  /* what to set --launch-timeout from */
  if (b->verbose && !b->quiet && longest >= 0)
    fprintf (stderr, "netvsc-patch: %s%s: appliance %s in %.1f s, at most %.1f s without "
             "progress (the bound is %d s)\n", reqs[0].path, n > 1 ? " and others" : "",
             r == 0 ? "up" : "not up", (double) (t1.tv_sec - t0.tv_sec) +
             (double) (t1.tv_nsec - t0.tv_nsec) / 1e9, longest, bound);
  if (r == 0)
    return 0;
 fail:
  e = guestfs_last_error (b->g);
  if (*end == LAUNCH_HUNG)
    snprintf (errbuf, len, "no progress for %d s with hardware acceleration (KVM hangs "
              "on some nested hosts; LIBGUESTFS_BACKEND_SETTINGS=force_tcg avoids it)", bound);
  else if (*end == LAUNCH_INTERRUPTED)
    snprintf (errbuf, len, "interrupted by a signal");
  else
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
  const char *user_settings = getenv ("LIBGUESTFS_BACKEND_SETTINGS");
  char error[1024];
  char **devices = NULL;
  enum launch_end end;
  int bound, tcg;

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
  bound = reqs[0].launch_timeout == 0 ? LAUNCH_TIMEOUT_DEFAULT
          : reqs[0].launch_timeout < 0 ? 0 : reqs[0].launch_timeout;
  /* The user's settings are used as they are; else KVM is skipped once
   * this run has seen it fail. */
  tcg = user_settings == NULL && launch_kvm_unusable ();
  if (tcg && b->verbose && !b->quiet)
    fprintf (stderr, "netvsc-patch: %s: KVM did not work earlier in this run: software "
             "emulation\n", reqs[0].path);

  if (launch (b, reqs, n, tcg, bound, &end, error, sizeof error) == -1) {
    if (user_settings != NULL || tcg || end == LAUNCH_INTERRUPTED || interrupt_pending ())
      goto fail;
    /* Some hosts expose /dev/kvm but qemu aborts under it, or starts and
     * never boots the guest (nested virtualisation); software emulation
     * is slow but works.  No progress at all is KVM's doing; a failed
     * start may be an image's, so it counts only once TCG works. */
    if (end == LAUNCH_HUNG)
      launch_set_kvm_unusable ();
    if (!b->quiet && launch_first_fallback ()) {
      char why[64];
      if (end == LAUNCH_HUNG)
        snprintf (why, sizeof why, "made no progress for %d s", bound);
      else
        snprintf (why, sizeof why, "failed to start");
      esc_line (stderr, "netvsc-patch: warning: %s%s: the appliance %s with "
                "hardware acceleration; retrying with LIBGUESTFS_BACKEND_SETTINGS=force_tcg "
                "(software emulation, slower) for the rest of this run", reqs[0].path,
                n > 1 ? " and others" : "", why);
    }
    tcg = 2;
    if (launch (b, reqs, n, 1, bound, &end, error, sizeof error) == -1)
      goto fail;
    launch_set_kvm_unusable ();
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
                  reqs[i].path, user_settings || !tcg ? "" : tcg == 2 ? " (also with force_tcg)"
                  : " (with force_tcg)", error);
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

/* For winvol_look, on the volume mounted at /: the entries of DIR
 * whose name is NAME ignoring case (ASCII case: winvol asks for ASCII
 * names only). */
static int
list_names (void *ctx, const char *dir, const char *name, struct winvol_name **out,
            size_t *n, char *why, size_t len)
{
  struct image *im = ctx;
  struct guestfs_dirent_list *l = guestfs_readdir (im->g, dir);
  struct winvol_name *v = NULL;
  size_t k = 0;

  *out = NULL;
  *n = 0;
  if (l == NULL) {
    const char *e = guestfs_last_error (im->g);
    snprintf (why, len, "%s: %s", dir, e ? e : "cannot list it");
    drop_advice (why);
    return -1;
  }
  for (uint32_t i = 0; i < l->len; i++) {
    struct guestfs_dirent *e = &l->val[i];
    struct winvol_name *grown;
    char ftyp = e->ftyp;
    char *path = NULL;

    if (strcasecmp (e->name, name) != 0)
      continue;
    /* d_type not given: ask (no symlink followed, as readdir's). */
    if (ftyp == 'u' && asprintf (&path, "%s/%s", strcmp (dir, "/") ? dir : "", e->name) != -1) {
      ftyp = guestfs_is_dir (im->g, path) == 1 ? 'd' : guestfs_is_file (im->g, path) == 1 ? 'r' : '?';
      free (path);
    }
    grown = realloc (v, (k + 1) * sizeof *v);
    if (grown == NULL || (grown[k].name = strdup (e->name)) == NULL) {
      v = grown ? grown : v;
      for (size_t j = 0; j < k; j++)
        free (v[j].name);
      free (v);
      guestfs_free_dirent_list (l);
      snprintf (why, len, "out of memory");
      return -1;
    }
    v = grown;
    v[k++].kind = ftyp == 'd' ? WINVOL_DIR : ftyp == 'r' ? WINVOL_FILE : WINVOL_OTHER;
  }
  guestfs_free_dirent_list (l);
  *out = v;
  *n = k;
  return 0;
}

/* Why the volume on DEV cannot be mounted: ntfs-3g's own reason where
 * its message has one ("Failed to mount '/dev/sdb1': Input/output
 * error"), which names no appliance device. */
static void
mount_reason (struct image *im, char *buf, size_t len)
{
  const char *e = guestfs_last_error (im->g), *r;

  snprintf (buf, len, "%s", e ? e : "cannot mount it");
  if ((r = strstr (buf, "Failed to mount '")) != NULL && (r = strstr (r, "': ")) != NULL) {
    memmove (buf, r + 3, strlen (r + 3) + 1);
    buf[strcspn (buf, "\n")] = '\0';
  }
  np_one_line (buf);
  drop_advice (buf);
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
  const struct winvol_fs *win;
  struct winvol w;
  int r = -1;

  if (fs == NULL)
    return guest_error (im, err, NP_EXIT_RUNTIME, "cannot list filesystems");

  /* winvol.c decides, and words the errors, as for --direct. */
  winvol_init (&w, im->path, want_root);
  for (size_t i = 0; fs[i] && fs[i + 1]; i += 2) {
    const char *partnum = on_my_drive (im, fs[i]);
    struct winvol_fs *v;
    char local[48], why[256];

    if (partnum == NULL)
      continue;
    local_name (partnum, local, sizeof local);
    if ((v = winvol_add (&w, local, fs[i + 1])) == NULL)
      continue;
    im->batch->mounted_by = NULL;
    if (guestfs_umount_all (im->g) == -1 || guestfs_mount_ro (im->g, fs[i], "/") == -1) {
      mount_reason (im, why, sizeof why);
      winvol_unreadable (v, why);
    }
    else
      winvol_look (v, list_names, im);
    guestfs_umount_all (im->g);
  }
  if ((win = winvol_choose (&w, err)) == NULL)
    goto out;
  for (size_t i = 0; fs[i] && fs[i + 1] && im->root == NULL; i += 2) {
    const char *partnum = on_my_drive (im, fs[i]);
    char local[48];

    if (partnum == NULL)
      continue;
    local_name (partnum, local, sizeof local);
    if (strcmp (local, win->dev) == 0 && (im->root = strdup (fs[i])) == NULL) {
      np_error_set (err, NP_EXIT_RUNTIME, "out of memory");
      goto out;
    }
  }
  snprintf (im->root_local, sizeof im->root_local, "%s", win->dev);
  if (ensure_mounted (im, 0, err) == -1)
    goto out;
  im->system_path = strdup (win->hive);
  im->config_dir = strdup (win->hive);
  if (im->system_path == NULL || im->config_dir == NULL) {
    np_error_set (err, NP_EXIT_RUNTIME, "out of memory");
    goto out;
  }
  *strrchr (im->config_dir, '/') = '\0';
  r = 0;

 out:
  winvol_free (&w);
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

/* Set the extended attribute NAME of guest file PATH to the LEN bytes
 * of VAL, and read it back.
 *
 * Not with guestfs_setxattr: its value travels to the appliance as an
 * XDR string, cut at the first NUL byte, which every NTFS security
 * descriptor and attribute word contains (the daemon then passes VALLEN
 * bytes of which only the first arrived: ntfs-3g rejects a descriptor
 * with EINVAL and takes garbage for the rest of an attribute word).
 * The value goes hex-encoded to setfattr inside the appliance instead,
 * through guestfs_debug's "sh" (libguestfs has no binary-safe call
 * that sets an attribute), and what ntfs-3g then returns for it is
 * compared with VAL. */
static int
set_xattr (struct image *im, const char *path, const char *name, const char *val, size_t len,
           struct np_error *err)
{
  static const char hex[] = "0123456789abcdef";
  size_t cap = strlen (name) + 2 * len + 4 * strlen (path) + 64, n = 0, blen = 0;
  char *cmd = malloc (cap), *out, *back;
  int same;

  if (cmd == NULL)
    return np_error_set (err, NP_EXIT_RUNTIME, "out of memory");
  n += (size_t) snprintf (cmd + n, cap - n, "setfattr -n %s -v 0x", name);
  for (size_t i = 0; i < len; i++) {
    cmd[n++] = hex[(unsigned char) val[i] >> 4];
    cmd[n++] = hex[(unsigned char) val[i] & 15];
  }
  /* The daemon sets $root to where the guest's volume is mounted;
   * PATH is single-quoted. */
  n += (size_t) snprintf (cmd + n, cap - n, " -- \"$root\"'");
  for (const char *p = path; *p; p++) {
    if (*p == '\'') {
      memcpy (cmd + n, "'\\''", 4);
      n += 4;
    }
    else
      cmd[n++] = *p;
  }
  cmd[n++] = '\'';
  cmd[n] = '\0';
  out = guestfs_debug (im->g, "sh", (char *[]) { cmd, NULL });
  free (cmd);
  if (out == NULL) {
    char what[128];
    snprintf (what, sizeof what, "cannot set %s", name);
    return path_error (im, path, what, err);
  }
  free (out);
  back = guestfs_getxattr (im->g, path, name, &blen);
  same = back && blen == len && memcmp (back, val, len) == 0;
  free (back);
  if (!same)
    return np_error_set (err, NP_EXIT_RUNTIME, "%s: %s: cannot set %s (it does not read "
                         "back as written)", im->path, path, name);
  return 0;
}

/* Give the new file the original's NTFS security descriptor and
 * attributes (ntfs-3g exposes them as extended attributes). */
static int
copy_ntfs_metadata (struct image *im, const char *from, const char *to, struct np_error *err)
{
  const char *names[] = { "system.ntfs_acl", "system.ntfs_attrib" };

  for (size_t i = 0; i < 2; i++) {
    size_t size;
    char *val = guestfs_getxattr (im->g, from, names[i], &size);
    int r;

    if (val == NULL) {
      char what[64];
      snprintf (what, sizeof what, "cannot read %s", names[i]);
      return path_error (im, from, what, err);
    }
    r = set_xattr (im, to, names[i], val, size, err);
    free (val);
    if (r == -1)
      return -1;
    if (im->verbose)
      esc_line (stderr, "netvsc-patch: %s: %s of %s copied to %s", im->path, names[i],
               from, to);
  }
  return 0;
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
  /* The new file must not keep ntfs-3g's default descriptor (full
   * control for Everyone) in place of the original's. */
  if (guestfs_is_file (im->g, target) == 1 &&
      copy_ntfs_metadata (im, target, tmp, err) == -1)
    goto fail;
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

/* --- other files of the volume (--defer) ------------------------------
 *
 * read_file, write_file and remove_file on any file of the Windows
 * volume, PATH resolved one component at a time with
 * guestfs_case_sensitive_path (which resolves a path whose parent
 * exists), so that missing directories can be told apart and created
 * in the case PATH spells them.
 *
 * write_file works as image_replace does: the content goes to a
 * temporary name beside the target (PATH + TMP_SUFFIX, a stale one is
 * removed first), is synced and read back, takes the NTFS security
 * descriptor and attributes of the file it replaces, and is renamed
 * over it; then sync.  A new file or directory gets the security
 * descriptor Windows would give it, inherited from its directory, not
 * ntfs-3g's default (full control for Everyone: for a startup script
 * run as SYSTEM, a way for any user to run code as SYSTEM).  The
 * computation is the one libntfs-3g does for the direct backend
 * (ntfs_inherited_id), so that both backends write the same descriptor;
 * it runs here on bytes read from the guest, checked first. */

/* The bytes ntfs_inherit_acl may use to inherit from ACL, whose N ACEs
 * (checked) take S bytes: each ACE can give one for access, one for
 * further inheritance and one for its creator owner or group, and the
 * function copies an ACE past its output before deciding to keep it. */
static size_t
inherit_room (const ACL *acl)
{
  size_t s = 0, n = le16_to_cpu (acl->ace_count), off = sizeof (ACL);

  for (size_t i = 0; i < n; i++) {
    size_t sz = le16_to_cpu (((const ACCESS_ALLOWED_ACE *) ((const char *) acl + off))->size);
    s += sz;
    off += sz;
  }
  return sizeof (ACL) + 3 * s + n * (8 + 2 * 68) + 64;
}

/* The security descriptor a new file (directory if FORDIR) gets in a
 * directory whose descriptor is PARENT (PLEN bytes, from the guest):
 * what libntfs-3g's ntfs_inherited_id builds for a process running as
 * root without a user mapping.  The parent's inheritable ACEs (DACL and
 * SACL, by ntfs_inherit_acl, marked inherited if the parent's are auto-
 * inherited), owner and group Administrators.  Returns it (malloc'd,
 * *LEN bytes), or NULL if PARENT is not a descriptor libntfs-3g
 * accepts. */
static char *
inherited_sd (const char *parent, size_t plen, int fordir, size_t *len)
{
  const SECURITY_DESCRIPTOR_RELATIVE *ph = (const SECURITY_DESCRIPTOR_RELATIVE *) parent;
  SECURITY_DESCRIPTOR_RELATIVE *nh;
  size_t room = sizeof *nh + 2 * (size_t) ntfs_sid_size (adminsid), pos;
  const ACL *dacl = NULL, *sacl = NULL;
  char *sd;
  int sz;

  if (plen < sizeof *ph || plen > 65536 || !ntfs_valid_descr (parent, (unsigned) plen))
    return NULL;
  if (ph->dacl) {
    dacl = (const ACL *) (parent + le32_to_cpu (ph->dacl));
    room += inherit_room (dacl);
  }
  if (ph->sacl) {
    sacl = (const ACL *) (parent + le32_to_cpu (ph->sacl));
    room += inherit_room (sacl);
  }
  sd = calloc (1, room);
  if (sd == NULL)
    return NULL;
  nh = (SECURITY_DESCRIPTOR_RELATIVE *) sd;
  nh->revision = SECURITY_DESCRIPTOR_REVISION;
  nh->control = (ph->control & (SE_DACL_AUTO_INHERITED | SE_SACL_AUTO_INHERITED)) |
    SE_SELF_RELATIVE;
  pos = sizeof *nh;
  if (dacl) {
    sz = ntfs_inherit_acl (dacl, (ACL *) (sd + pos), adminsid, adminsid, fordir,
                           ph->control & SE_DACL_AUTO_INHERITED);
    if (sz > 65535)
      goto bad;
    if (sz > 0) {
      nh->dacl = cpu_to_le32 ((u32) pos);
      nh->control |= SE_DACL_PRESENT;
      pos += (size_t) sz;
    }
  }
  if (sacl) {
    sz = ntfs_inherit_acl (sacl, (ACL *) (sd + pos), adminsid, adminsid, fordir,
                           ph->control & SE_SACL_AUTO_INHERITED);
    if (sz > 65535)
      goto bad;
    if (sz > 0) {
      nh->sacl = cpu_to_le32 ((u32) pos);
      nh->control |= SE_SACL_PRESENT;
      pos += (size_t) sz;
    }
  }
  memcpy (sd + pos, adminsid, (size_t) ntfs_sid_size (adminsid));
  nh->owner = cpu_to_le32 ((u32) pos);
  pos += (size_t) ntfs_sid_size (adminsid);
  memcpy (sd + pos, adminsid, (size_t) ntfs_sid_size (adminsid));
  nh->group = cpu_to_le32 ((u32) pos);
  pos += (size_t) ntfs_sid_size (adminsid);
  *len = pos;
  return sd;
 bad:
  free (sd);
  return NULL;
}

/* Give the new file or directory CHILD the descriptor inherited from
 * its directory DIR.  If none can be computed, it keeps ntfs-3g's
 * default, and that is said (as a warning, since it is not an error:
 * an NTFS 1.x volume has no inheritance). */
static int
inherit_security (struct image *im, const char *dir, const char *child, int fordir,
                  struct np_error *err)
{
  size_t plen = 0, len = 0;
  char *parent = guestfs_getxattr (im->g, dir, "system.ntfs_acl", &plen);
  char *sd = parent ? inherited_sd (parent, plen, fordir, &len) : NULL;
  int r = 0;

  if (sd == NULL) {
    if (!im->quiet)
      esc_line (stderr, "netvsc-patch: warning: %s: %s: nothing to inherit from %s: it keeps "
               "ntfs-3g's default security descriptor (full control for Everyone)",
               im->path, child, dir);
  }
  else if (set_xattr (im, child, "system.ntfs_acl", sd, len, err) == -1)
    r = -1;
  else if (im->verbose)
    esc_line (stderr, "netvsc-patch: %s: %s: security descriptor inherited from %s",
             im->path, child, dir);
  free (parent);
  free (sd);
  return r;
}

/* Resolve the directories of PATH (COMPS[0..N-2]) one at a time.
 * Returns 1 and *DIR (the directory as spelt on disk, malloc'd), 0 if
 * one is missing and !CREATE, -1 with *err.  With CREATE the missing
 * ones are made, in the case PATH spells them. */
static int
resolve_dirs (struct image *im, const char *path, char **comps, size_t n, int create,
              char **dir, struct np_error *err)
{
  char *cur = strdup ("");

  *dir = NULL;
  if (cur == NULL)
    return np_error_set (err, NP_EXIT_RUNTIME, "out of memory");
  for (size_t i = 0; i + 1 < n; i++) {
    char *want = NULL, *got;
    int exists, isdir;

    if (asprintf (&want, "%s/%s", cur, comps[i]) == -1) {
      free (cur);
      return np_error_set (err, NP_EXIT_RUNTIME, "out of memory");
    }
    got = guestfs_case_sensitive_path (im->g, want);
    free (want);
    if (got == NULL) {
      free (cur);
      return path_error (im, path, "cannot resolve the path", err);
    }
    exists = guestfs_exists (im->g, got);
    isdir = exists == 1 ? guestfs_is_dir (im->g, got) : 0;
    if (exists == -1 || isdir == -1) {
      free (cur);
      free (got);
      return path_error (im, path, "cannot look at a directory on the way", err);
    }
    if (exists && !isdir) {
      np_error_set (err, NP_EXIT_RUNTIME, "%s: %s: %s is not a directory", im->path, path,
                    got);
      free (cur);
      free (got);
      return -1;
    }
    if (!exists) {
      if (!create) {
        free (cur);
        free (got);
        return 0;
      }
      if (im->verbose)
        esc_line (stderr, "netvsc-patch: %s: create the directory %s", im->path, got);
      if (guestfs_mkdir (im->g, got) == -1) {
        char what[PATH_MAX + 64];
        snprintf (what, sizeof what, "cannot create the directory %s", got);
        path_error (im, path, what, err);
        free (cur);
        free (got);
        return -1;
      }
      if (inherit_security (im, *cur ? cur : "/", got, 1, err) == -1) {
        np_error_context (err, im->path, path);
        free (cur);
        free (got);
        return -1;
      }
    }
    free (cur);
    cur = got;
  }
  if (*cur == '\0') {
    free (cur);
    cur = strdup ("/");
    if (cur == NULL)
      return np_error_set (err, NP_EXIT_RUNTIME, "out of memory");
  }
  *dir = cur;
  return 1;
}

/* Where PATH is, or would be: its directory and itself as spelt on
 * disk (the file's own name as PATH spells it when it does not exist).
 * Returns 1 (*EXISTS says whether the file does), 0 if a directory on
 * the way is missing and !CREATE, -1 with *err.  A PATH that exists
 * but is not a regular file is an error. */
static int
resolve_file (struct image *im, const char *path, int create, char **dir, char **file,
              int *exists, struct np_error *err)
{
  char *buf, **comps, *want = NULL;
  size_t n;
  int r;

  *dir = *file = NULL;
  *exists = 0;
  if (disk_path_split (im->path, path, &buf, &comps, &n, err) == -1)
    return -1;
  r = resolve_dirs (im, path, comps, n, create, dir, err);
  if (r == 1) {
    if (asprintf (&want, "%s/%s", strcmp (*dir, "/") ? *dir : "", comps[n - 1]) == -1) {
      want = NULL;
      r = np_error_set (err, NP_EXIT_RUNTIME, "out of memory");
    }
    else if ((*file = guestfs_case_sensitive_path (im->g, want)) == NULL)
      r = path_error (im, path, "cannot resolve the path", err);
    else if ((*exists = guestfs_exists (im->g, *file)) == -1)
      r = path_error (im, path, "cannot look at it", err);
    else if (*exists && guestfs_is_file (im->g, *file) != 1)
      r = np_error_set (err, NP_EXIT_RUNTIME, "%s: %s: not a regular file%s", im->path, path,
                        guestfs_is_dir (im->g, *file) == 1 ? " (a directory)" : "");
  }
  if (r != 1) {
    free (*dir);
    free (*file);
    *dir = *file = NULL;
  }
  free (want);
  free (comps);
  free (buf);
  return r;
}

static int
image_read_file (struct disk *d, const char *path, char **buf, size_t *len,
                 struct np_error *err)
{
  struct image *im = (struct image *) d;
  char *dir = NULL, *file = NULL, *data;
  size_t n = 0;
  int exists, r;

  *buf = NULL;
  *len = 0;
  if (ensure_mounted (im, 0, err) == -1) {
    np_error_context (err, im->path, path);
    return -1;
  }
  r = resolve_file (im, path, 0, &dir, &file, &exists, err);
  if (r != 1 || !exists) {
    free (dir);
    free (file);
    return r == -1 ? -1 : 1;
  }
  /* Small files: the protocol carries up to a few MB in one message. */
  data = guestfs_read_file (im->g, file, &n);
  if (data == NULL)
    r = path_error (im, path, "cannot read it", err);
  else if ((*buf = malloc (n + 1)) == NULL)
    r = np_error_set (err, NP_EXIT_RUNTIME, "out of memory");
  else {
    memcpy (*buf, data, n);
    (*buf)[n] = '\0';
    *len = n;
    r = 0;
  }
  free (data);
  free (dir);
  free (file);
  return r;
}

static int
image_write_file (struct disk *d, const char *path, const char *buf, size_t len,
                  struct np_error *err)
{
  struct image *im = (struct image *) d;
  char *dir = NULL, *file = NULL, *tmp = NULL, *back = NULL;
  size_t blen = 0;
  int exists, r = -1, written = 0;

  /* A read-only drive has a throwaway overlay: a write would vanish. */
  if (im->readonly)
    return np_error_set (err, NP_EXIT_RUNTIME, "%s: %s: the image was opened read-only",
                         im->path, path);
  /* Refuses a hibernated volume (exit 4) before anything is written. */
  if (ensure_mounted (im, 1, err) == -1) {
    np_error_context (err, im->path, path);
    return -1;
  }
  if (resolve_file (im, path, 1, &dir, &file, &exists, err) != 1)
    goto out;
  if (asprintf (&tmp, "%s%s", file, TMP_SUFFIX) == -1) {
    tmp = NULL;
    np_error_set (err, NP_EXIT_RUNTIME, "out of memory");
    goto out;
  }
  if (im->verbose)
    esc_line (stderr, "netvsc-patch: %s: write %s (%zu bytes) by way of %s", im->path, file,
             len, tmp);
  /* What a killed run left (our name: never anything else's). */
  if (guestfs_rm_f (im->g, tmp) == -1) {
    path_error (im, tmp, "cannot remove a stale temporary file", err);
    goto out;
  }
  written = 1;
  if (guestfs_write (im->g, tmp, buf, len) == -1) {
    path_error (im, tmp, "cannot write", err);
    goto out;
  }
  if (guestfs_sync (im->g) == -1) {
    path_error (im, path, "sync failed", err);
    goto out;
  }
  /* Read back what the guest filesystem holds before trusting it. */
  back = guestfs_read_file (im->g, tmp, &blen);
  if (back == NULL) {
    path_error (im, tmp, "cannot read back the new file", err);
    goto out;
  }
  if (blen != len || memcmp (back, buf, len) != 0) {
    np_error_set (err, NP_EXIT_RUNTIME, "%s: %s does not read back identically; %s left "
                  "unchanged", im->path, tmp, path);
    goto out;
  }
  if (exists) {
    if (copy_ntfs_metadata (im, file, tmp, err) == -1)
      goto out;
  }
  else if (inherit_security (im, dir, tmp, 0, err) == -1)
    goto out;
  if (guestfs_rename (im->g, tmp, file) == -1) {
    path_error (im, path, "cannot rename the new file into place", err);
    goto out;
  }
  written = 0;
  if (guestfs_sync (im->g) == -1) {
    path_error (im, path, "sync failed", err);
    goto out;
  }
  r = 0;

 out:
  /* Leave no stray file in the guest; PATH is untouched. */
  if (written)
    guestfs_rm_f (im->g, tmp);
  if (r == -1)
    np_error_context (err, im->path, path);
  free (back);
  free (tmp);
  free (dir);
  free (file);
  return r;
}

static int
image_remove_file (struct disk *d, const char *path, struct np_error *err)
{
  struct image *im = (struct image *) d;
  char *dir = NULL, *file = NULL;
  int exists, r;

  /* Absent is success, and needs no write (nor a writable volume). */
  if (ensure_mounted (im, 0, err) == -1) {
    np_error_context (err, im->path, path);
    return -1;
  }
  r = resolve_file (im, path, 0, &dir, &file, &exists, err);
  if (r == 1 && exists) {
    r = -1;
    if (im->verbose)
      esc_line (stderr, "netvsc-patch: %s: remove %s", im->path, file);
    if (im->readonly)
      np_error_set (err, NP_EXIT_RUNTIME, "%s: %s: the image was opened read-only", im->path,
                    path);
    else if (ensure_mounted (im, 1, err) == -1)
      np_error_context (err, im->path, path);
    else if (guestfs_rm (im->g, file) == -1)
      path_error (im, path, "cannot remove it", err);
    else if (guestfs_sync (im->g) == -1)
      path_error (im, path, "sync failed", err);
    else
      r = 0;
  }
  free (dir);
  free (file);
  return r == -1 ? -1 : 0;
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
  .read_file = image_read_file,
  .write_file = image_write_file,
  .remove_file = image_remove_file,
  .close = image_close,
  .abort = image_abort,
  .open_batch = image_open_batch,
  .close_batch = image_close_batch,
  .abort_batch = image_abort_batch,
  .max_disks = image_max_disks,
};
