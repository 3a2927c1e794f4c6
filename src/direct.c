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

#include "disk.h"
#include "winvol.h"

/* Largest single NBD request we send: well under qemu-nbd's 32 MiB. */
#define NBD_CHUNK (4u << 20)

#define MAX_PARTS 128
#define SECTOR 512u

/* A filesystem candidate: a partition, or the whole disk. */
struct part {
  char dev[32];                /* "/dev/sda2", as libguestfs names it */
  uint64_t offset, size;       /* bytes */
  const char *type;            /* "ntfs", "vfat", ... NULL: unknown */
};

/* The NBD export, and the alignment its server asks for. */
struct nbd_io {
  struct nbd_handle *nbd;
  uint32_t align;              /* power of two, >= 1 */
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
  struct nbd_handle *nbd;
  struct nbd_io io;            /* nbd with its alignment */
  pid_t child;                 /* qemu-nbd */
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

static void
trace (const struct direct *d, const char *fmt, ...)
  __attribute__((format (printf, 2, 3)));

static void
trace (const struct direct *d, const char *fmt, ...)
{
  va_list ap;

  if (!d->verbose || d->quiet)
    return;
  fprintf (stderr, "netvsc-patch: %s: ", d->path);
  va_start (ap, fmt);
  vfprintf (stderr, fmt, ap);
  va_end (ap);
  fputc ('\n', stderr);
}

static void
warn (const struct direct *d, const char *fmt, ...)
  __attribute__((format (printf, 2, 3)));

static void
warn (const struct direct *d, const char *fmt, ...)
{
  va_list ap;

  if (d->quiet)
    return;
  fprintf (stderr, "netvsc-patch: warning: %s: ", d->path);
  va_start (ap, fmt);
  vfprintf (stderr, fmt, ap);
  va_end (ap);
  fputc ('\n', stderr);
}

static int
nbd_failed (const struct direct *d, struct np_error *err, const char *what)
{
  char msg[512];
  const char *e = nbd_get_error ();

  snprintf (msg, sizeof msg, "%s", e ? e : "unknown libnbd error");
  np_one_line (msg);
  return np_error_set (err, NP_EXIT_RUNTIME, "%s: %s: %s", d->path, what, msg);
}

static int
ntfs_failed (const struct direct *d, struct np_error *err, const char *what, int e)
{
  return np_error_set (err, NP_EXIT_RUNTIME, "%s: %s: %s", d->path, what, strerror (e));
}

static uint16_t get16 (const unsigned char *p) { return (uint16_t) (p[0] | p[1] << 8); }
static uint32_t get32 (const unsigned char *p) { return get16 (p) | (uint32_t) get16 (p + 2) << 16; }
static uint64_t get64 (const unsigned char *p) { return get32 (p) | (uint64_t) get32 (p + 4) << 32; }

/* --- NBD access ------------------------------------------------------ *
 *
 * An NBD server may advertise a minimum block size (qemu-nbd does for
 * VHDX: 512) and libnbd then rejects requests not aligned to it, while
 * ntfs-3g reads and writes a few bytes at a time (bitmaps).  Unaligned
 * ends go through a bounce block: read, or read-modify-write (one
 * process owns the export, so that is not a race). */

static int
nbd_io (const struct nbd_io *io, int write, void *buf, uint64_t count, uint64_t offset)
{
  unsigned char bounce[65536];

  while (count > 0) {
    uint64_t skew = offset % io->align, n;
    int r;

    if (skew == 0 && count >= io->align) {
      n = count > NBD_CHUNK ? NBD_CHUNK : count - count % io->align;
      r = write ? nbd_pwrite (io->nbd, buf, n, offset, 0) : nbd_pread (io->nbd, buf, n, offset, 0);
    }
    else {
      n = io->align - skew < count ? io->align - skew : count;
      r = nbd_pread (io->nbd, bounce, io->align, offset - skew, 0);
      if (r == 0 && write) {
        memcpy (bounce + skew, buf, n);
        r = nbd_pwrite (io->nbd, bounce, io->align, offset - skew, 0);
      }
      else if (r == 0)
        memcpy (buf, bounce + skew, n);
    }
    if (r == -1)
      return -1;
    buf = (char *) buf + n;
    offset += n;
    count -= n;
  }
  return 0;
}

static int
nbd_read_chunked (const struct nbd_io *io, void *buf, uint64_t count, uint64_t offset)
{
  return nbd_io (io, 0, buf, count, offset);
}

/* Read LEN bytes at OFFSET of the disk; past its end reads zeros. */
static int
disk_read (struct direct *d, void *buf, size_t len, uint64_t offset, struct np_error *err)
{
  size_t n = len;

  memset (buf, 0, len);
  if (offset >= d->disk_size)
    return 0;
  if (offset + n > d->disk_size)
    n = d->disk_size - offset;
  if (nbd_read_chunked (&d->io, buf, n, offset) == -1)
    return nbd_failed (d, err, "cannot read the image");
  return 0;
}

/* --- the ntfs_device adapter ---------------------------------------- *
 *
 * libntfs-3g sees the Windows partition as a device of the partition's
 * size: every access is bounds-checked against it, so nothing outside
 * the partition can be read or written whatever the filesystem says. */

static struct window *
window_of (struct ntfs_device *dev)
{
  return dev->d_private;
}

static int
win_open (struct ntfs_device *dev, int flags)
{
  struct window *w = window_of (dev);

  if (NDevOpen (dev)) {
    errno = EBUSY;
    return -1;
  }
  if ((flags & O_ACCMODE) != O_RDONLY && !w->writable) {
    errno = EROFS;
    return -1;
  }
  if ((flags & O_ACCMODE) == O_RDONLY)
    NDevSetReadOnly (dev);
  else
    NDevClearReadOnly (dev);
  w->pos = 0;
  NDevSetOpen (dev);
  return 0;
}

static int
win_flush (struct ntfs_device *dev)
{
  struct window *w = window_of (dev);

  if (NDevReadOnly (dev) || !NDevDirty (dev))
    return 0;
  /* NBD_CMD_FLUSH: qemu-nbd flushes its caches (qcow2 metadata
   * included) and fdatasyncs the image file before answering. */
  if (nbd_flush (w->io.nbd, 0) == -1) {
    errno = nbd_get_errno () ? nbd_get_errno () : EIO;
    return -1;
  }
  NDevClearDirty (dev);
  return 0;
}

/* ntfs_umount() closes the device: that is where everything written
 * through the volume is flushed to the image, and where a failure shows
 * up as ntfs_umount()'s error. */
static int
win_close (struct ntfs_device *dev)
{
  int r = win_flush (dev);

  NDevClearOpen (dev);
  return r;
}

static s64
win_pread (struct ntfs_device *dev, void *buf, s64 count, s64 offset)
{
  struct window *w = window_of (dev);

  if (count < 0 || offset < 0) {
    errno = EINVAL;
    return -1;
  }
  if ((uint64_t) offset >= w->size || count == 0)
    return 0;
  if ((uint64_t) (offset + count) > w->size)
    count = (s64) (w->size - (uint64_t) offset);
  if (nbd_read_chunked (&w->io, buf, (uint64_t) count, w->offset + (uint64_t) offset) == -1) {
    errno = nbd_get_errno () ? nbd_get_errno () : EIO;
    return -1;
  }
  return count;
}

static s64
win_pwrite (struct ntfs_device *dev, const void *buf, s64 count, s64 offset)
{
  struct window *w = window_of (dev);

  if (NDevReadOnly (dev) || !w->writable) {
    errno = EROFS;
    return -1;
  }
  if (count < 0 || offset < 0) {
    errno = EINVAL;
    return -1;
  }
  if (count == 0)
    return 0;
  if ((uint64_t) offset >= w->size) {
    errno = ENOSPC;
    return -1;
  }
  if ((uint64_t) (offset + count) > w->size)
    count = (s64) (w->size - (uint64_t) offset);
  NDevSetDirty (dev);
  if (nbd_io (&w->io, 1, (void *) buf, (uint64_t) count, w->offset + (uint64_t) offset) == -1) {
    errno = nbd_get_errno () ? nbd_get_errno () : EIO;
    return -1;
  }
  return count;
}

static s64
win_seek (struct ntfs_device *dev, s64 offset, int whence)
{
  struct window *w = window_of (dev);
  s64 base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? w->pos
    : whence == SEEK_END ? (s64) w->size : -1;

  if (base < 0 || base + offset < 0) {
    errno = EINVAL;
    return -1;
  }
  w->pos = base + offset;
  return w->pos;
}

static s64
win_read (struct ntfs_device *dev, void *buf, s64 count)
{
  s64 r = win_pread (dev, buf, count, window_of (dev)->pos);
  if (r > 0)
    window_of (dev)->pos += r;
  return r;
}

static s64
win_write (struct ntfs_device *dev, const void *buf, s64 count)
{
  s64 r = win_pwrite (dev, buf, count, window_of (dev)->pos);
  if (r > 0)
    window_of (dev)->pos += r;
  return r;
}

static int
win_stat (struct ntfs_device *dev, struct stat *st)
{
  memset (st, 0, sizeof *st);
  st->st_mode = S_IFREG | 0600;
  st->st_size = (off_t) window_of (dev)->size;
  return 0;
}

static int
win_ioctl (struct ntfs_device *dev, unsigned long request, void *arg)
{
  (void) dev; (void) request; (void) arg;
  errno = ENOTTY;
  return -1;
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
static int
mount_rw (struct direct *d, struct np_error *err)
{
  int e;

  if (d->vol && d->rw)
    return 0;
  if (d->readonly)
    return np_error_set (err, NP_EXIT_RUNTIME, "%s: the image was opened read-only", d->path);
  if (unmount_vol (d) == -1)
    return ntfs_failed (d, err, "cannot unmount the Windows volume", errno);
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
  return ntfs_failed (d, err, "cannot mount the Windows volume read-write", e);
}

static int
mount_ro (struct direct *d, struct np_error *err)
{
  if (d->vol)
    return 0;
  d->vol = mount_part (d, d->win, 0);
  if (d->vol == NULL)
    return ntfs_failed (d, err, "cannot mount the Windows volume", errno);
  d->rw = 0;
  return 0;
}

/* Unmount (everything written so far reaches the image, flushed) and
 * mount read-write again: what follows reads the image afresh, and a
 * crash from here on finds exactly the state the step left. */
static int
commit (struct direct *d, const char *step, struct np_error *err)
{
  trace (d, "direct: %s", step);
  if (unmount_vol (d) == -1)
    return ntfs_failed (d, err, "writing to the Windows volume failed", errno);
  return mount_rw (d, err);
}

/* --- partitions ------------------------------------------------------ */

static void
add_part (struct direct *d, const char *dev, uint64_t start, uint64_t n, unsigned sector)
{
  struct part *p;
  uint64_t off = start * sector, size = n * sector;

  if (n == 0 || off >= d->disk_size || d->n_parts == MAX_PARTS)
    return;
  /* The kernel (hence libguestfs) truncates a partition at the end of
   * the disk. */
  if (size > d->disk_size - off)
    size = d->disk_size - off;
  p = &d->parts[d->n_parts++];
  snprintf (p->dev, sizeof p->dev, "%s", dev);
  p->offset = off;
  p->size = size;
  p->type = NULL;
}

static int
is_extended (unsigned type)
{
  return type == 0x05 || type == 0x0f || type == 0x85;
}

/* Logical partitions: a chain of EBRs inside the extended partition,
 * numbered from 5 in chain order as Linux does.  Entry addresses are
 * relative to their EBR (data) or to the extended partition (next EBR). */
static int
parse_ebr_chain (struct direct *d, uint64_t ext_start, uint64_t ext_size, int *next,
                 struct np_error *err)
{
  unsigned char ebr[SECTOR];
  uint64_t this = ext_start, this_size = ext_size;

  for (int loops = 0; loops < 256; loops++) {
    const unsigned char *e;
    int i;

    if (disk_read (d, ebr, sizeof ebr, this * SECTOR, err) == -1)
      return -1;
    if (ebr[510] != 0x55 || ebr[511] != 0xaa)
      return 0;
    for (i = 0; i < 4; i++) {
      char dev[32];
      uint64_t s, n;

      e = ebr + 446 + 16 * i;
      s = get32 (e + 8);
      n = get32 (e + 12);
      if (n == 0 || is_extended (e[4]))
        continue;
      /* Like Linux, distrust entries 3 and 4 that fall outside. */
      if (i >= 2 && (s + n > this_size || this + s + n > ext_start + ext_size))
        continue;
      snprintf (dev, sizeof dev, "/dev/sda%d", (*next)++);
      add_part (d, dev, this + s, n, SECTOR);
    }
    for (i = 0; i < 4; i++) {
      e = ebr + 446 + 16 * i;
      if (get32 (e + 12) && is_extended (e[4]))
        break;
    }
    if (i == 4)
      return 0;
    this = ext_start + get32 (e + 8);
    this_size = get32 (e + 12);
  }
  return 0;
}

static uint32_t
crc32_le (const unsigned char *p, size_t n)
{
  uint32_t c = 0xffffffffu;

  while (n--) {
    c ^= *p++;
    for (int k = 0; k < 8; k++)
      c = c & 1 ? (c >> 1) ^ 0xedb88320u : c >> 1;
  }
  return ~c;
}

/* Read and check a GPT header at LBA; on success *ENTRIES (malloc'd)
 * holds its checked partition array. */
static int
gpt_read (struct direct *d, uint64_t lba, unsigned sector, unsigned char **entries,
          uint32_t *count, uint32_t *esize, struct np_error *err)
{
  unsigned char hdr[4096];
  uint32_t hsize, crc;
  uint64_t table_lba, bytes;

  *entries = NULL;
  if (disk_read (d, hdr, sector, lba * sector, err) == -1)
    return -1;
  if (memcmp (hdr, "EFI PART", 8) != 0)
    return 0;
  hsize = get32 (hdr + 12);
  if (hsize < 92 || hsize > sector)
    return 0;
  crc = get32 (hdr + 16);
  memset (hdr + 16, 0, 4);
  if (crc32_le (hdr, hsize) != crc)
    return 0;
  table_lba = get64 (hdr + 72);
  *count = get32 (hdr + 80);
  *esize = get32 (hdr + 84);
  if (*esize < 128 || *esize % 8 || *esize > 4096 || *count == 0 || *count > 4096)
    return 0;
  bytes = (uint64_t) *count * *esize;
  *entries = malloc (bytes);
  if (*entries == NULL)
    return np_error_set (err, NP_EXIT_RUNTIME, "out of memory");
  if (disk_read (d, *entries, bytes, table_lba * sector, err) == -1 ||
      crc32_le (*entries, bytes) != get32 (hdr + 88)) {
    free (*entries);
    *entries = NULL;
    return err->msg[0] ? -1 : 0;
  }
  return 0;
}

/* GPT: partition N is entry N-1 (unused entries keep their numbers), as
 * Linux numbers them.  The backup header is used if the primary is bad. */
static int
parse_gpt (struct direct *d, unsigned sector, int *found, struct np_error *err)
{
  unsigned char *entries;
  uint32_t count = 0, esize = 0;
  uint64_t last = d->disk_size / sector - 1;

  *found = 0;
  if (gpt_read (d, 1, sector, &entries, &count, &esize, err) == -1)
    return -1;
  if (entries == NULL && gpt_read (d, last, sector, &entries, &count, &esize, err) == -1)
    return -1;
  if (entries == NULL)
    return 0;
  *found = 1;
  for (uint32_t i = 0; i < count; i++) {
    const unsigned char *e = entries + (size_t) i * esize;
    static const unsigned char zero[16];
    uint64_t first = get64 (e + 32), end = get64 (e + 40);
    char dev[32];

    if (memcmp (e, zero, 16) == 0 || end < first)
      continue;
    snprintf (dev, sizeof dev, "/dev/sda%u", i + 1);
    add_part (d, dev, first, end - first + 1, sector);
  }
  free (entries);
  return 0;
}

/* Fill d->parts: GPT, MBR (with logical partitions), or, with neither, the
 * whole disk as one candidate.  An NTFS boot sector at sector 0 is a
 * filesystem without a partition table, whatever its boot code looks like
 * where an MBR's table would be. */
static int
find_partitions (struct direct *d, struct np_error *err)
{
  unsigned char mbr[SECTOR];
  int mbr_ok, gpt = 0, found = 0, next_logical = 5;

  if (disk_read (d, mbr, sizeof mbr, 0, err) == -1)
    return -1;
  if (memcmp (mbr + 3, "NTFS    ", 8) == 0) {
    add_part (d, "/dev/sda", 0, d->disk_size / SECTOR, SECTOR);
    return 0;
  }
  mbr_ok = mbr[510] == 0x55 && mbr[511] == 0xaa;
  for (int i = 0; mbr_ok && i < 4; i++) {
    const unsigned char *e = mbr + 446 + 16 * i;
    if (e[0] != 0 && e[0] != 0x80)
      mbr_ok = 0;              /* not a partition table (Linux's test) */
    else if (e[4] == 0xee)
      gpt = 1;
  }
  if (gpt || !mbr_ok) {
    /* A GPT disk with 4 KiB logical sectors has its header at 4096. */
    if (parse_gpt (d, SECTOR, &found, err) == -1 ||
        (!found && parse_gpt (d, 4096, &found, err) == -1))
      return -1;
    if (found)
      return 0;
  }
  if (mbr_ok && !gpt) {
    for (int i = 0; i < 4; i++) {
      const unsigned char *e = mbr + 446 + 16 * i;
      uint32_t start = get32 (e + 8), n = get32 (e + 12);
      char dev[32];

      if (e[4] == 0 || n == 0)
        continue;
      found = 1;
      if (is_extended (e[4])) {
        if (parse_ebr_chain (d, start, n, &next_logical, err) == -1)
          return -1;
        continue;
      }
      snprintf (dev, sizeof dev, "/dev/sda%d", i + 1);
      add_part (d, dev, start, n, SECTOR);
    }
  }
  if (!found)
    add_part (d, "/dev/sda", 0, d->disk_size / SECTOR, SECTOR);
  return 0;
}

/* What filesystem a candidate holds, from its superblock: NTFS is the
 * one that matters; the others only name what was seen in messages, as
 * libguestfs's list would (swap is skipped there, so it is here). */
static int
probe_type (struct direct *d, struct part *p, struct np_error *err)
{
  unsigned char b[4096], bt[512];
  const unsigned char *ext = b + 1024;

  if (disk_read (d, b, p->size < sizeof b ? p->size : sizeof b, p->offset, err) == -1)
    return -1;
  if (p->size < sizeof b)
    memset (b + p->size, 0, sizeof b - p->size);
  if (memcmp (b + 3, "NTFS    ", 8) == 0)
    p->type = "ntfs";
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
  else if (get16 (ext + 56) == 0xef53)
    p->type = get32 (ext + 0x60) & 0x2c0 ? "ext4" : get32 (ext + 0x5c) & 4 ? "ext3" : "ext2";
  else if (b[510] == 0x55 && b[511] == 0xaa &&
           (memcmp (b + 54, "FAT", 3) == 0 || memcmp (b + 82, "FAT32", 5) == 0))
    p->type = "vfat";
  else if (p->size > 65536 + 512) {
    if (disk_read (d, bt, sizeof bt, p->offset + 65536, err) == -1)
      return -1;
    if (memcmp (bt + 64, "_BHRfS_M", 8) == 0)
      p->type = "btrfs";
  }
  return 0;
}

/* --- open ------------------------------------------------------------ *
 *
 * qemu-nbd is started by systemd-style socket activation, done here
 * rather than by libnbd's nbd_connect_systemd_socket_activation, which
 * (libnbd 1.14) binds a named socket under /tmp that a killed client
 * leaves behind, lets qemu-nbd wait forever on that socket (holding
 * qemu's lock on the image) if the client dies before connecting, runs
 * it in our process group (a Ctrl-C on the terminal would stop it in
 * the middle of the swap, whose signals job.c defers) with our stderr,
 * and throws its exit status away.  Here:
 *  - the listening socket is in the abstract namespace (autobound):
 *    nothing on any filesystem, ever;
 *  - we connect before forking, so qemu-nbd always has its client;
 *  - a babysitter process (below) in its own session starts qemu-nbd,
 *    stops it if we die, at whatever moment, and passes its exit status
 *    on; qemu-nbd gets a file of ours with no name as stderr (its
 *    messages end up in our one-line error, or nowhere) and nothing
 *    else of ours;
 *  - we wait for it when closing and check how it exited.
 * After fork the children only make async-signal-safe calls (other
 * worker threads may hold locks). */

/* Where PROG is in $PATH (malloc'd), or NULL. */
static char *
find_program (const char *prog)
{
  const char *path = getenv ("PATH");
  char *dirs, *save = NULL, *full = NULL;

  dirs = strdup (path && *path ? path : "/usr/local/bin:/usr/bin:/bin");
  if (dirs == NULL)
    return NULL;
  for (char *dir = strtok_r (dirs, ":", &save); dir; dir = strtok_r (NULL, ":", &save)) {
    if (asprintf (&full, "%s/%s", *dir ? dir : ".", prog) == -1) {
      full = NULL;
      break;
    }
    if (access (full, X_OK) == 0)
      break;
    free (full);
    full = NULL;
  }
  free (dirs);
  return full;
}

/* qemu-nbd itself, between fork and exec. */
static void __attribute__((noreturn))
exec_qemu_nbd (int listen_fd, int log_fd, const char *prog, char **argv, char **envp,
               char *pid_slot)
{
  sigset_t none;
  pid_t me = getpid ();
  char digits[24];
  int n = 0;

  sigemptyset (&none);
  sigprocmask (SIG_SETMASK, &none, NULL);
  if (log_fd >= 0)
    dup2 (log_fd, 2);
  /* systemd's protocol: the listening socket is fd 3, LISTEN_PID us. */
  if (listen_fd == 3)
    fcntl (3, F_SETFD, 0);
  else if (dup2 (listen_fd, 3) == -1)
    _exit (127);
  close_range (4, ~0u, 0);
  do
    digits[n++] = (char) ('0' + me % 10);
  while ((me /= 10) > 0);
  while (n > 0)
    *pid_slot++ = digits[--n];
  *pid_slot = '\0';
  execve (prog, argv, envp);
  _exit (127);
}

/* Between us and qemu-nbd: a process of our own (forked, never exec'd:
 * async-signal-safe calls only) in its own session, which starts
 * qemu-nbd, exits with its status, and, if we die, sends it SIGTERM
 * until it is gone.  Needed because qemu-nbd does not exit when a
 * client drops before finishing the NBD handshake (it waits for the
 * next), and a SIGTERM that arrives while it is starting is forgotten:
 * either can leave it running forever, holding the image's lock. */
static void __attribute__((noreturn))
babysit_qemu_nbd (pid_t parent, int listen_fd, int log_fd, const char *prog, char **argv,
                  char **envp, char *pid_slot)
{
  struct timespec tick = { 0, 20 * 1000 * 1000 };
  pid_t q;
  int status;

  setsid ();
  q = fork ();
  if (q == -1)
    _exit (127);
  if (q == 0)
    exec_qemu_nbd (listen_fd, log_fd, prog, argv, envp, pid_slot);
  /* Nothing of ours stays open here: our end of the connection above
   * all, whose closing is how qemu-nbd learns we are done. */
  close_range (0, ~0u, 0);
  for (;;) {
    pid_t r = waitpid (q, &status, WNOHANG);
    if (r == q)
      _exit (WIFEXITED (status) ? WEXITSTATUS (status) : 128 + WTERMSIG (status));
    if (r == -1 && errno != EINTR)
      _exit (127);
    if (getppid () != parent)
      kill (q, SIGTERM);               /* again at each tick: one may be lost */
    nanosleep (&tick, NULL);
  }
}

/* Start qemu-nbd with ARGV serving the image; *SOCK is our end of the
 * connection.  -1 with errno. */
static int
spawn_qemu_nbd (struct direct *d, const char *prog, char **argv, int *sock)
{
  extern char **environ;
  struct sockaddr_un addr;
  socklen_t alen = sizeof (sa_family_t);
  size_t n = 0, k = 0;
  char **envp = NULL, fds[] = "LISTEN_FDS=1", pid_var[40] = "LISTEN_PID=";
  int lfd = -1, cfd = -1, e;
  pid_t pid, self = getpid ();

  while (environ[n])
    n++;
  envp = calloc (n + 3, sizeof *envp);
  if (envp == NULL)
    return -1;
  for (size_t i = 0; i < n; i++)
    if (strncmp (environ[i], "LISTEN_", 7) != 0)
      envp[k++] = environ[i];
  envp[k++] = fds;
  envp[k++] = pid_var;

  memset (&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  lfd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  /* Binding just the family autobinds an abstract address. */
  if (lfd == -1 || bind (lfd, (struct sockaddr *) &addr, alen) == -1 ||
      listen (lfd, 1) == -1 ||
      (alen = sizeof addr, getsockname (lfd, (struct sockaddr *) &addr, &alen)) == -1)
    goto fail;
  /* Connected before qemu-nbd even exists: the connection waits in the
   * backlog, and if we die at any moment from here, qemu-nbd accepts it,
   * reads end-of-file and exits.  (Its SIGTERM handler cannot be relied
   * on for that: a signal that comes while it is still starting is
   * lost, and it would wait for a client forever, holding the image.) */
  cfd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (cfd == -1 || connect (cfd, (struct sockaddr *) &addr, alen) == -1)
    goto fail;
  pid = fork ();
  if (pid == -1)
    goto fail;
  if (pid == 0)
    babysit_qemu_nbd (self, lfd, d->qemu_log, prog, argv, envp, pid_var + 11);
  d->child = pid;
  close (lfd);
  free (envp);
  *sock = cfd;
  return 0;

 fail:
  e = errno;
  if (cfd >= 0)
    close (cfd);
  if (lfd >= 0)
    close (lfd);
  free (envp);
  errno = e;
  return -1;
}

/* Wait for qemu-nbd to exit (it does once we disconnect), no more than
 * TIMEOUT_MS, then make it.  Returns its wait status, or -1. */
static int
reap_qemu_nbd (struct direct *d, int timeout_ms)
{
  int status, waited = 0;

  if (d->child <= 0)
    return -1;
  for (;;) {
    pid_t r = waitpid (d->child, &status, WNOHANG);
    if (r == d->child)
      break;
    if (r == -1 && errno != EINTR) {
      d->child = 0;
      return -1;
    }
    /* The babysitter's process group holds qemu-nbd too. */
    if (waited == timeout_ms)
      kill (-d->child, SIGTERM);       /* qemu-nbd closes the image cleanly */
    else if (waited == timeout_ms + 5000)
      kill (-d->child, SIGKILL);
    usleep (2000);
    waited += 2;
  }
  d->child = 0;
  return status;
}

/* Put what qemu-nbd printed into BUF, one line. */
static void
qemu_message (const struct direct *d, char *buf, size_t len)
{
  ssize_t n = d->qemu_log >= 0 ? pread (d->qemu_log, buf, len - 1, 0) : -1;
  char *p;

  buf[n > 0 ? n : 0] = '\0';
  np_one_line (buf);
  while ((p = strstr (buf, "qemu-nbd: ")) != NULL)
    memmove (p, p + 10, strlen (p + 10) + 1);
}

static void direct_abort (struct disk *dk);

static struct disk *
direct_open (const struct disk_request *req, struct np_error *err)
{
  struct direct *d = calloc (1, sizeof *d);
  const char *tmpdir = getenv ("TMPDIR");
  char logname[PATH_MAX], *file = NULL, *prog = NULL, qmsg[768];
  char *argv[16];
  int argc = 0, sock = -1;
  int64_t size, align;

  if (d == NULL) {
    np_error_set (err, NP_EXIT_RUNTIME, "out of memory");
    return NULL;
  }
  d->path = req->path;
  d->format = req->format;
  d->readonly = req->readonly;
  d->verbose = req->verbose;
  d->quiet = req->quiet;
  d->qemu_log = -1;
  d->ops = (struct ntfs_device_operations) {
    .open = win_open, .close = win_close, .seek = win_seek, .read = win_read,
    .write = win_write, .pread = win_pread, .pwrite = win_pwrite, .sync = win_flush,
    .stat = win_stat, .ioctl = win_ioctl,
  };
  /* libntfs-3g reports through its own logger; our errors are one line
   * built from errno, so it stays quiet unless debugging. */
  ntfs_log_set_handler (d->verbose > 1 ? ntfs_log_handler_stderr : ntfs_log_handler_null);

  d->nbd = nbd_create ();
  if (d->nbd == NULL) {
    nbd_failed (d, err, "cannot create a libnbd handle");
    goto fail;
  }
  if (d->verbose > 1)
    nbd_set_debug (d->nbd, true);
  prog = find_program ("qemu-nbd");
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
  if (!(tmpdir && *tmpdir && strlen (tmpdir) < PATH_MAX - 32))
    tmpdir = "/tmp";
  d->qemu_log = open (tmpdir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (d->qemu_log == -1) {             /* a filesystem without O_TMPFILE */
    snprintf (logname, sizeof logname, "%s/netvsc-patch-nbd.XXXXXX", tmpdir);
    d->qemu_log = mkostemp (logname, O_CLOEXEC);
    if (d->qemu_log >= 0)
      unlink (logname);
  }

  argv[argc++] = "qemu-nbd";
  argv[argc++] = "-f";                 /* the format we detected: never probe */
  argv[argc++] = (char *) req->format;
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
  argv[argc++] = file ? file : (char *) req->path;
  argv[argc] = NULL;

  trace (d, "direct: qemu-nbd -f %s%s %s", req->format, req->readonly ? " --read-only" : "",
         req->path);
  if (spawn_qemu_nbd (d, prog, argv, &sock) == -1) {
    ntfs_failed (d, err, "cannot start qemu-nbd", errno);
    goto fail;
  }
  if (nbd_connect_socket (d->nbd, sock) == -1) {
    char nmsg[256];
    int status;

    snprintf (nmsg, sizeof nmsg, "%s", nbd_get_error () ? nbd_get_error () : "");
    np_one_line (nmsg);
    status = reap_qemu_nbd (d, 5000);
    qemu_message (d, qmsg, sizeof qmsg);
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
  size = nbd_get_size (d->nbd);
  if (size < 0) {
    nbd_failed (d, err, "cannot get the size of the image");
    goto fail;
  }
  d->disk_size = (uint64_t) size;
  d->io.nbd = d->nbd;
  align = nbd_get_block_size (d->nbd, LIBNBD_SIZE_MINIMUM);
  d->io.align = align > 0 ? (uint32_t) align : 1;
  if (align > 65536 || (d->io.align & (d->io.align - 1))) {
    np_error_set (err, NP_EXIT_RUNTIME, "%s: qemu-nbd wants %lld-byte blocks", d->path,
                  (long long) align);
    goto fail;
  }
  if (!req->readonly && (nbd_is_read_only (d->nbd) == 1 || nbd_can_flush (d->nbd) != 1)) {
    np_error_set (err, NP_EXIT_RUNTIME, "%s: qemu-nbd serves the image read-only or "
                  "without flush", d->path);
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
static int
lookup (ntfs_volume *vol, MFT_REF dir, const char *name, MFT_REF *mref, unsigned *dt,
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
    r = lookup (vol, dir, c, &dir, &dt, NULL);
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

  if (find_partitions (d, err) == -1)
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
      trace (d, "direct: %s: cannot mount: %s", p->dev, strerror (e));
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
  if (mount_ro (d, err) == -1)
    goto out;
  d->hive_path = strdup (win->hive);
  d->config_dir = strdup (win->hive);
  if (d->hive_path == NULL || d->config_dir == NULL) {
    np_error_set (err, NP_EXIT_RUNTIME, "out of memory");
    goto out;
  }
  *strrchr (d->config_dir, '/') = '\0';
  if (resolve_dir (d->vol, d->config_dir, &d->config) != 1) {
    ntfs_failed (d, err, "cannot find the hive's directory again", errno ? errno : ENOENT);
    goto out;
  }
  trace (d, "direct: Windows on %s (offset %llu, %llu bytes)", d->win->dev,
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

  if (d->vol == NULL && mount_ro (d, &(struct np_error) { 0, "" }) == -1)
    return 0;
  return lookup (d->vol, d->config, name, &mref, &dt, NULL) == 1 && dt == NTFS_DT_REG;
}

/* The unnamed $DATA of inode MREF, in memory.  -1 with errno. */
static int
read_data (ntfs_volume *vol, MFT_REF mref, char **buf, size_t *len)
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
  MFT_REF mref;
  unsigned dt;
  char *buf = NULL;
  size_t len = 0, done = 0;
  int fd, r;

  if (mount_ro (d, err) == -1)
    return -1;
  r = lookup (d->vol, d->config, name, &mref, &dt, NULL);
  if (r == -1)
    return ntfs_failed (d, err, "cannot read the hive's directory", errno);
  if (r == 0 || dt != NTFS_DT_REG)
    return np_error_set (err, NP_EXIT_RUNTIME, "%s: %s/%s does not exist",
                         d->path, d->config_dir, name);
  if (read_data (d->vol, mref, &buf, &len) == -1)
    return np_error_set (err, NP_EXIT_RUNTIME, "%s: cannot read %s/%s: %s",
                         d->path, d->config_dir, name, strerror (errno));
  fd = open (local, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd == -1) {
    free (buf);
    return np_error_set (err, NP_EXIT_RUNTIME, "%s: %s", local, strerror (errno));
  }
  while (done < len) {
    ssize_t n = write (fd, buf + done, len - done);
    if (n <= 0) {
      int e = n < 0 ? errno : EIO;
      close (fd);
      free (buf);
      return np_error_set (err, NP_EXIT_RUNTIME, "%s: %s", local, strerror (e));
    }
    done += (size_t) n;
  }
  free (buf);
  if (close (fd) == -1)
    return np_error_set (err, NP_EXIT_RUNTIME, "%s: %s", local, strerror (errno));
  return 0;
}

/* --- the swap --------------------------------------------------------
 *
 * Why not a temporary file renamed over SYSTEM, as the appliance does:
 * libntfs-3g has no rename, only ntfs_link and ntfs_delete, and it does
 * not order its writes for crashes.  A first version of this backend
 * swapped names in \Windows\System32\config (a case variant of SYSTEM
 * kept the hive reachable at every step).  Killing it at random moments
 * (tests/t-direct.sh) showed that ntfs_link and ntfs_delete write the
 * directory entry and the inode's list of names separately, which then
 * needs repairing, and, worse, that adding a name can make libntfs-3g
 * move the directory's index out of its MFT record into a new index
 * block, writing the record that points at the block before the block
 * itself: killed in between, the whole directory is unreadable.  Any
 * change to the directory's index can do that.
 *
 * So no directory is changed, and no inode is created either: even one
 * new MFT record can make libntfs-3g extend $MFT itself (its own record,
 * $MFTMirr, the MFT bitmap: the same killed-in-between hazard, for the
 * whole volume).  The one write that is atomic for us is a single MFT
 * record: qemu-nbd carries out a request it has received whatever
 * happens to this process, and a record torn by a power cut is caught by
 * its update sequence array.  SYSTEM's data runs live in its MFT record:
 *
 *   1. clusters are allocated for the new hive (bits set in $Bitmap:
 *      nothing refers to them yet), the hive is written into them; then
 *      unmounted (flushed), mounted again, read back and compared with
 *      LOCAL byte for byte;
 *   2. COMMIT: SYSTEM's $DATA attribute is rewritten to describe those
 *      clusters and the new size: one MFT record write;
 *   3. flushed, mounted again, SYSTEM read back through the filesystem
 *      and compared with LOCAL; a mismatch puts the old runs back (again
 *      one record write);
 *   4. the old clusters are freed.
 *
 * Before 2 SYSTEM holds the old hive, from 2 on the new one, at every
 * instant, under the same name and inode: its security descriptor,
 * attributes, DOS name and creation time cannot change, so there is
 * nothing to copy; no temporary name ever appears in the guest, and
 * nothing needs repairing after a crash.  A crash costs at most leaked
 * clusters (the new ones before 2, the old ones after), which chkdsk
 * reclaims.  At 2 libntfs-3g first refreshes the sizes duplicated in
 * SYSTEM's directory entry (an in-place change of that one entry: the
 * index is not restructured), then writes the record; killed between
 * the two, the entry shows the new size for the old data, which is
 * harmless (Windows and chkdsk treat those sizes as a cache).
 *
 * The switch needs SYSTEM's $DATA to be a plain (not compressed, sparse
 * or encrypted) non-resident attribute held whole in its base MFT
 * record, with room there for the new runs (a fresh allocation is one
 * or a few runs).  Otherwise the write is refused before anything is
 * written.  A file whose data is resident in its MFT record (an empty
 * transaction log, which job.c replaces after a replay, or the small
 * files of --defer) is replaced by rewriting that value: the same
 * single-record commit.  If the new content does not fit there, steps 1
 * to 3 run as above and step 2 rewrites the resident attribute as a
 * non-resident one describing the new clusters (set_form): still one
 * record write, and its undo puts the old value back.
 */

/* Where an inode's unnamed $DATA is described. */
struct data_rec {
  ntfs_attr_search_ctx *ctx;
  ATTR_RECORD *a;
};

/* Find NI's unnamed $DATA record and check it can be switched (or, if
 * resident, rewritten in place); *WHY says why not. */
static int
data_record (ntfs_inode *ni, struct data_rec *r, const char **why)
{
  const ntfs_volume *vol = ni->vol;
  s64 alloc;

  *why = NULL;
  r->a = NULL;
  r->ctx = ntfs_attr_get_search_ctx (ni, NULL);
  if (r->ctx == NULL)
    return -1;
  if (ntfs_attr_lookup (AT_DATA, AT_UNNAMED, 0, CASE_SENSITIVE, 0, NULL, 0, r->ctx) != 0) {
    *why = "it has no data stream";
    return -1;
  }
  r->a = r->ctx->attr;
  if (r->a->flags & (ATTR_COMPRESSION_MASK | ATTR_IS_SPARSE | ATTR_IS_ENCRYPTED))
    *why = "it is compressed, sparse or encrypted";
  else if (r->ctx->mrec != ni->mrec)
    *why = "its data is described in another MFT record";
  else if (r->a->non_resident) {       /* else the data is in the record itself */
    alloc = sle64_to_cpu (r->a->allocated_size);
    if (sle64_to_cpu (r->a->lowest_vcn) != 0 ||
        sle64_to_cpu (r->a->highest_vcn) + 1 != alloc >> vol->cluster_size_bits)
      *why = "its data runs do not fit in its own MFT record";
  }
  return *why ? -1 : 0;
}

/* A copy of the runs of NI's unnamed $DATA (terminated as libntfs-3g
 * terminates them), its size and allocated size. */
struct runs {
  runlist_element *rl;
  s64 size, alloc;
};

static int
get_runs (ntfs_inode *ni, struct runs *r)
{
  ntfs_attr *na = ntfs_attr_open (ni, AT_DATA, AT_UNNAMED, 0);
  size_t n = 0;
  int e = 0;

  r->rl = NULL;
  if (na == NULL)
    return -1;
  if (!NAttrNonResident (na) || ntfs_attr_map_whole_runlist (na) != 0)
    e = errno ? errno : EINVAL;
  else {
    while (na->rl[n].length)
      if (na->rl[n++].lcn < 0)
        e = EINVAL;                    /* a hole: not a plain file */
    r->rl = malloc ((n + 1) * sizeof *r->rl);
    if (r->rl == NULL)
      e = ENOMEM;
    else
      memcpy (r->rl, na->rl, (n + 1) * sizeof *r->rl);
    r->size = na->data_size;
    r->alloc = na->allocated_size;
  }
  ntfs_attr_close (na);
  if (e) {
    free (r->rl);
    r->rl = NULL;
    errno = e;
    return -1;
  }
  return 0;
}

/* The size SYSTEM's $DATA record takes with RL as its runs, and whether
 * that fits in its MFT record. */
static int
runs_fit (ntfs_volume *vol, const struct data_rec *dr, const runlist_element *rl, u32 *len)
{
  const MFT_RECORD *m = dr->ctx->mrec;
  int mp = ntfs_get_size_for_mapping_pairs (vol, rl, 0, INT_MAX);
  u32 off = le16_to_cpu (dr->a->mapping_pairs_offset);

  if (mp < 0)
    return 0;
  *len = (off + (u32) mp + 7) & ~7u;
  return *len <= le32_to_cpu (dr->a->length) + le32_to_cpu (m->bytes_allocated) -
    le32_to_cpu (m->bytes_in_use);
}

/* Step 3 (and its undo): make inode MREF's unnamed $DATA describe runs
 * R.  Only its base MFT record changes, written by ntfs_inode_close. */
static int
set_runs (struct direct *d, MFT_REF mref, const char *path, const struct runs *r,
          struct np_error *err)
{
  ntfs_inode *ni = ntfs_inode_open (d->vol, mref);
  struct data_rec dr;
  const char *why;
  u32 len, off;
  int e = 0;

  if (ni == NULL)
    return ntfs_failed (d, err, "cannot open SYSTEM", errno);
  if (data_record (ni, &dr, &why) == -1 || !dr.a->non_resident ||
      !runs_fit (d->vol, &dr, r->rl, &len)) {
    e = why || (dr.a && !dr.a->non_resident) ? EINVAL : errno ? errno : ENOSPC;
    goto out;
  }
  off = le16_to_cpu (dr.a->mapping_pairs_offset);
  if (ntfs_attr_record_resize (dr.ctx->mrec, dr.a, len) != 0 ||
      ntfs_mapping_pairs_build (d->vol, (u8 *) dr.a + off, (int) (len - off), r->rl, 0,
                                NULL) != 0) {
    e = errno ? errno : EIO;
    goto out;
  }
  dr.a->highest_vcn = cpu_to_sle64 ((r->alloc >> d->vol->cluster_size_bits) - 1);
  dr.a->allocated_size = cpu_to_sle64 (r->alloc);
  dr.a->data_size = cpu_to_sle64 (r->size);
  dr.a->initialized_size = cpu_to_sle64 (r->size);
  /* What the directory entry duplicates, and the times of a write. */
  ni->data_size = r->size;
  ni->allocated_size = r->alloc;
  ntfs_inode_update_times (ni, NTFS_UPDATE_MCTIME);
  NInoFileNameSetDirty (ni);
  ntfs_inode_mark_dirty (ni);
 out:
  if (dr.ctx)
    ntfs_attr_put_search_ctx (dr.ctx);
  if (ntfs_inode_close (ni) != 0 && !e)
    e = errno;
  if (e)
    return np_error_set (err, NP_EXIT_RUNTIME, "%s: cannot switch %s to its new data: %s",
                         d->path, path, strerror (e));
  return 0;
}

/* A file whose data is resident (held in its MFT record: small files,
 * such as empty transaction logs) is replaced by rewriting that value:
 * one MFT record write again.  Only if the new content fits there. */
static int
set_resident (struct direct *d, MFT_REF mref, const char *path, const char *buf, size_t len,
              struct np_error *err)
{
  ntfs_inode *ni = ntfs_inode_open (d->vol, mref);
  struct data_rec dr = { NULL, NULL };
  const char *why;
  int e = 0;

  if (ni == NULL)
    return ntfs_failed (d, err, "cannot open the file to replace", errno);
  if (data_record (ni, &dr, &why) == -1 || dr.a->non_resident) {
    e = EINVAL;
    goto out;
  }
  if (ntfs_resident_attr_value_resize (dr.ctx->mrec, dr.a, (u32) len) != 0) {
    e = errno ? errno : ENOSPC;
    goto out;
  }
  memcpy ((u8 *) dr.a + le16_to_cpu (dr.a->value_offset), buf, len);
  ni->data_size = (s64) len;
  ni->allocated_size = ((s64) len + 7) & ~7;
  ntfs_inode_update_times (ni, NTFS_UPDATE_MCTIME);
  NInoFileNameSetDirty (ni);
  ntfs_inode_mark_dirty (ni);
 out:
  if (dr.ctx)
    ntfs_attr_put_search_ctx (dr.ctx);
  if (ntfs_inode_close (ni) != 0 && !e)
    e = errno;
  if (e)
    return np_error_set (err, NP_EXIT_RUNTIME, "%s: cannot rewrite %s in its MFT record: %s%s",
                         d->path, path, strerror (e),
                         e == ENOSPC ? " (the new content does not fit there)" : "");
  return 0;
}

/* Step 1: clusters for BUF, allocated (only $Bitmap changes) and
 * written; R describes them.  The last cluster's tail is zeros. */
static int
write_clusters (struct direct *d, const char *path, const char *buf, size_t len,
                struct runs *r, struct np_error *err)
{
  ntfs_volume *vol = d->vol;
  s64 clusters = ((s64) len + vol->cluster_size - 1) >> vol->cluster_size_bits;
  s64 alloc = clusters << vol->cluster_size_bits;
  char *padded;
  s64 w;
  int e;

  r->rl = NULL;
  r->size = (s64) len;
  r->alloc = alloc;
  if (clusters == 0) {                 /* an empty file: no runs at all */
    r->rl = calloc (1, sizeof *r->rl);
    if (r->rl == NULL)
      return np_error_set (err, NP_EXIT_RUNTIME, "out of memory");
    r->rl[0].lcn = LCN_ENOENT;
    return 0;
  }
  padded = calloc (1, (size_t) alloc);
  if (padded == NULL)
    return np_error_set (err, NP_EXIT_RUNTIME, "out of memory");
  memcpy (padded, buf, len);
  /* One request for all of it: as contiguous as the free space allows. */
  r->rl = ntfs_cluster_alloc (vol, 0, clusters, -1, DATA_ZONE);
  if (r->rl == NULL) {
    e = errno;
    free (padded);
    return np_error_set (err, NP_EXIT_RUNTIME, "%s: cannot allocate space for the new %s: %s",
                         d->path, path, strerror (e));
  }
  w = ntfs_rl_pwrite (vol, r->rl, 0, 0, alloc, padded);
  e = errno;
  free (padded);
  if (w != alloc)
    return np_error_set (err, NP_EXIT_RUNTIME, "%s: cannot write the new %s: %s",
                         d->path, path, strerror (w < 0 ? e : EIO));
  return 0;
}

/* The clusters of R hold BUF? */
static int
clusters_equal (struct direct *d, const struct runs *r, const char *buf, size_t len)
{
  char *back = malloc (len ? len : 1);
  int same;

  if (back == NULL)
    return 0;
  if (len == 0) {
    free (back);
    return 1;
  }
  same = ntfs_rl_pread (d->vol, r->rl, 0, (s64) len, back) == (s64) len &&
    memcmp (back, buf, len) == 0;
  free (back);
  return same;
}

/* The unnamed $DATA of inode MREF equals BUF? */
static int
data_equals (struct direct *d, MFT_REF mref, const char *buf, size_t len)
{
  char *back = NULL;
  size_t blen = 0;
  int same;

  if (read_data (d->vol, mref, &back, &blen) == -1)
    return 0;
  same = blen == len && memcmp (back, buf, len) == 0;
  free (back);
  return same;
}

static int
read_local (const char *local, char **buf, size_t *len, struct np_error *err)
{
  int fd = open (local, O_RDONLY | O_CLOEXEC);
  struct stat st;
  size_t done = 0;

  *buf = NULL;
  if (fd == -1 || fstat (fd, &st) == -1) {
    int e = errno;
    if (fd >= 0)
      close (fd);
    return np_error_set (err, NP_EXIT_RUNTIME, "%s: %s", local, strerror (e));
  }
  *len = (size_t) st.st_size;
  *buf = malloc (*len ? *len : 1);
  if (*buf == NULL) {
    close (fd);
    return np_error_set (err, NP_EXIT_RUNTIME, "out of memory");
  }
  while (done < *len) {
    ssize_t r = read (fd, *buf + done, *len - done);
    if (r <= 0) {
      int e = r < 0 ? errno : EIO;
      close (fd);
      free (*buf);
      *buf = NULL;
      return np_error_set (err, NP_EXIT_RUNTIME, "%s: %s", local, strerror (e));
    }
    done += (size_t) r;
  }
  close (fd);
  return 0;
}

/* The whole replacement for a file whose data is resident: the new
 * value is written in its MFT record (one record write), read back, and
 * the old value put back if it does not read back. */
static int
replace_resident (struct direct *d, MFT_REF mref, const char *path, const char *buf, size_t len,
                  struct np_error *err)
{
  char *oldbuf = NULL;
  size_t oldlen = 0;
  struct np_error ignored;
  int r = -1;

  if (read_data (d->vol, mref, &oldbuf, &oldlen) == -1)
    return np_error_set (err, NP_EXIT_RUNTIME, "%s: cannot read %s: %s", d->path, path,
                         strerror (errno));
  trace (d, "direct: rewrite %s in its MFT record", path);
  if (set_resident (d, mref, path, buf, len, err) == -1 ||
      commit (d, "resident data rewritten", err) == -1)
    goto out;
  if (!data_equals (d, mref, buf, len)) {
    np_error_set (err, NP_EXIT_RUNTIME, "%s: %s does not read back identically; ", d->path, path);
    ignored.msg[0] = '\0';
    if (set_resident (d, mref, path, oldbuf, oldlen, &ignored) == 0 &&
        commit (d, "undo: old value back", &ignored) == 0)
      strncat (err->msg, "original put back", sizeof err->msg - strlen (err->msg) - 1);
    else
      strncat (err->msg, "putting the original back failed too",
               sizeof err->msg - strlen (err->msg) - 1);
    goto out;
  }
  r = 0;
 out:
  free (oldbuf);
  return r;
}

/* The most bytes DR's attribute record can take in its MFT record. */
static u64
record_room (const struct data_rec *dr)
{
  const MFT_RECORD *m = dr->ctx->mrec;

  return (u64) le32_to_cpu (dr->a->length) + le32_to_cpu (m->bytes_allocated) -
    le32_to_cpu (m->bytes_in_use);
}

/* Headers of an unnamed $DATA attribute record, resident and
 * non-resident (uncompressed): the value or the mapping pairs follow. */
#define RES_HEADER 0x18
#define NONRES_HEADER 0x40

/* Would a resident value of LEN bytes fit in place of DR's (resident)
 * record? */
static int
resident_fits (const struct data_rec *dr, size_t len)
{
  return (((u64) le16_to_cpu (dr->a->value_offset) + len + 7) & ~(u64) 7) <= record_room (dr);
}

/* The size of a non-resident record with runs RL, and whether it fits
 * in place of DR's (resident) one. */
static int
nonresident_fits (ntfs_volume *vol, const struct data_rec *dr, const runlist_element *rl,
                  u32 *len)
{
  int mp = ntfs_get_size_for_mapping_pairs (vol, rl, 0, INT_MAX);

  if (mp < 0)
    return 0;
  *len = (NONRES_HEADER + (u32) mp + 7) & ~7u;
  return *len <= record_room (dr);
}

/* The commit point (and its undo) when the form of the data changes: the
 * unnamed $DATA record of inode MREF is rewritten as a non-resident one
 * describing runs R, or (R NULL) as a resident one holding BUF.  Only
 * its base MFT record changes, written by ntfs_inode_close: one record
 * write, as in set_runs. */
static int
set_form (struct direct *d, MFT_REF mref, const char *path, const struct runs *r,
          const char *buf, size_t len, struct np_error *err)
{
  ntfs_inode *ni = ntfs_inode_open (d->vol, mref);
  struct data_rec dr = { NULL, NULL };
  const char *why;
  u32 newlen;
  le16 instance;
  ATTR_FLAGS flags;
  int e = 0;

  if (ni == NULL)
    return np_error_set (err, NP_EXIT_RUNTIME, "%s: cannot open %s: %s", d->path, path,
                         strerror (errno));
  if (data_record (ni, &dr, &why) == -1) {
    e = EINVAL;
    goto out;
  }
  if (r) {
    if (!nonresident_fits (d->vol, &dr, r->rl, &newlen)) {
      e = ENOSPC;
      goto out;
    }
  }
  else {
    newlen = (RES_HEADER + (u32) len + 7) & ~7u;
    if (newlen > record_room (&dr)) {
      e = ENOSPC;
      goto out;
    }
  }
  instance = dr.a->instance;
  flags = dr.a->flags;
  if (ntfs_attr_record_resize (dr.ctx->mrec, dr.a, newlen) != 0) {
    e = errno ? errno : ENOSPC;
    goto out;
  }
  /* A fresh header: type and length stay, the rest is rebuilt. */
  memset ((u8 *) dr.a + 8, 0, newlen - 8);
  dr.a->instance = instance;
  dr.a->flags = flags;
  if (r) {
    dr.a->non_resident = 1;
    dr.a->name_offset = const_cpu_to_le16 (NONRES_HEADER);
    dr.a->lowest_vcn = const_cpu_to_sle64 (0);
    dr.a->highest_vcn = cpu_to_sle64 ((r->alloc >> d->vol->cluster_size_bits) - 1);
    dr.a->mapping_pairs_offset = const_cpu_to_le16 (NONRES_HEADER);
    dr.a->allocated_size = cpu_to_sle64 (r->alloc);
    dr.a->data_size = cpu_to_sle64 (r->size);
    dr.a->initialized_size = cpu_to_sle64 (r->size);
    if (ntfs_mapping_pairs_build (d->vol, (u8 *) dr.a + NONRES_HEADER,
                                  (int) (newlen - NONRES_HEADER), r->rl, 0, NULL) != 0) {
      /* The record in memory is half rebuilt, but the inode is not
       * marked dirty: closing it writes nothing. */
      e = errno ? errno : EIO;
      goto out;
    }
    ni->data_size = r->size;
    ni->allocated_size = r->alloc;
  }
  else {
    dr.a->non_resident = 0;
    dr.a->name_offset = const_cpu_to_le16 (RES_HEADER);
    dr.a->value_length = cpu_to_le32 ((u32) len);
    dr.a->value_offset = const_cpu_to_le16 (RES_HEADER);
    memcpy ((u8 *) dr.a + RES_HEADER, buf, len);
    ni->data_size = (s64) len;
    ni->allocated_size = ((s64) len + 7) & ~7;
  }
  ntfs_inode_update_times (ni, NTFS_UPDATE_MCTIME);
  NInoFileNameSetDirty (ni);
  ntfs_inode_mark_dirty (ni);
 out:
  if (dr.ctx)
    ntfs_attr_put_search_ctx (dr.ctx);
  if (ntfs_inode_close (ni) != 0 && !e)
    e = errno;
  if (e)
    return np_error_set (err, NP_EXIT_RUNTIME, "%s: cannot switch %s to its new data: %s",
                         d->path, path, strerror (e));
  return 0;
}

/* Replace the data of the existing regular file MREF (PATH in messages,
 * NAME in traces) with BUF: the swap described above.  Returns 0 or -1
 * with *err; on failure the file holds its old data. */
static int
swap_data (struct direct *d, MFT_REF sys, const char *path, const char *name,
           const char *buf, size_t len, struct np_error *err)
{
  struct runs old = { NULL, 0, 0 }, new = { NULL, 0, 0 };
  char *oldbuf = NULL;
  size_t oldlen = 0;
  const char *why = NULL;
  int r = -1, fits, resident, in_place = 0;
  struct np_error ignored;

  /* Can the file take new runs (or a new resident value) at all?
   * Refused before anything is written. */
  {
    ntfs_inode *ni = ntfs_inode_open (d->vol, sys);
    struct data_rec dr = { NULL, NULL };
    int ok = ni != NULL && data_record (ni, &dr, &why) == 0, e;

    resident = ok && !dr.a->non_resident;
    if (ok && !resident)
      ok = get_runs (ni, &old) == 0;
    if (ok && resident)
      in_place = resident_fits (&dr, len);
    e = errno;
    if (dr.ctx)
      ntfs_attr_put_search_ctx (dr.ctx);
    if (ni)
      ntfs_inode_close (ni);
    if (!ok) {
      np_error_set (err, NP_EXIT_RUNTIME, "%s: cannot replace %s in place: %s", d->path,
                    path, why ? why : strerror (e ? e : EIO));
      goto out;
    }
  }
  if (in_place) {
    r = replace_resident (d, sys, path, buf, len, err);
    goto out;
  }
  /* Resident data that the new content would outgrow: the record is
   * rewritten as a non-resident attribute at the commit point (the
   * undo needs the old value). */
  if (resident && read_data (d->vol, sys, &oldbuf, &oldlen) == -1) {
    np_error_set (err, NP_EXIT_RUNTIME, "%s: cannot read %s: %s", d->path, path,
                  strerror (errno));
    goto out;
  }

  /* 1: the new data in clusters nothing refers to yet; flushed, read
   * back from the image. */
  trace (d, "direct: step 1: write the new %s to free clusters", name);
  if (write_clusters (d, path, buf, len, &new, err) == -1 ||
      commit (d, "step 1: new data flushed", err) == -1)
    goto drop;
  if (!clusters_equal (d, &new, buf, len)) {
    np_error_set (err, NP_EXIT_RUNTIME, "%s: the new %s does not read back identically; "
                  "original left in place", d->path, name);
    goto drop;
  }
  {
    ntfs_inode *si = ntfs_inode_open (d->vol, sys);
    struct data_rec dr = { NULL, NULL };
    u32 need;
    fits = si && data_record (si, &dr, &why) == 0 &&
      (resident ? nonresident_fits (d->vol, &dr, new.rl, &need)
       : runs_fit (d->vol, &dr, new.rl, &need));
    if (dr.ctx)
      ntfs_attr_put_search_ctx (dr.ctx);
    if (si)
      ntfs_inode_close (si);
    if (!fits) {
      np_error_set (err, NP_EXIT_RUNTIME, "%s: the new data runs of %s do not fit in its MFT "
                    "record (free space too fragmented); original left in place", d->path, path);
      goto drop;
    }
  }

  /* 2: the commit point. */
  trace (d, "direct: step 2: switch %s to the new clusters", path);
  if ((resident ? set_form (d, sys, path, &new, NULL, 0, err)
       : set_runs (d, sys, path, &new, err)) == -1) {
    /* libntfs-3g writes the record even when refreshing the directory
     * entry failed, so the switch may have happened: look.  If it did,
     * go on; if not (or if we cannot tell), the new clusters stay
     * allocated rather than be freed under a file that may use them:
     * a leak, which chkdsk reclaims. */
    ignored.msg[0] = '\0';
    if (commit (d, "after a failed switch", &ignored) == 0 && data_equals (d, sys, buf, len)) {
      warn (d, "%s (the switch was written all the same)", err->msg);
      err->msg[0] = '\0';
    }
    else
      goto out;
  }
  else if (commit (d, "step 2: the file holds the new data", err) == -1)
    goto out;

  /* 3: read back what the file now is, through the filesystem. */
  if (!data_equals (d, sys, buf, len)) {
    np_error_set (err, NP_EXIT_RUNTIME, "%s: %s does not read back identically; ", d->path, path);
    ignored.msg[0] = '\0';
    if ((resident ? set_form (d, sys, path, NULL, oldbuf, oldlen, &ignored)
         : set_runs (d, sys, path, &old, &ignored)) == 0 &&
        commit (d, "undo: old data back", &ignored) == 0)
      strncat (err->msg, "original put back", sizeof err->msg - strlen (err->msg) - 1);
    else
      strncat (err->msg, "putting the original back failed too", sizeof err->msg - strlen (err->msg) - 1);
    goto out;
  }

  /* 4: the old clusters are free. */
  trace (d, "direct: step 4: free the old data's clusters");
  if ((!resident && ntfs_cluster_free_from_rl (d->vol, old.rl) != 0) ||
      commit (d, "step 4: done", err) == -1) {
    /* The file holds the new data; only the old clusters may be left allocated. */
    warn (d, "the old clusters of %s could not be freed (chkdsk reclaims them)", path);
    err->msg[0] = '\0';
  }
  r = 0;
  goto out;

 drop:
  /* The new clusters go back; the file was not touched. */
  if (new.rl && d->vol && d->rw) {
    ignored.msg[0] = '\0';
    ntfs_cluster_free_from_rl (d->vol, new.rl);
    commit (d, "new clusters given back", &ignored);
  }
 out:
  free (old.rl);
  free (new.rl);
  free (oldbuf);
  return r;
}

static int
direct_replace (struct disk *dk, const char *name, const char *local, const char *scratch,
                struct np_error *err)
{
  struct direct *d = (struct direct *) dk;
  MFT_REF sys;
  unsigned dt;
  char *buf = NULL, *path = NULL;
  size_t len = 0;
  int r = -1, l;

  (void) scratch;                      /* compared in memory */
  if (read_local (local, &buf, &len, err) == -1)
    return -1;
  if (mount_rw (d, err) == -1)
    goto out;
  if (asprintf (&path, "%s/%s", d->config_dir, name) == -1) {
    path = NULL;
    np_error_set (err, NP_EXIT_RUNTIME, "out of memory");
    goto out;
  }
  l = lookup (d->vol, d->config, name, &sys, &dt, NULL);
  if (l != 1 || dt != NTFS_DT_REG) {
    np_error_set (err, NP_EXIT_RUNTIME, "%s: %s %s", d->path, path,
                  l < 0 ? strerror (errno) : "is not a regular file");
    goto out;
  }
  r = swap_data (d, sys, path, name, buf, len, err);
 out:
  free (path);
  free (buf);
  return r;
}

/* --- other files of the volume (--defer) ------------------------------
 *
 * read_file, write_file and remove_file work on any file of the Windows
 * volume, named by an absolute '/'-separated path matched one component
 * at a time, case-insensitively (the exact spelling preferred), as
 * lookup() does for the hive.
 *
 * An existing file is replaced by the swap above: its data changes by
 * one MFT record write (new runs, a new resident value, or a resident
 * value turned into runs), with no directory change at all.  Not by a
 * temporary file renamed over it: libntfs-3g has no rename, and with
 * ntfs_link and ntfs_delete the old name would have to go before the
 * new one can take its place, so a crash in between would leave no file
 * at all.
 *
 * A new file has to appear in its directory, and ntfs_create makes the
 * name and an empty file at once.  So it is created under a temporary
 * name beside the final one, written, flushed and read back; only then
 * is the final name linked to it (ntfs_link) and flushed, and the
 * temporary name deleted (ntfs_delete).  The final name therefore never
 * names anything but the complete new content: before the link a reader
 * finds no file (the old state), after it the new one.  A crash can
 * leave the temporary name (empty, partial or complete, with or without
 * the final name as a second link to it): the next write of that path
 * deletes it first.  Missing directories are created the same way,
 * one at a time, each flushed before anything goes into it.  Each step
 * ends with commit(): everything so far is in the image before the next
 * step starts.
 *
 * What this cannot make crash-proof is libntfs-3g's own ordering inside
 * one ntfs_create, ntfs_link or ntfs_delete (see "the swap": the
 * directory index and the inode's record are written separately, and a
 * new MFT record or a full index root may need more).  A kill inside
 * one of those may leave the directory needing chkdsk, never a final
 * name with partial content.  The files --defer writes are small and
 * their directories hold a handful of entries, so the index stays in
 * the directory's own record; only creating \Windows\System32\GroupPolicy
 * itself changes a large directory.
 *
 * New files and directories get the security descriptor Windows would
 * give them, inherited from their directory (ntfs_inherited_id: the
 * inheritable ACEs, owner and group of the parent), not ntfs-3g's default
 * of full control for Everyone, which for a startup script run as SYSTEM
 * would let any user of the guest run code as SYSTEM.  Only where
 * nothing can be inherited (an NTFS 1.x volume) is ntfs-3g's default
 * used. */

/* Suffix of the temporary name a new file is written under, the same
 * as the appliance backend's. */
#define TMP_SUFFIX ".netvsc-patch.tmp"

/* Make ERR's message name the guest PATH: "IMAGE: PATH: reason". */
static void
with_guest_path (const struct direct *d, const char *path, struct np_error *err)
{
  char rest[sizeof err->msg];
  size_t n = strlen (d->path);
  const char *from = err->msg;

  if (strstr (err->msg, path))
    return;
  if (strncmp (from, d->path, n) == 0 && strncmp (from + n, ": ", 2) == 0)
    from += n + 2;
  snprintf (rest, sizeof rest, "%s", from);
  snprintf (err->msg, sizeof err->msg, "%s: %s: %.*s", d->path, path,
            (int) (sizeof err->msg / 2), rest);
}

/* The security id a new file or directory in DIR_NI gets: inherited
 * from DIR_NI as Windows does, or 0 (libntfs-3g's default) if nothing
 * can be. */
static le32
inherited_securid (struct direct *d, ntfs_inode *dir_ni, int fordir)
{
  struct PERMISSIONS_CACHE *cache = NULL;
  struct SECURITY_CONTEXT scx;
  le32 id;

  memset (&scx, 0, sizeof scx);
  scx.vol = d->vol;
  scx.pseccache = &cache;              /* no user mapping: owner and group */
  id = ntfs_inherited_id (&scx, dir_ni, fordir);    /* are the parent's */
  ntfs_destroy_security_context (&scx);
  return id;
}

/* Create NAME (a directory if DIR, else an empty file) in directory
 * PARENT, and flush.  *MREF is the new inode. */
static int
create_in (struct direct *d, MFT_REF parent, const char *name, int dir, MFT_REF *mref,
           const char *shown, struct np_error *err)
{
  ntfschar *uname = NULL;
  int ulen = ntfs_mbstoucs (name, &uname), e = 0;
  ntfs_inode *dir_ni = NULL, *ni = NULL;
  le32 securid;

  if (ulen <= 0 || ulen > 255) {
    e = ulen <= 0 ? errno : ENAMETOOLONG;
    goto out;
  }
  dir_ni = ntfs_inode_open (d->vol, parent);
  if (dir_ni == NULL) {
    e = errno;
    goto out;
  }
  securid = inherited_securid (d, dir_ni, dir);
  ni = ntfs_create (dir_ni, securid, uname, (u8) ulen, dir ? S_IFDIR : S_IFREG);
  if (ni == NULL) {
    e = errno ? errno : EIO;
    goto out;
  }
  *mref = MK_MREF (ni->mft_no, le16_to_cpu (ni->mrec->sequence_number));
  trace (d, "direct: created %s%s (inode %llu, %s security descriptor)", shown,
         dir ? "/" : "", (unsigned long long) ni->mft_no, securid ? "inherited" : "default");
  if (!securid)
    warn (d, "%s: nothing to inherit from its directory: it has ntfs-3g's default security "
          "descriptor (full control for Everyone)", shown);
 out:
  /* The new inode's record first, then the directory that names it. */
  if (ni && ntfs_inode_close (ni) != 0 && !e)
    e = errno;
  if (dir_ni && ntfs_inode_close (dir_ni) != 0 && !e)
    e = errno;
  free (uname);
  if (e)
    return np_error_set (err, NP_EXIT_RUNTIME, "%s: cannot create %s: %s", d->path, shown,
                         strerror (e));
  return commit (d, dir ? "directory created" : "file created", err);
}

/* Delete the name NAME (spelt as on disk) of inode MREF from directory
 * DIR, and flush. */
static int
delete_name (struct direct *d, MFT_REF dir, MFT_REF mref, const char *name, const char *shown,
             struct np_error *err)
{
  ntfschar *uname = NULL;
  int ulen = ntfs_mbstoucs (name, &uname), e = 0;
  ntfs_inode *ni = NULL, *dir_ni = NULL;

  if (ulen <= 0 || ulen > 255) {
    e = ulen <= 0 ? errno : ENAMETOOLONG;
    goto out;
  }
  ni = ntfs_inode_open (d->vol, mref);
  dir_ni = ni ? ntfs_inode_open (d->vol, dir) : NULL;
  if (dir_ni == NULL) {
    e = errno;
    if (ni)
      ntfs_inode_close (ni);
    goto out;
  }
  trace (d, "direct: delete %s", shown);
  /* It closes both inodes, whatever happens. */
  if (ntfs_delete (d->vol, NULL, ni, dir_ni, uname, (u8) ulen) != 0)
    e = errno ? errno : EIO;
 out:
  free (uname);
  if (e)
    return np_error_set (err, NP_EXIT_RUNTIME, "%s: cannot delete %s: %s", d->path, shown,
                         strerror (e));
  return commit (d, "name deleted", err);
}

/* Walk PATH's directories (COMPS[0..N-2]) from the root.  Returns 1 and
 * *DIR, 0 if one is missing and !CREATE, -1 with *err.  With CREATE the
 * missing ones are made, in the case PATH spells them. */
static int
walk_dirs (struct direct *d, const char *path, char **comps, size_t n, int create,
           MFT_REF *dir, struct np_error *err)
{
  MFT_REF cur = FILE_root, next;
  char shown[PATH_MAX] = "";

  for (size_t i = 0; i + 1 < n; i++) {
    unsigned dt;
    char *spelt = NULL;
    int l = lookup (d->vol, cur, comps[i], &next, &dt, &spelt);

    snprintf (shown + strlen (shown), sizeof shown - strlen (shown), "/%s",
              spelt ? spelt : comps[i]);
    free (spelt);
    if (l < 0)
      return np_error_set (err, NP_EXIT_RUNTIME, "%s: %s: cannot read the directory %s: %s",
                           d->path, path, i ? shown : "/", strerror (errno));
    if (l == 1 && dt != NTFS_DT_DIR)
      return np_error_set (err, NP_EXIT_RUNTIME, "%s: %s: %s is not a directory", d->path,
                           path, shown);
    if (l == 0) {
      if (!create)
        return 0;
      if (create_in (d, cur, comps[i], 1, &next, shown, err) == -1) {
        with_guest_path (d, path, err);
        return -1;
      }
    }
    cur = next;
  }
  *dir = cur;
  return 1;
}

/* The regular file PATH: 1 and *MREF, *SPELT (its name as on disk,
 * malloc'd) and *DIR, 0 if absent, -1 with *err. */
static int
find_file (struct direct *d, const char *path, MFT_REF *dir, MFT_REF *mref, char **spelt,
           struct np_error *err)
{
  char *buf, **comps;
  size_t n;
  unsigned dt;
  int r;

  *spelt = NULL;
  if (disk_path_split (d->path, path, &buf, &comps, &n, err) == -1)
    return -1;
  r = walk_dirs (d, path, comps, n, 0, dir, err);
  if (r == 1) {
    r = lookup (d->vol, *dir, comps[n - 1], mref, &dt, spelt);
    if (r < 0)
      r = np_error_set (err, NP_EXIT_RUNTIME, "%s: %s: cannot read its directory: %s",
                        d->path, path, strerror (errno));
    else if (r == 1 && dt != NTFS_DT_REG) {
      free (*spelt);
      *spelt = NULL;
      r = np_error_set (err, NP_EXIT_RUNTIME, "%s: %s: not a regular file%s", d->path, path,
                        dt == NTFS_DT_DIR ? " (a directory)" : "");
    }
  }
  free (comps);
  free (buf);
  return r;
}

static int
direct_read_file (struct disk *dk, const char *path, char **buf, size_t *len,
                  struct np_error *err)
{
  struct direct *d = (struct direct *) dk;
  MFT_REF dir, mref;
  char *spelt = NULL, *data = NULL;
  size_t n = 0;
  int r;

  *buf = NULL;
  *len = 0;
  if (mount_ro (d, err) == -1) {
    with_guest_path (d, path, err);
    return -1;
  }
  r = find_file (d, path, &dir, &mref, &spelt, err);
  free (spelt);
  if (r != 1)
    return r == 0 ? 1 : -1;
  if (read_data (d->vol, mref, &data, &n) == -1)
    return np_error_set (err, NP_EXIT_RUNTIME, "%s: %s: cannot read it: %s", d->path, path,
                         strerror (errno));
  /* one more byte for the NUL the contract promises */
  *buf = realloc (data, n + 1);
  if (*buf == NULL) {
    free (data);
    return np_error_set (err, NP_EXIT_RUNTIME, "out of memory");
  }
  (*buf)[n] = '\0';
  *len = n;
  trace (d, "direct: read %s (%zu bytes)", path, n);
  return 0;
}

/* Bytes a $FILE_NAME attribute of a ULEN-character name takes in an
 * MFT record: resident header, the fixed part, the name, 8-aligned. */
static uint32_t
filename_attr_size (int ulen)
{
  return (uint32_t) ((0x18 + 0x42 + 2 * ulen + 7) & ~7);
}

/* A new file NAME in directory DIR holding BUF, the way described above. */
static int
create_file (struct direct *d, MFT_REF dir, const char *name, const char *path,
             const char *buf, size_t len, struct np_error *err)
{
  char *tmpname = NULL, *shown = NULL, *spelt = NULL;
  ntfschar *uname = NULL;
  ntfs_inode *ni = NULL, *dir_ni = NULL;
  ntfs_attr *na = NULL;
  MFT_REF tmp, got;
  unsigned dt;
  int ulen, e = 0, r = -1;

  if (asprintf (&tmpname, "%s%s", name, TMP_SUFFIX) == -1 ||
      asprintf (&shown, "%s%s", path, TMP_SUFFIX) == -1) {
    tmpname = shown = NULL;
    np_error_set (err, NP_EXIT_RUNTIME, "out of memory");
    goto out;
  }
  ulen = ntfs_mbstoucs (name, &uname);
  if (ulen <= 0 || ulen > 255) {
    np_error_set (err, NP_EXIT_RUNTIME, "%s: %s: %s", d->path, path,
                  strerror (ulen <= 0 ? errno : ENAMETOOLONG));
    goto out;
  }

  /* 1: the content under the temporary name, flushed, read back. */
  if (create_in (d, dir, tmpname, 0, &tmp, shown, err) == -1)
    goto out;
  trace (d, "direct: write %zu bytes to %s", len, shown);
  ni = ntfs_inode_open (d->vol, tmp);
  na = ni ? ntfs_attr_open (ni, AT_DATA, AT_UNNAMED, 0) : NULL;
  if (na == NULL || (len && ntfs_attr_pwrite (na, 0, (s64) len, buf) != (s64) len))
    e = errno ? errno : EIO;
  /* The link of step 2 adds a second $FILE_NAME to this record; with
   * resident data (a few hundred bytes) it may not fit, and ntfs_link
   * then fails with EIO.  Move the data to clusters first. */
  if (!e && na && !NAttrNonResident (na) &&
      le32_to_cpu (ni->mrec->bytes_in_use) + filename_attr_size (ulen) >
      d->vol->mft_record_size) {
    trace (d, "direct: %s: data made non-resident, for the second name", shown);
    if (ntfs_attr_force_non_resident (na) != 0)
      e = errno ? errno : EIO;
  }
  if (na)
    ntfs_attr_close (na);
  if (ni && ntfs_inode_close (ni) != 0 && !e)
    e = errno;
  ni = NULL;
  if (e) {
    np_error_set (err, NP_EXIT_RUNTIME, "%s: cannot write %s: %s", d->path, shown,
                  strerror (e));
    goto drop;
  }
  if (commit (d, "temporary file written", err) == -1)
    goto drop;
  if (!data_equals (d, tmp, buf, len)) {
    np_error_set (err, NP_EXIT_RUNTIME, "%s: %s does not read back identically; nothing "
                  "written under the final name", d->path, shown);
    goto drop;
  }

  /* 2: the commit point: the final name links to the complete file. */
  trace (d, "direct: link %s to it", path);
  ni = ntfs_inode_open (d->vol, tmp);
  dir_ni = ni ? ntfs_inode_open (d->vol, dir) : NULL;
  if (dir_ni == NULL || ntfs_link (ni, dir_ni, uname, (u8) ulen) != 0)
    e = errno ? errno : EIO;
  /* The file's record (its new name) first, then the directory's. */
  if (ni && ntfs_inode_close (ni) != 0 && !e)
    e = errno;
  if (dir_ni && ntfs_inode_close (dir_ni) != 0 && !e)
    e = errno;
  ni = dir_ni = NULL;
  if (e) {
    np_error_set (err, NP_EXIT_RUNTIME, "%s: cannot link %s to the new file: %s", d->path,
                  path, strerror (e));
    goto drop;
  }
  if (commit (d, "final name linked", err) == -1)
    goto out;
  if (lookup (d->vol, dir, name, &got, &dt, NULL) != 1 || MREF (got) != MREF (tmp) ||
      !data_equals (d, got, buf, len)) {
    np_error_set (err, NP_EXIT_RUNTIME, "%s: %s does not read back identically after the "
                  "link", d->path, path);
    goto out;
  }

  /* 3: the temporary name goes.  The file is in place whatever happens
   * here: a failure only leaves the temporary name behind. */
  if (lookup (d->vol, dir, tmpname, &got, &dt, &spelt) == 1 && MREF (got) == MREF (tmp) &&
      delete_name (d, dir, tmp, spelt ? spelt : tmpname, shown, err) == -1) {
    warn (d, "%s (left behind; the next write of %s removes it)", err->msg, path);
    err->msg[0] = '\0';
  }
  r = 0;
  goto out;

 drop:
  /* Nothing names the new file but the temporary name: delete it. */
  if (d->vol && d->rw) {
    struct np_error ignored;
    ignored.msg[0] = '\0';
    if (lookup (d->vol, dir, tmpname, &got, &dt, &spelt) == 1 && MREF (got) == MREF (tmp))
      delete_name (d, dir, tmp, spelt ? spelt : tmpname, shown, &ignored);
  }
 out:
  free (spelt);
  free (uname);
  free (shown);
  free (tmpname);
  return r;
}

static int
direct_write_file (struct disk *dk, const char *path, const char *buf, size_t len,
                   struct np_error *err)
{
  struct direct *d = (struct direct *) dk;
  char *pbuf = NULL, **comps = NULL, *spelt = NULL, *tmpname = NULL, *shown = NULL;
  size_t n;
  MFT_REF dir, mref, stale;
  unsigned dt;
  int l, r = -1;

  if (disk_path_split (d->path, path, &pbuf, &comps, &n, err) == -1)
    return -1;
  /* Refuses a hibernated volume before anything is written. */
  if (mount_rw (d, err) == -1)
    goto out;
  if (walk_dirs (d, path, comps, n, 1, &dir, err) == -1)
    goto out;

  /* A temporary name left by a crash: it only ever names our own
   * temporary file (possibly also linked under the final name). */
  if (asprintf (&tmpname, "%s%s", comps[n - 1], TMP_SUFFIX) == -1 ||
      asprintf (&shown, "%s%s", path, TMP_SUFFIX) == -1) {
    tmpname = shown = NULL;
    np_error_set (err, NP_EXIT_RUNTIME, "out of memory");
    goto out;
  }
  l = lookup (d->vol, dir, tmpname, &stale, &dt, &spelt);
  if (l == 1 && dt != NTFS_DT_REG) {
    np_error_set (err, NP_EXIT_RUNTIME, "%s: %s: %s is in the way (not a regular file)",
                  d->path, path, shown);
    goto out;
  }
  if (l == 1 && delete_name (d, dir, stale, spelt ? spelt : tmpname, shown, err) == -1)
    goto out;
  free (spelt);
  spelt = NULL;

  l = lookup (d->vol, dir, comps[n - 1], &mref, &dt, &spelt);
  if (l < 0) {
    np_error_set (err, NP_EXIT_RUNTIME, "%s: %s: cannot read its directory: %s", d->path,
                  path, strerror (errno));
    goto out;
  }
  if (l == 1 && dt != NTFS_DT_REG) {
    np_error_set (err, NP_EXIT_RUNTIME, "%s: %s: not a regular file%s", d->path, path,
                  dt == NTFS_DT_DIR ? " (a directory)" : "");
    goto out;
  }
  if (l == 1) {
    trace (d, "direct: replace the data of %s (%zu bytes)", path, len);
    r = swap_data (d, mref, path, spelt ? spelt : comps[n - 1], buf, len, err);
  }
  else {
    trace (d, "direct: new file %s (%zu bytes)", path, len);
    r = create_file (d, dir, comps[n - 1], path, buf, len, err);
  }
 out:
  if (r == -1)
    with_guest_path (d, path, err);
  free (shown);
  free (tmpname);
  free (spelt);
  free (comps);
  free (pbuf);
  return r;
}

static int
direct_remove_file (struct disk *dk, const char *path, struct np_error *err)
{
  struct direct *d = (struct direct *) dk;
  MFT_REF dir, mref;
  char *spelt = NULL;
  int r;

  /* Absent is success, and needs no write (nor a writable volume). */
  if (mount_ro (d, err) == -1) {
    with_guest_path (d, path, err);
    return -1;
  }
  r = find_file (d, path, &dir, &mref, &spelt, err);
  /* (ntfs_delete also matches a name ignoring case: PATH's spelling
   * would do if the on-disk one could not be converted) */
  if (r == 1 && mount_rw (d, err) == 0)
    r = delete_name (d, dir, mref, spelt ? spelt : strrchr (path, '/') + 1, path, err) == 0
      ? 0 : -1;
  else if (r == 1)
    r = -1;
  free (spelt);
  if (r == -1)
    with_guest_path (d, path, err);
  return r == -1 ? -1 : 0;
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
    r = ntfs_failed (d, err, "cannot unmount the Windows volume; writes may not be on disk",
                     errno);
  /* Everything is flushed at each unmount already; one more flush makes
   * "close succeeded" mean "in the image file" whatever happened before. */
  if (!d->readonly && nbd_flush (d->nbd, 0) == -1 && r == 0)
    r = nbd_failed (d, err, "flushing the image failed; writes may not be on disk");
  if (nbd_shutdown (d->nbd, 0) == -1 && r == 0)
    r = nbd_failed (d, err, "qemu-nbd did not shut down cleanly; writes may not be on disk");
  nbd_close (d->nbd);
  d->nbd = NULL;
  /* qemu-nbd exits once the client is gone, closing the image (and
   * releasing qemu's lock on it) first. */
  status = reap_qemu_nbd (d, 30000);
  if (r == 0 && (status == -1 || !WIFEXITED (status) || WEXITSTATUS (status) != 0)) {
    qemu_message (d, qmsg, sizeof qmsg);
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
