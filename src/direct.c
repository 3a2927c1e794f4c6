/* netvsc-patch: the direct backend.  qemu-nbd serves the image (any
 * format qemu reads, with the format given explicitly, never probed),
 * started by socket activation; libnbd is its client; this process reads
 * the partition table itself and parses NTFS with libntfs-3g through an
 * ntfs_device_operations adapter over the NBD handle.  No appliance: tens of milliseconds instead of seconds, but a
 * hostile filesystem is parsed in this process, so it is for images the
 * user trusts (see the man page).
 *
 * Replacing the hive is the delicate part: see "the swap" below for how
 * it is done with a single MFT record write as the commit point, and why
 * not by renaming a temporary file.
 */

#include "direct-internal.h"
#include "bitlocker.h"
#include "escape.h"
#include "hostfile.h"
#include "regf.h"
#include "uri.h"
#include "winvol.h"

/* direct_fetch's copying buffer */
#define FETCH_CHUNK (1 << 20)

void
direct_trace (const struct direct *d, const char *fmt, ...)
{
  va_list ap;
  char msg[2048];

  /* -v shows the steps unless -q; -x asks for them whatever else */
  if (!d->trace && (!d->verbose || d->quiet))
    return;
  va_start (ap, fmt);
  vsnprintf (msg, sizeof msg, fmt, ap);
  va_end (ap);
  /* guest names and the image's name, escaped (escape.h) */
  esc_line (stderr, "netvsc-patch: %s: %s", d->path, msg);
}

void
direct_warn (const struct direct *d, const char *fmt, ...)
{
  va_list ap;
  char msg[2048];

  if (d->quiet)
    return;
  va_start (ap, fmt);
  vsnprintf (msg, sizeof msg, fmt, ap);
  va_end (ap);
  esc_line (stderr, "netvsc-patch: warning: %s: %s", d->path, msg);
}

int
direct_nbd_failed (const struct direct *d, struct np_error *err, const char *what)
{
  char msg[512];
  const char *e = nbd_get_error ();

  snprintf (msg, sizeof msg, "%s", e ? e : "unknown libnbd error");
  np_one_line (msg);
  return np_error_set (err, NP_EXIT_RUNTIME, "%s: %s: %s", d->path, what, msg);
}

int
direct_ntfs_failed (const struct direct *d, struct np_error *err, const char *what, int e)
{
  return np_error_set (err, NP_EXIT_RUNTIME, "%s: %s: %s", d->path, what, strerror (e));
}

/* --- mounting -------------------------------------------------------- */

/* Mount partition P: read-only, or read-write with ntfs-3g's usual
 * "recover" behaviour (a $LogFile left unclean by a crash is reset, as
 * the appliance's ntfs-3g mount does).  A read-write mount is refused by
 * libntfs-3g, errno EPERM, when Windows is hibernated or its $LogFile
 * says metadata is kept in Windows' cache (Fast Startup). */
static ntfs_volume *
mount_part (struct direct *d, struct part *p, int rw)
{
  struct ntfs_device *dev;
  ntfs_volume *vol;
  char name[PATH_MAX + 40];
  int e;

  d->window.io = d->io;
  d->window.offset = p->offset;
  d->window.size = p->size;
  d->window.writable = !d->readonly;
  snprintf (name, sizeof name, "%s:%s", d->path, p->dev);
  dev = ntfs_device_alloc (name, 0, &d->ops, &d->window);
  if (dev == NULL)
    return NULL;
  vol = ntfs_device_mount (dev, rw ? NTFS_MNT_RECOVER : NTFS_MNT_RDONLY);
  if (vol == NULL) {
    e = errno;
    ntfs_device_free (dev);
    errno = e;
    return NULL;
  }
  return vol;
}

/* Unmount: libntfs-3g writes every dirty inode, then closes the device,
 * which flushes the NBD export (win_close).  -1 with errno if any of
 * that failed: the writes may not be in the image. */
static int
unmount_vol (struct direct *d)
{
  ntfs_volume *vol = d->vol;
  int r;

  if (vol == NULL)
    return 0;
  d->vol = NULL;
  d->rw = 0;
  ntfs_close_secure (vol);
  r = ntfs_umount (vol, FALSE);
  return r;
}

static int
refusal (const struct direct *d, struct np_error *err)
{
  return np_error_set (err, NP_EXIT_UNSAFE,
                       "%s: refused: Windows on %s is hibernated or was stopped with Fast "
                       "Startup; shut the guest down fully (shutdown /s /t 0, or turn Fast "
                       "Startup off) and try again", d->path, d->win->dev);
}

/* Make the Windows volume mounted read-write (unmounting a read-only
 * mount first). */
int
direct_mount_rw (struct direct *d, struct np_error *err)
{
  int e;

  if (d->vol && d->rw)
    return 0;
  if (d->readonly)
    return np_error_set (err, NP_EXIT_RUNTIME, "%s: the image was opened read-only", d->path);
  if (unmount_vol (d) == -1)
    return direct_ntfs_failed (d, err, "cannot unmount the Windows volume", errno);
  d->vol = mount_part (d, d->win, 1);
  if (d->vol) {
    d->rw = 1;
    return 0;
  }
  e = errno;
  /* Windows would overwrite our change (or we its saved state) at the
   * next resume: the same refusal as the appliance backend's. */
  if (ntfs_volume_error (e) == NTFS_VOLUME_HIBERNATED ||
      ntfs_volume_error (e) == NTFS_VOLUME_UNCLEAN_UNMOUNT)
    return refusal (d, err);
  return direct_ntfs_failed (d, err, "cannot mount the Windows volume read-write", e);
}

int
direct_mount_ro (struct direct *d, struct np_error *err)
{
  if (d->vol)
    return 0;
  d->vol = mount_part (d, d->win, 0);
  if (d->vol == NULL)
    return direct_ntfs_failed (d, err, "cannot mount the Windows volume", errno);
  d->rw = 0;
  return 0;
}

/* Unmount (everything written so far reaches the image, flushed) and
 * mount read-write again: what follows reads the image afresh, and a
 * crash from here on finds exactly the state the step left. */
int
direct_commit (struct direct *d, const char *step, struct np_error *err)
{
  direct_trace (d, "direct: %s", step);
  if (unmount_vol (d) == -1)
    return direct_ntfs_failed (d, err, "writing to the Windows volume failed", errno);
  return direct_mount_rw (d, err);
}

/* --- partitions ------------------------------------------------------ */

/* parttable.c's reader: the NBD export. */
static int
read_disk (void *d, void *buf, size_t len, uint64_t offset, struct np_error *err)
{
  return direct_disk_read (d, buf, len, offset, err);
}

/* What filesystem a candidate holds, from its superblock: NTFS is the
 * one that matters; the others only name what was seen in messages, as
 * libguestfs's list would (swap is skipped there, so it is here). */
static int
probe_type (struct direct *d, struct part *p, struct np_error *err)
{
  unsigned char b[4096], bt[512];
  const unsigned char *ext = b + 1024;

  if (direct_disk_read (d, b, p->size < sizeof b ? p->size : sizeof b, p->offset, err) == -1)
    return -1;
  if (p->size < sizeof b)
    memset (b + p->size, 0, sizeof b - p->size);
  if (memcmp (b + 3, "NTFS    ", 8) == 0)
    p->type = "ntfs";
  else if (bitlocker_signature (b, sizeof b))   /* before FAT: To Go looks like one */
    p->type = BITLOCKER_TYPE;
  else if (memcmp (b + 3, "EXFAT   ", 8) == 0)
    p->type = "exfat";
  else if (memcmp (b + 3, "ReFS\0\0\0\0", 8) == 0)
    p->type = "refs";
  else if (memcmp (b + 4086, "SWAPSPACE2", 10) == 0 || memcmp (b + 4086, "SWAP-SPACE", 10) == 0)
    p->type = "swap";
  else if (memcmp (b, "XFSB", 4) == 0)
    p->type = "xfs";
  else if (memcmp (b, "LUKS\xba\xbe", 6) == 0)
    p->type = "crypto_LUKS";
  else if (memcmp (b + 512, "LABELONE", 8) == 0 || memcmp (b, "LABELONE", 8) == 0)
    p->type = "LVM2_member";
  else if (get_le16 (ext + 56) == 0xef53)
    p->type = get_le32 (ext + 0x60) & 0x2c0 ? "ext4" : get_le32 (ext + 0x5c) & 4 ? "ext3" : "ext2";
  else if (b[510] == 0x55 && b[511] == 0xaa &&
           (memcmp (b + 54, "FAT", 3) == 0 || memcmp (b + 82, "FAT32", 5) == 0))
    p->type = "vfat";
  else if (p->size > 65536 + 512) {
    if (direct_disk_read (d, bt, sizeof bt, p->offset + 65536, err) == -1)
      return -1;
    if (memcmp (bt + 64, "_BHRfS_M", 8) == 0)
      p->type = "btrfs";
  }
  return 0;
}

static void direct_abort (struct disk *dk);

static struct disk *
direct_open (const struct disk_request *req, struct np_error *err)
{
  struct direct *d = calloc (1, sizeof *d);
  const char *tmpdir = hostfile_tmpdir ();
  char logname[PATH_MAX], *file = NULL, *prog = NULL, qmsg[768];
  char *argv[16];
  int argc = 0, sock = -1;
  int64_t size, align, max;

  if (d == NULL) {
    np_error_set (err, NP_EXIT_RUNTIME, "out of memory");
    return NULL;
  }
  d->path = req->path;
  d->format = req->format;
  d->readonly = req->readonly;
  d->verbose = req->verbose;
  d->quiet = req->quiet;
  d->trace = req->trace;
  d->blocksize = req->blocksize;
  d->qemu_log = -1;
  nbd_device_ops_init (&d->ops);
  /* libntfs-3g reports through its own logger; our errors are one line
   * built from errno, so it stays quiet unless debugging. */
  ntfs_log_set_handler (d->verbose > 1 ? ntfs_log_handler_stderr : ntfs_log_handler_null);

  /* raw and fixed VHD: the file itself, no qemu-nbd (direct_file.c) */
  d->io.fd = -1;
  switch (direct_file_open (d, req, err)) {
  case 1:
    return (struct disk *) d;
  case -1:
    goto fail;
  }
  d->nbd = nbd_create ();
  if (d->nbd == NULL) {
    direct_nbd_failed (d, err, "cannot create a libnbd handle");
    goto fail;
  }
  if (d->verbose > 1)
    nbd_set_debug (d->nbd, true);
  /* a raw NBD URI: the server's export is the disk (uri.h); any other
   * format is opened by a local qemu-nbd through req->qemu_spec */
  if (uri_looks_like (req->path) && req->qemu_spec == NULL) {
    if (direct_connect_uri (d, err) == -1)
      goto fail;
    goto connected;
  }
  prog = find_in_path ("qemu-nbd");
  if (prog == NULL) {
    np_error_set (err, NP_EXIT_RUNTIME, "%s: qemu-nbd not found (install qemu-utils)", d->path);
    goto fail;
  }
  /* qemu would read "proto:..." or "json:..." in a file name as a
   * protocol or an option string: "./" keeps a relative path a path. */
  if (req->path[0] != '/' && asprintf (&file, "./%s", req->path) == -1)
    file = NULL;
  if (req->path[0] != '/' && file == NULL) {
    np_error_set (err, NP_EXIT_RUNTIME, "out of memory");
    goto fail;
  }
  /* qemu-nbd's stderr: a file with no name (O_TMPFILE), so that not even
   * a SIGKILL at the wrong moment leaves it behind. */
  d->qemu_log = open (tmpdir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (d->qemu_log == -1) {             /* a filesystem without O_TMPFILE */
    snprintf (logname, sizeof logname, "%s/netvsc-patch-nbd.XXXXXX", tmpdir);
    d->qemu_log = mkostemp (logname, O_CLOEXEC);
    if (d->qemu_log >= 0)
      unlink (logname);
  }

  argv[argc++] = "qemu-nbd";
  if (req->qemu_spec == NULL) {
    argv[argc++] = "-f";               /* the format we detected: never probe */
    argv[argc++] = (char *) req->format;
  }
  /* writeback: each write is in the host's page cache (safe if this
   * process dies: qemu-nbd is told to stop and closes the image
   * cleanly); durability comes from explicit NBD flushes at every step
   * of the swap, which qemu turns into fdatasync (qcow2 metadata
   * included).  "none" (O_DIRECT) fails on tmpfs and gains nothing. */
  argv[argc++] = "--cache=writeback";
  /* ntfs-3g never discards through us; and a discard punching holes in
   * a VHD or VMDK is not something a registry edit should do. */
  argv[argc++] = "--discard=ignore";
  if (req->readonly)
    argv[argc++] = "--read-only";      /* also: qemu takes only a shared lock */
  argv[argc++] = "--";
  /* a checked chain: every layer's file and format given (layers.h) */
  argv[argc++] = req->qemu_spec ? (char *) req->qemu_spec : file ? file : (char *) req->path;
  argv[argc] = NULL;

  direct_trace (d, "direct: qemu-nbd -f %s%s %s%s", req->format,
                req->readonly ? " --read-only" : "", req->path,
                req->qemu_spec ? " (every layer given: json:)" : "");
  if (spawn_qemu_nbd (d, prog, argv, &sock) == -1) {
    direct_ntfs_failed (d, err, "cannot start qemu-nbd", errno);
    goto fail;
  }
  if (nbd_connect_socket (d->nbd, sock) == -1) {
    char nmsg[256];
    int status;

    snprintf (nmsg, sizeof nmsg, "%s", nbd_get_error () ? nbd_get_error () : "");
    np_one_line (nmsg);
    status = reap_qemu_nbd (d, 5000);
    qemu_nbd_message (d, qmsg, sizeof qmsg);
    if (strstr (qmsg, "lock"))
      np_error_set (err, NP_EXIT_RUNTIME,
                    "%s: the image is in use by another process (is the VM running?): %s",
                    d->path, qmsg);
    else if (*qmsg)
      np_error_set (err, NP_EXIT_RUNTIME, "%s: qemu-nbd cannot serve the image as %s: %s",
                    d->path, req->format, qmsg);
    else if (status != -1 && WIFEXITED (status) && WEXITSTATUS (status) == 127)
      np_error_set (err, NP_EXIT_RUNTIME, "%s: cannot run %s", d->path, prog);
    else
      np_error_set (err, NP_EXIT_RUNTIME, "%s: qemu-nbd cannot serve the image as %s: %s",
                    d->path, req->format, nmsg);
    goto fail;
  }
 connected:
  size = nbd_get_size (d->nbd);
  if (size < 0) {
    direct_nbd_failed (d, err, "cannot get the size of the image");
    goto fail;
  }
  d->disk_size = (uint64_t) size;
  d->io.nbd = d->nbd;
  align = nbd_get_block_size (d->nbd, LIBNBD_SIZE_MINIMUM);
  d->io.align = align > 0 ? (uint32_t) align : 1;
  /* a remote server may take less than our usual 4 MiB a request */
  max = nbd_get_block_size (d->nbd, LIBNBD_SIZE_MAXIMUM);
  if (max >= d->io.align && max < NBD_CHUNK)
    d->io.max = (uint32_t) (max - max % d->io.align);
  if (align > 65536 || (d->io.align & (d->io.align - 1))) {
    np_error_set (err, NP_EXIT_RUNTIME, "%s: qemu-nbd wants %lld-byte blocks", d->path,
                  (long long) align);
    goto fail;
  }
  if (!req->readonly && (nbd_is_read_only (d->nbd) == 1 || nbd_can_flush (d->nbd) != 1)) {
    np_error_set (err, NP_EXIT_RUNTIME, "%s: %s serves the image read-only or without "
                  "flush; nothing was written", d->path,
                  d->remote ? "the NBD server" : "qemu-nbd");
    goto fail;
  }
  free (file);
  free (prog);
  return (struct disk *) d;

 fail:
  free (file);
  free (prog);
  direct_abort ((struct disk *) d);
  return NULL;
}

/* --- directories ------------------------------------------------------ */

/* A directory entry (its long name; DOS 8.3 aliases are skipped). */
struct dent {
  ntfschar *name;              /* as on disk (malloc'd) */
  int len;
  MFT_REF mref;
  unsigned dt;                 /* NTFS_DT_* */
};

struct dents {
  struct dent *v;
  size_t n, cap;
};

static void
dents_free (struct dents *l)
{
  for (size_t i = 0; i < l->n; i++)
    free (l->v[i].name);
  free (l->v);
  memset (l, 0, sizeof *l);
}

static int
dents_add (struct dents *l, const ntfschar *name, int len, MFT_REF mref, unsigned dt)
{
  struct dent *e;

  if (l->n == l->cap) {
    size_t cap = l->cap ? 2 * l->cap : 4;
    struct dent *v = realloc (l->v, cap * sizeof *v);
    if (v == NULL)
      return -1;
    l->v = v;
    l->cap = cap;
  }
  e = &l->v[l->n];
  e->name = malloc ((size_t) len * sizeof (ntfschar) + 1);
  if (e->name == NULL)
    return -1;
  memcpy (e->name, name, (size_t) len * sizeof (ntfschar));
  e->len = len;
  e->mref = mref;
  e->dt = dt;
  l->n++;
  return 0;
}

struct scan {
  ntfs_volume *vol;
  const ntfschar *want;        /* entries equal to this ignoring case */
  int want_len;
  struct dents *hits;
};

static int
scan_entry (void *arg, const ntfschar *name, const int len, const int type,
            const s64 pos, const MFT_REF mref, const unsigned dt)
{
  struct scan *s = arg;
  ntfs_volume *vol = s->vol;

  (void) pos;
  if (type == FILE_NAME_DOS)           /* the 8.3 alias of a name listed too */
    return 0;
  if (ntfs_names_are_equal (name, (size_t) len, s->want, (size_t) s->want_len, IGNORE_CASE,
                            vol->upcase, vol->upcase_len))
    return dents_add (s->hits, name, len, mref, dt);
  return 0;
}

/* Every entry of directory DIR whose name equals WANT ignoring case, in
 * index order.  A whole readdir rather than the index lookup: NTFS may
 * hold names that differ only in case, and we must see all of them.
 * -1 with errno. */
static int
scan_dir (ntfs_volume *vol, MFT_REF dir, const ntfschar *want, int want_len,
          struct dents *hits)
{
  struct scan s = { vol, want, want_len, hits };
  ntfs_inode *ni = ntfs_inode_open (vol, dir);
  s64 pos = 0;
  int r, e;

  if (ni == NULL)
    return -1;
  r = ntfs_readdir (ni, &pos, &s, scan_entry);
  e = errno;
  ntfs_inode_close (ni);
  errno = e;
  return r;
}

static int
same_name (const ntfschar *a, int alen, const ntfschar *b, int blen)
{
  return alen == blen && memcmp (a, b, (size_t) alen * sizeof (ntfschar)) == 0;
}

/* The entry a lookup of WANT resolves to: the exact spelling if present,
 * else the first one ntfs_readdir listed that differs only in case. */
static const struct dent *
pick (const struct dents *hits, const ntfschar *want, int want_len)
{
  for (size_t i = 0; i < hits->n; i++)
    if (same_name (hits->v[i].name, hits->v[i].len, want, want_len))
      return &hits->v[i];
  return hits->n ? &hits->v[0] : NULL;
}

static char *
to_mbs (const ntfschar *name, int len)
{
  char *s = NULL;

  if (ntfs_ucstombs (name, len, &s, 0) < 0)
    return NULL;
  return s;
}

/* Look NAME up in directory DIR (case-insensitively, exact spelling
 * preferred).  Returns 1 and fills *MREF, *DT and *SPELT (malloc'd, may
 * be NULL), 0 if absent, -1 with errno. */
int
direct_lookup (ntfs_volume *vol, MFT_REF dir, const char *name, MFT_REF *mref, unsigned *dt,
        char **spelt)
{
  ntfschar *uname = NULL;
  int ulen = ntfs_mbstoucs (name, &uname);
  struct dents hits = { 0 };
  const struct dent *e;
  int r = 0;

  if (ulen <= 0)
    return -1;
  if (scan_dir (vol, dir, uname, ulen, &hits) == -1) {
    r = -1;
    goto out;
  }
  e = pick (&hits, uname, ulen);
  if (e) {
    *mref = e->mref;
    *dt = e->dt;
    if (spelt)
      *spelt = to_mbs (e->name, e->len);
    r = 1;
  }
 out:
  dents_free (&hits);
  free (uname);
  return r;
}

/* The directory PATH of VOL ('/'-separated, as spelt on disk: a path
 * winvol.c built from our listings, so each component's exact spelling
 * is there and lookup takes it).  1 and *MREF, 0 if it is not there (or
 * not a directory), -1 with errno. */
static int
resolve_dir (ntfs_volume *vol, const char *path, MFT_REF *mref)
{
  char *buf = strdup (path), *save = NULL;
  MFT_REF dir = FILE_root;
  int r = 1;

  if (buf == NULL)
    return -1;
  for (char *c = strtok_r (buf, "/", &save); c && r == 1; c = strtok_r (NULL, "/", &save)) {
    unsigned dt;
    r = direct_lookup (vol, dir, c, &dir, &dt, NULL);
    if (r == 1 && dt != NTFS_DT_DIR)
      r = 0;
  }
  free (buf);
  if (r == 1)
    *mref = dir;
  return r;
}

/* For winvol_look, on the mounted volume CTX: the entries of DIR whose
 * name equals NAME ignoring case (the volume's $UpCase), 8.3 aliases
 * left out. */
static int
list_names (void *ctx, const char *dir, const char *name, struct winvol_name **out,
            size_t *n, char *why, size_t len)
{
  ntfs_volume *vol = ctx;
  struct winvol_name *v = NULL;
  struct dents hits = { 0 };
  ntfschar *uname = NULL;
  MFT_REF ref;
  int ulen, r, e = 0;

  *out = NULL;
  *n = 0;
  r = resolve_dir (vol, dir, &ref);
  if (r != 1) {
    snprintf (why, len, "%s: %s", dir, r == 0 ? "no longer there" : strerror (errno));
    return -1;
  }
  errno = 0;
  if ((ulen = ntfs_mbstoucs (name, &uname)) <= 0 || scan_dir (vol, ref, uname, ulen, &hits) == -1)
    e = errno ? errno : EIO;
  else if (hits.n && (v = calloc (hits.n, sizeof *v)) == NULL)
    e = ENOMEM;
  for (size_t i = 0; e == 0 && i < hits.n; i++) {
    unsigned dt = hits.v[i].dt;
    if ((v[i].name = to_mbs (hits.v[i].name, hits.v[i].len)) == NULL)
      e = errno ? errno : EILSEQ;
    v[i].kind = dt == NTFS_DT_DIR ? WINVOL_DIR : dt == NTFS_DT_REG ? WINVOL_FILE : WINVOL_OTHER;
  }
  free (uname);
  if (e) {
    for (size_t i = 0; v && i < hits.n; i++)
      free (v[i].name);
    free (v);
    dents_free (&hits);
    snprintf (why, len, "%s: %s", dir, strerror (e));
    return -1;
  }
  *out = v;
  *n = hits.n;
  dents_free (&hits);
  return 0;
}

/* --- the Windows volume --------------------------------------------- */

static int
direct_find_windows (struct disk *dk, const char *want_root, struct np_error *err)
{
  struct direct *d = (struct direct *) dk;
  const struct winvol_fs *win;
  struct winvol w;
  int r = -1;

  if (parttable_read_sector (read_disk, d, d->disk_size, d->blocksize, d->parts, MAX_PARTS,
                             &d->n_parts, err) == -1)
    return -1;
  /* winvol.c decides, and words the errors, as for the appliance. */
  winvol_init (&w, d->path, want_root);
  for (size_t i = 0; i < d->n_parts; i++) {
    struct part *p = &d->parts[i];
    struct winvol_fs *v;
    ntfs_volume *vol;

    if (probe_type (d, p, err) == -1)
      goto out;
    if ((v = winvol_add (&w, p->dev, p->type)) == NULL)
      continue;
    vol = mount_part (d, p, 0);
    if (vol == NULL) {
      int e = errno;
      direct_trace (d, "direct: %s: cannot mount: %s", p->dev, strerror (e));
      winvol_unreadable (v, strerror (e));
      continue;
    }
    winvol_look (v, list_names, vol);
    ntfs_close_secure (vol);
    ntfs_umount (vol, FALSE);
  }
  if ((win = winvol_choose (&w, err)) == NULL)
    goto out;
  for (size_t i = 0; i < d->n_parts && d->win == NULL; i++)
    if (strcmp (d->parts[i].dev, win->dev) == 0)
      d->win = &d->parts[i];
  if (direct_mount_ro (d, err) == -1)
    goto out;
  d->hive_path = strdup (win->hive);
  d->config_dir = strdup (win->hive);
  if (d->hive_path == NULL || d->config_dir == NULL) {
    np_error_set (err, NP_EXIT_RUNTIME, "out of memory");
    goto out;
  }
  *strrchr (d->config_dir, '/') = '\0';
  if (resolve_dir (d->vol, d->config_dir, &d->config) != 1) {
    direct_ntfs_failed (d, err, "cannot find the hive's directory again", errno ? errno : ENOENT);
    goto out;
  }
  direct_trace (d, "direct: Windows on %s (offset %llu, %llu bytes)", d->win->dev,
         (unsigned long long) d->win->offset, (unsigned long long) d->win->size);
  r = 0;
 out:
  winvol_free (&w);
  return r;
}

static const char *
direct_root (struct disk *dk)
{
  return ((struct direct *) dk)->win->dev;
}

static const char *
direct_hive_path (struct disk *dk)
{
  return ((struct direct *) dk)->hive_path;
}

static int
direct_exists (struct disk *dk, const char *name)
{
  struct direct *d = (struct direct *) dk;
  MFT_REF mref;
  unsigned dt;

  if (d->vol == NULL && direct_mount_ro (d, &(struct np_error) { 0, "" }) == -1)
    return 0;
  return direct_lookup (d->vol, d->config, name, &mref, &dt, NULL) == 1 && dt == NTFS_DT_REG;
}

/* The unnamed $DATA of inode MREF, in memory.  -1 with errno. */
int
direct_read_data (ntfs_volume *vol, MFT_REF mref, size_t max, char **buf, size_t *len)
{
  ntfs_inode *ni = ntfs_inode_open (vol, mref);
  ntfs_attr *na = NULL;
  s64 size, done = 0;
  int e = 0;

  *buf = NULL;
  if (ni == NULL)
    return -1;
  na = ntfs_attr_open (ni, AT_DATA, AT_UNNAMED, 0);
  if (na == NULL) {
    e = errno;
    goto out;
  }
  size = na->data_size;
  if ((uint64_t) size > max) {
    e = EFBIG;
    goto out;
  }
  *buf = malloc (size > 0 ? (size_t) size : 1);
  if (*buf == NULL) {
    e = ENOMEM;
    goto out;
  }
  while (done < size) {
    s64 n = ntfs_attr_pread (na, done, size - done > (16 << 20) ? (16 << 20) : size - done,
                             *buf + done);
    if (n <= 0) {
      e = n < 0 ? errno : EIO;
      goto out;
    }
    done += n;
  }
  *len = (size_t) size;
 out:
  if (na)
    ntfs_attr_close (na);
  ntfs_inode_close (ni);
  if (e) {
    free (*buf);
    *buf = NULL;
    errno = e;
    return -1;
  }
  return 0;
}

static int
direct_fetch (struct disk *dk, const char *name, const char *local, struct np_error *err)
{
  struct direct *d = (struct direct *) dk;
  ntfs_inode *ni = NULL;
  ntfs_attr *na = NULL;
  MFT_REF mref;
  unsigned dt;
  char *buf = NULL;
  s64 size, done = 0;
  int fd = -1, r, e = 0, local_err = 0;

  if (direct_mount_ro (d, err) == -1)
    return -1;
  r = direct_lookup (d->vol, d->config, name, &mref, &dt, NULL);
  if (r == -1)
    return direct_ntfs_failed (d, err, "cannot read the hive's directory", errno);
  if (r == 0 || dt != NTFS_DT_REG)
    return np_error_set (err, NP_EXIT_RUNTIME, "%s: %s/%s does not exist",
                         d->path, d->config_dir, name);
  /* Copied a chunk at a time: no whole copy of the hive in memory. */
  if ((ni = ntfs_inode_open (d->vol, mref)) == NULL ||
      (na = ntfs_attr_open (ni, AT_DATA, AT_UNNAMED, 0)) == NULL) {
    e = errno;
    goto out;
  }
  if ((uint64_t) na->data_size > REGF_MAX_FILE) {
    r = np_error_set (err, NP_EXIT_RUNTIME, "%s: %s/%s is %lld bytes, more than a registry "
                      "file can be (2 GB): not copied out", d->path, d->config_dir, name,
                      (long long) na->data_size);
    ntfs_attr_close (na);
    ntfs_inode_close (ni);
    return r;
  }
  if ((buf = malloc (FETCH_CHUNK)) == NULL) {
    e = ENOMEM;
    goto out;
  }
  fd = open (local, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd == -1) {
    e = errno;
    local_err = 1;
    goto out;
  }
  size = na->data_size;
  while (done < size) {
    s64 n = ntfs_attr_pread (na, done, size - done > FETCH_CHUNK ? FETCH_CHUNK : size - done,
                             buf);
    if (n <= 0) {
      e = n < 0 ? errno : EIO;
      goto out;
    }
    for (s64 w = 0; w < n;) {
      ssize_t k = write (fd, buf + w, (size_t) (n - w));
      if (k <= 0) {
        e = k < 0 ? errno : EIO;
        local_err = 1;
        goto out;
      }
      w += k;
    }
    done += n;
  }
 out:
  free (buf);
  if (na)
    ntfs_attr_close (na);
  if (ni)
    ntfs_inode_close (ni);
  if (fd >= 0 && close (fd) == -1 && e == 0) {
    e = errno;
    local_err = 1;
  }
  if (e && local_err)
    return np_error_set (err, NP_EXIT_RUNTIME, "%s: %s", local, strerror (e));
  if (e)
    return np_error_set (err, NP_EXIT_RUNTIME, "%s: cannot read %s/%s: %s",
                         d->path, d->config_dir, name, strerror (e));
  return 0;
}

/* --- teardown ------------------------------------------------------- */

static void
direct_free (struct direct *d)
{
  if (d->qemu_log >= 0)
    close (d->qemu_log);
  free (d->config_dir);
  free (d->hive_path);
  free (d);
}

static int
direct_close (struct disk *dk, struct np_error *err)
{
  struct direct *d = (struct direct *) dk;
  char qmsg[768];
  int r = 0, status;

  if (unmount_vol (d) == -1)
    r = direct_ntfs_failed (d, err, "cannot unmount the Windows volume; writes may not be on disk",
                     errno);
  if (d->nbd == NULL) {                /* the image file itself */
    if (direct_file_close (d, r == 0 ? err : &(struct np_error) { 0, "" }) == -1)
      r = -1;
    direct_free (d);
    return r;
  }
  /* Everything is flushed at each unmount already; one more flush makes
   * "close succeeded" mean "in the image file" whatever happened before. */
  if (!d->readonly && nbd_flush (d->nbd, 0) == -1 && r == 0)
    r = direct_nbd_failed (d, err, "flushing the image failed; writes may not be on disk");
  if (nbd_shutdown (d->nbd, 0) == -1 && r == 0)
    r = direct_nbd_failed (d, err, d->remote ? "the NBD connection did not shut down cleanly; "
                           "writes may not be on disk" : "qemu-nbd did not shut down cleanly; "
                           "writes may not be on disk");
  nbd_close (d->nbd);
  d->nbd = NULL;
  /* qemu-nbd exits once the client is gone, closing the image (and
   * releasing qemu's lock on it) first. */
  status = d->remote ? 0 : reap_qemu_nbd (d, 30000);
  if (r == 0 && (status == -1 || !WIFEXITED (status) || WEXITSTATUS (status) != 0)) {
    qemu_nbd_message (d, qmsg, sizeof qmsg);
    r = np_error_set (err, NP_EXIT_RUNTIME, "%s: qemu-nbd did not exit cleanly (%s%d)%s%s; "
                      "writes may not be on disk", d->path,
                      status != -1 && WIFSIGNALED (status) ? "signal " : "status ",
                      status == -1 ? -1 : WIFSIGNALED (status) ? WTERMSIG (status)
                      : WEXITSTATUS (status), *qmsg ? ": " : "", qmsg);
  }
  direct_free (d);
  return r;
}

static void
direct_abort (struct disk *dk)
{
  struct direct *d = (struct direct *) dk;

  if (d == NULL)
    return;
  if (d->vol) {
    ntfs_close_secure (d->vol);
    ntfs_umount (d->vol, TRUE);
  }
  if (d->nbd)
    nbd_close (d->nbd);
  if (d->io.fd >= 0)
    close (d->io.fd);
  if (d->child > 0)
    reap_qemu_nbd (d, 2000);           /* it goes when the socket closes */
  direct_free (d);
}

const struct disk_backend direct_backend = {
  .name = "direct",
  .open = direct_open,
  .find_windows = direct_find_windows,
  .root = direct_root,
  .hive_path = direct_hive_path,
  .exists = direct_exists,
  .fetch = direct_fetch,
  .replace = direct_replace,
  .read_file = direct_read_file,
  .write_file = direct_write_file,
  .remove_file = direct_remove_file,
  .close = direct_close,
  .abort = direct_abort,
};
