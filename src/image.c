/* netvsc-patch: the appliance backend.  The image is opened by
 * libguestfs, whose appliance (a small VM) parses the guest's
 * filesystems, so a hostile image cannot reach the host's kernel or this
 * process through NTFS.
 *
 * This file: launching the appliance (watched, with the TCG retry),
 * batches of drives in one appliance, the Windows volume, fetch,
 * mounting, and the checked shutdown.  Replacing SYSTEM is in
 * image_replace.c, --defer's file calls in image_files.c;
 * include/image-internal.h is what they share. */

#include "image-internal.h"
#include "bitlocker.h"
#include "escape.h"
#include "interrupt.h"
#include "launchwatch.h"
#include "regf.h"
#include "uri.h"
#include "winvol.h"

/* Keep error lines short: drop libguestfs's debugging advice. */
static void
drop_advice (char *msg)
{
  char *advice = strstr (msg, " This usually means");
  if (advice)
    *advice = '\0';
}

int
image_guest_error (struct image *im, struct np_error *err, int code, const char *what)
{
  const char *e = guestfs_last_error (im->g);
  int r = np_error_set (err, code, "%s: %s: %s", im->path, what,
                        e ? e : "unknown libguestfs error");
  drop_advice (err->msg);
  return r;
}

/* A libguestfs failure about guest PATH. */
int
image_path_error (struct image *im, const char *path, const char *what, struct np_error *err)
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
  /* -x: every libguestfs call and its result, as the virt tools' -x */
  if (b->trace)
    guestfs_set_trace (g, 1);
  if (force_tcg) {
    char *settings[] = { "force_tcg", NULL };
    if (guestfs_set_backend_settings (g, settings) == -1) {
      guestfs_close (g);
      return NULL;
    }
  }
  return g;
}

/* A host file, or a remote image (uri.h) as libguestfs's protocol,
 * server, user name and export name or path: what guestfish -a URI
 * passes. */
static int
add_drive (guestfs_h *g, const struct disk_request *req, unsigned blocksize)
{
  struct guestfs_add_drive_opts_argv a = { 0 };
  struct image_uri *u;
  struct np_error err;
  char *server[2] = { NULL, NULL };
  int r;

  a.bitmask = GUESTFS_ADD_DRIVE_OPTS_FORMAT_BITMASK | GUESTFS_ADD_DRIVE_OPTS_READONLY_BITMASK;
  a.format = req->format;
  a.readonly = req->readonly;
  /* a 4K-sector disk: its kernel reads the GPT at 4096, as --direct does */
  if (blocksize != 0) {
    a.bitmask |= GUESTFS_ADD_DRIVE_OPTS_BLOCKSIZE_BITMASK;
    a.blocksize = (int) blocksize;
  }
  if (!uri_looks_like (req->path))
    return guestfs_add_drive_opts_argv (g, req->path, &a);
  if ((u = malloc (sizeof *u)) == NULL || uri_parse (req->path, u, &err) == -1) {
    /* checked before (job.c): only out of memory gets here */
    free (u);
    return -1;
  }
  server[0] = u->server;
  a.bitmask |= GUESTFS_ADD_DRIVE_OPTS_PROTOCOL_BITMASK | GUESTFS_ADD_DRIVE_OPTS_SERVER_BITMASK;
  a.protocol = u->protocol;
  a.server = server;
  if (u->username[0]) {
    a.bitmask |= GUESTFS_ADD_DRIVE_OPTS_USERNAME_BITMASK;
    a.username = u->username;
  }
  r = guestfs_add_drive_opts_argv (g, u->path, &a);
  free (u);
  return r;
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
    if (add_drive (b->g, &reqs[i], b->blocksizes[i]) == -1)
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
  if (b == NULL || (b->images = calloc (n, sizeof *b->images)) == NULL ||
      (b->blocksizes = calloc (n, sizeof *b->blocksizes)) == NULL) {
    if (b)
      free (b->images);
    free (b);
    for (size_t i = 0; i < n; i++)
      np_error_set (&errs[i], NP_EXIT_RUNTIME, "out of memory");
    return NULL;
  }
  b->verbose = reqs[0].verbose;
  b->trace = reqs[0].trace;
  b->quiet = reqs[0].quiet;
  bound = reqs[0].launch_timeout == 0 ? LAUNCH_TIMEOUT_DEFAULT
          : reqs[0].launch_timeout < 0 ? 0 : reqs[0].launch_timeout;
  /* The user's settings are used as they are; else KVM is skipped once
   * this run has seen it fail. */
  tcg = user_settings == NULL && launch_kvm_unusable ();
  if (tcg && b->verbose && !b->quiet)
    fprintf (stderr, "netvsc-patch: %s: KVM did not work earlier in this run: software "
             "emulation\n", reqs[0].path);
  /* --blocksize, else what the partition table says (a failure here is
   * the launch's to report) */
  for (size_t i = 0; i < n; i++) {
    struct np_error e;
    unsigned bs = reqs[i].blocksize;
    if (bs == 0 && disk_sector_size (&reqs[i], &bs, &e) == 0 && bs != 512)
      b->blocksizes[i] = bs;
    else if (reqs[i].blocksize)
      b->blocksizes[i] = reqs[i].blocksize;
    if (b->verbose && !b->quiet && b->blocksizes[i])
      esc_line (stderr, "netvsc-patch: %s: %u-byte sectors%s", reqs[i].path,
                b->blocksizes[i], reqs[i].blocksize ? "" : " (its GPT is at 4096)");
  }

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
    im->keys = reqs[i].keys;
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
  free (b->blocksizes);
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
    free (b->blocksizes);
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
    /* blkid wants more than the signature (its jump, a metadata block):
     * --direct's rule too, so that both backends name the same volumes */
    if (type && *type == '\0' && image_crypt_is_bitlocker (im, candidates[i])) {
      free (type);
      type = strdup (BITLOCKER_TYPE);
    }
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
    return image_guest_error (im, err, NP_EXIT_RUNTIME, "cannot list filesystems");

  /* winvol.c decides, and words the errors, as for --direct. */
  winvol_init (&w, im->path, want_root);
  w.can_decrypt = 1;
  for (size_t i = 0; fs[i] && fs[i + 1]; i += 2) {
    const char *partnum = on_my_drive (im, fs[i]), *dev = fs[i];
    struct winvol_fs *v;
    char local[48], why[256];

    if (partnum == NULL)
      continue;
    local_name (partnum, local, sizeof local);
    if (strcmp (fs[i + 1], BITLOCKER_TYPE) == 0) {
      /* opened with a key given, it is the filesystem inside */
      char *inner;
      int r = image_crypt_open (im, fs[i], local, &dev, why, sizeof why);
      if (r != 0) {
        winvol_add_encrypted (&w, local, r == -1 ? why : NULL);
        continue;
      }
      inner = guestfs_vfs_type (im->g, dev);
      v = winvol_add (&w, local, inner);
      free (inner);
      if (v == NULL)
        continue;
    }
    else if ((v = winvol_add (&w, local, fs[i + 1])) == NULL)
      continue;
    im->batch->mounted_by = NULL;
    if (guestfs_umount_all (im->g) == -1 || guestfs_mount_ro (im->g, dev, "/") == -1) {
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
    if (strcmp (local, win->dev) == 0 &&
        (im->root = strdup (image_crypt_mapped (im, local) ? image_crypt_mapped (im, local)
                            : fs[i])) == NULL) {
      np_error_set (err, NP_EXIT_RUNTIME, "out of memory");
      goto out;
    }
  }
  snprintf (im->root_local, sizeof im->root_local, "%s", win->dev);
  if (image_ensure_mounted (im, 0, err) == -1)
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
char *
image_config_file (struct image *im, const char *name)
{
  char *p, *q;
  struct np_error ignored;

  if (image_ensure_mounted (im, 0, &ignored) == -1)
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
  char *p = image_config_file ((struct image *) d, name);
  free (p);
  return p != NULL;
}

static int
image_fetch (struct disk *d, const char *name, const char *local, struct np_error *err)
{
  struct image *im = (struct image *) d;
  char *p = image_config_file (im, name);
  int64_t size;
  int r = 0;

  if (p == NULL)
    return np_error_set (err, NP_EXIT_RUNTIME, "%s: %s/%s does not exist",
                         im->path, im->config_dir, name);
  size = guestfs_filesize (im->g, p);

  if (size == -1)
    r = image_guest_error (im, err, NP_EXIT_RUNTIME, "cannot copy a file out of the guest");
  else if ((uint64_t) size > REGF_MAX_FILE)
    r = np_error_set (err, NP_EXIT_RUNTIME, "%s: %s/%s is %lld bytes, more than a registry "
                      "file can be (2 GB): not copied out", im->path, im->config_dir, name,
                      (long long) size);
  else if (guestfs_download (im->g, p, local) == -1)
    r = image_guest_error (im, err, NP_EXIT_RUNTIME, "cannot copy a file out of the guest");
  free (p);
  return r;
}

/* --- mounting ------------------------------------------------------- */

int
image_ensure_mounted (struct image *im, int rw, struct np_error *err)
{
  struct disk_batch *b = im->batch;
  const char *e;

  if (b->mounted_by == im && (b->mounted_rw || !rw))
    return 0;
  b->mounted_by = NULL;
  if (guestfs_umount_all (im->g) == -1)
    return image_guest_error (im, err, NP_EXIT_RUNTIME, "cannot unmount");
  if (!rw) {
    if (guestfs_mount_ro (im->g, im->root, "/") == -1)
      return image_guest_error (im, err, NP_EXIT_RUNTIME, "cannot mount the Windows volume");
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
  return image_guest_error (im, err, NP_EXIT_RUNTIME, "cannot mount the Windows volume read-write");
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
  image_crypt_close (im);
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
  free (b->blocksizes);
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
