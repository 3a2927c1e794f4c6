/* netvsc-patch: the direct backend's NBD export as a libntfs-3g device:
 * aligned, chunked NBD requests, and the ntfs_device_operations over a
 * window (one partition) of the export. */

#include "direct-internal.h"

/* --- NBD access ------------------------------------------------------ *
 *
 * An NBD server may advertise a minimum block size (qemu-nbd does for
 * VHDX: 512) and libnbd then rejects requests not aligned to it, while
 * ntfs-3g reads and writes a few bytes at a time (bitmaps).  Unaligned
 * ends go through a bounce block: read, or read-modify-write (one
 * process owns the export, so that is not a race). */

/* The image file itself (direct_file.c): no alignment, and nothing
 * past the disk (a fixed VHD's footer) is ever read or written.  -1
 * with errno. */
static int
file_io (const struct nbd_io *io, int write, void *buf, uint64_t count, uint64_t offset)
{
  if (offset > io->size || count > io->size - offset) {
    errno = write ? ENOSPC : EIO;
    return -1;
  }
  while (count > 0) {
    ssize_t n = write ? pwrite (io->fd, buf, count, (off_t) offset)
      : pread (io->fd, buf, count, (off_t) offset);
    if (n == -1 && errno == EINTR)
      continue;
    if (n <= 0) {
      if (n == 0)
        errno = EIO;
      return -1;
    }
    buf = (char *) buf + n;
    offset += (uint64_t) n;
    count -= (uint64_t) n;
  }
  return 0;
}

/* errno after a failed request of IO. */
static int
io_errno (const struct nbd_io *io, int e)
{
  if (io->nbd == NULL)
    return e ? e : EIO;
  return nbd_get_errno () ? nbd_get_errno () : EIO;
}

static int
nbd_io (const struct nbd_io *io, int write, void *buf, uint64_t count, uint64_t offset)
{
  unsigned char bounce[65536];

  if (io->nbd == NULL)
    return file_io (io, write, buf, count, offset);
  while (count > 0) {
    uint64_t skew = offset % io->align, n;
    int r;

    if (skew == 0 && count >= io->align) {
      uint64_t chunk = io->max ? io->max : NBD_CHUNK;
      n = count > chunk ? chunk : count - count % io->align;
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
int
direct_disk_read (struct direct *d, void *buf, size_t len, uint64_t offset, struct np_error *err)
{
  size_t n = len;

  memset (buf, 0, len);
  if (offset >= d->disk_size)
    return 0;
  if (offset + n > d->disk_size)
    n = d->disk_size - offset;
  if (nbd_read_chunked (&d->io, buf, n, offset) == -1)
    return d->io.nbd ? direct_nbd_failed (d, err, "cannot read the image")
      : direct_ntfs_failed (d, err, "cannot read the image", errno);
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
   * included) and fdatasyncs the image file before answering.  The
   * image file itself: the same fdatasync, here. */
  if (w->io.nbd == NULL ? fdatasync (w->io.fd) == -1 : nbd_flush (w->io.nbd, 0) == -1) {
    errno = io_errno (&w->io, errno);
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
    errno = io_errno (&w->io, errno);
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
    errno = io_errno (&w->io, errno);
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

void
nbd_device_ops_init (struct ntfs_device_operations *ops)
{
  *ops = (struct ntfs_device_operations) {
    .open = win_open, .close = win_close, .seek = win_seek, .read = win_read,
    .write = win_write, .pread = win_pread, .pwrite = win_pwrite, .sync = win_flush,
    .stat = win_stat, .ioctl = win_ioctl,
  };
}

/* --- a remote export ------------------------------------------------ */

int
direct_connect_uri (struct direct *d, struct np_error *err)
{
  /* Straight to the server (uri.h has checked the URI's form): no
   * qemu-nbd, and nothing on this host interprets the bytes as an image
   * format.  No local files named by the URI (TLS keys) are read. */
  if (nbd_set_uri_allow_local_file (d->nbd, false) == -1 ||
      nbd_connect_uri (d->nbd, d->path) == -1)
    return direct_nbd_failed (d, err, "cannot connect to the NBD server");
  d->remote = 1;
  direct_trace (d, "direct: connected to the NBD server");
  return 0;
}
