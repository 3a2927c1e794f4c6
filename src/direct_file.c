/* netvsc-patch: the direct backend without qemu-nbd, for the formats
 * whose disk is the file's bytes as they are: raw, and a fixed VHD (raw
 * data followed by a 512-byte footer).  Starting qemu-nbd (exec, its
 * libraries, the NBD handshake) and carrying every byte through a socket
 * cost about as much as the rest of a --direct run; here the image is
 * read and written with pread/pwrite, flushed with fdatasync, and what
 * qemu would have enforced is enforced here:
 *  - qemu's own locks (OFD locks on bytes 100+ and 200+ of the file, the
 *    protocol of qemu's file-posix driver), taken before anything is
 *    read and checked after, so that a VM running on the image (or one
 *    started while we work) and we exclude each other exactly as with
 *    qemu-nbd;
 *  - the disk's bounds: a fixed VHD's footer is outside the disk, never
 *    written; a footer whose checksum fails, or that describes more data
 *    than the file holds (a truncated image), is refused or left to qemu.
 * Dynamic VHD, VHDX, qcow2, VMDK and any image naming other files keep
 * qemu-nbd: their layout is qemu's business. */

#include "direct-internal.h"
#include "directfile.h"
#include "uri.h"
#include "hostfile.h"

/* qemu's file-posix lock bytes: 100 + permission bit held, 200 +
 * permission bit not shared with others. */
#define QEMU_LOCK_PERM_BASE 100
#define QEMU_LOCK_SHARED_BASE 200
enum {
  PERM_CONSISTENT_READ = 1 << 0, PERM_WRITE = 1 << 1, PERM_WRITE_UNCHANGED = 1 << 2,
  PERM_RESIZE = 1 << 3, PERM_BITS = 4
};
static const char *const perm_names[PERM_BITS] = {
  "consistent read", "write", "write unchanged", "resize"
};

/* The footer of a fixed VHD (big-endian fields). */
#define VHD_FOOTER 512
#define VHD_TYPE_FIXED 2

static uint32_t
footer_checksum (const unsigned char *f)
{
  uint32_t sum = 0;

  for (int i = 0; i < VHD_FOOTER; i++)
    if (i < 64 || i >= 68)
      sum += f[i];
  return ~sum;
}

/* What the file at FD (STAT'd as ST) holds for FORMAT.  Returns 1 with
 * *DATA the size of the disk if this backend reads it itself, 0 if
 * qemu-nbd must serve it, -1 with *WHY if it must be refused. */
static int
classify (int fd, const struct stat *st, const char *format, uint64_t *data, const char **why)
{
  unsigned char f[VHD_FOOTER];
  uint64_t size, current;
  off_t end;

  *why = NULL;
  if (!S_ISREG (st->st_mode) && !S_ISBLK (st->st_mode))
    return 0;
  end = lseek (fd, 0, SEEK_END);
  if (end < 0)
    return 0;
  size = (uint64_t) end;
  if (strcmp (format, "raw") == 0) {
    *data = size;
    return 1;
  }
  if (strcmp (format, "vpc") != 0 || size < 2 * VHD_FOOTER ||
      pread (fd, f, VHD_FOOTER, end - VHD_FOOTER) != VHD_FOOTER ||
      memcmp (f, "conectix", 8) != 0 || get_be32 (f + 60) != VHD_TYPE_FIXED)
    return 0;                   /* dynamic, 511-byte footer, ...: qemu's */
  if (get_be32 (f + 64) != footer_checksum (f))
    return 0;                   /* qemu says what is wrong with it */
  current = get_be64 (f + 48);
  if (current > size - VHD_FOOTER) {
    *why = "a truncated fixed VHD (its footer describes more data than the file holds)";
    return -1;
  }
  if (current != size - VHD_FOOTER || current % SECTOR)
    return 0;                   /* unusual: qemu's rules for its size */
  *data = current;
  return 1;
}

int
direct_file_serves (const char *path, const char *format, const char *qemu_spec)
{
  struct stat st;
  uint64_t data;
  const char *why;
  int fd, r;

  if (qemu_spec || uri_looks_like (path))
    return 0;
  fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd == -1)
    return 0;
  r = fstat (fd, &st) == 0 ? classify (fd, &st, format, &data, &why) : 0;
  close (fd);
  return r != 0;
}

/* One of qemu's lock bytes at OFF: taken shared (1), or tested for any
 * other holder (0: returns 1 if someone holds it). */
static int
lock_byte (int fd, int off, int take)
{
  struct flock fl = { .l_type = take ? F_RDLCK : F_WRLCK, .l_whence = SEEK_SET,
                      .l_start = off, .l_len = 1 };

  if (take)
    return fcntl (fd, F_OFD_SETLK, &fl);
  if (fcntl (fd, F_OFD_GETLK, &fl) == -1)
    return -1;
  return fl.l_type != F_UNLCK;
}

/* qemu's raw_apply_lock_bytes then raw_check_lock_bytes, with the
 * permissions qemu-nbd -f raw takes (read, and write unless read-only;
 * seen in /proc/locks: bytes 100-101 and 203), except that write is not
 * shared either: qemu's raw driver lets a second writer that shares
 * write (qemu-io, a VM with share-rw=on) in, and a registry patch under
 * a live writer is what the lock is there to prevent.  0; 1 if another
 * process holds a conflicting lock, -1 if locks cannot be taken here;
 * *WHAT says which, in qemu's words. */
static int
qemu_locks (int fd, int readonly, char *what, size_t len)
{
  unsigned perm = PERM_CONSISTENT_READ | (readonly ? 0 : PERM_WRITE);
  unsigned unshared = PERM_WRITE | PERM_RESIZE;

  for (int k = 0; k < 2 * PERM_BITS; k++) {
    int i = k % PERM_BITS, off = k < PERM_BITS ? QEMU_LOCK_PERM_BASE + i
      : QEMU_LOCK_SHARED_BASE + i;
    if (((k < PERM_BITS ? perm : unshared) & (1u << i)) && lock_byte (fd, off, 1) == -1) {
      /* a conflicting write lock (EAGAIN), or no OFD locks here */
      int busy = errno == EAGAIN || errno == EACCES;
      snprintf (what, len, "Failed to lock byte %d: %s", off, strerror (errno));
      return busy ? 1 : -1;
    }
  }
  /* Someone else does not share a permission we hold... */
  for (int i = 0; i < PERM_BITS; i++)
    if ((perm & (1u << i)) && lock_byte (fd, QEMU_LOCK_SHARED_BASE + i, 0) != 0) {
      snprintf (what, len, "Failed to get \"%s\" lock", perm_names[i]);
      return 1;
    }
  /* ... or holds one we do not share. */
  for (int i = 0; i < PERM_BITS; i++)
    if ((unshared & (1u << i)) && lock_byte (fd, QEMU_LOCK_PERM_BASE + i, 0) != 0) {
      snprintf (what, len, "Failed to get shared \"%s\" lock", perm_names[i]);
      return 1;
    }
  return 0;
}

int
direct_file_open (struct direct *d, const struct disk_request *req, struct np_error *err)
{
  struct stat st;
  uint64_t data = 0;
  const char *why;
  char what[128], holder[128];
  int fd, r, ours;

  /* a URI, or layers qemu must join: qemu-nbd or libnbd serve it */
  if (req->qemu_spec || uri_looks_like (req->path))
    return 0;
  fd = open (req->path, (req->readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
  if (fd == -1)
    return np_error_set (err, NP_EXIT_RUNTIME, "%s: cannot open: %s", d->path, strerror (errno));
  if (fstat (fd, &st) == -1) {
    np_error_set (err, NP_EXIT_RUNTIME, "%s: %s", d->path, strerror (errno));
    goto fail;
  }
  /* Locked first (a VM cannot start under us from here), then looked
   * at: what we classify is what we patch. */
  r = qemu_locks (fd, req->readonly, what, sizeof what);
  if (r == -1) {                /* as qemu: no locking, no opening */
    close (fd);
    return np_error_set (err, NP_EXIT_RUNTIME, "%s: cannot take qemu's locks on the image: %s",
                         d->path, what);
  }
  if (r == 1) {
    close (fd);                 /* our locks go: only the other holder is left */
    ours = hostfile_lock_holder (st.st_dev, st.st_ino, holder, sizeof holder);
    if (ours == 1)
      return np_error_set (err, NP_EXIT_RUNTIME, "%s: the image is in use by another run of "
                           "netvsc-patch (%s): try again when it is done", d->path, holder);
    return np_error_set (err, NP_EXIT_RUNTIME,
                         "%s: the image is in use by another process (is the VM running?)"
                         "%s%s%s: %s", d->path, holder[0] ? " (" : "", holder,
                         holder[0] ? ")" : "", what);
  }
  r = classify (fd, &st, req->format, &data, &why);
  if (r == -1) {
    np_error_set (err, NP_EXIT_RUNTIME, "%s: %s; nothing was written", d->path, why);
    goto fail;
  }
  if (r == 0) {
    close (fd);
    return 0;
  }
  d->io = (struct nbd_io) { NULL, 1, fd, data, 0 };
  d->disk_size = data;
  direct_trace (d, "direct: in place, no qemu-nbd (%s, %llu bytes of disk)",
                strcmp (req->format, "raw") == 0 ? "raw" : "fixed VHD",
                (unsigned long long) data);
  return 1;

 fail:
  close (fd);
  return -1;
}

int
direct_file_close (struct direct *d, struct np_error *err)
{
  int r = 0, fd = d->io.fd;

  d->io.fd = -1;
  if (fd < 0)
    return 0;
  /* Every step was flushed already; this makes "close succeeded" mean
   * "in the image file", as the NBD path's last flush does. */
  if (!d->readonly && fdatasync (fd) == -1)
    r = np_error_set (err, NP_EXIT_RUNTIME, "%s: flushing the image failed; writes may not "
                      "be on disk: %s", d->path, strerror (errno));
  if (close (fd) == -1 && r == 0)
    r = np_error_set (err, NP_EXIT_RUNTIME, "%s: closing the image failed; writes may not "
                      "be on disk: %s", d->path, strerror (errno));
  return r;
}
