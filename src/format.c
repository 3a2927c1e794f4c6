/* netvsc-patch: image format detection by magic. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bytes.h"
#include "format.h"

const char *const format_names[] = { "raw", "vpc", "vhdx", "qcow2", "vmdk", "vdi", "qed",
                                      NULL };

const char *
format_canonical (const char *name)
{
  if (strcasecmp (name, "vhd") == 0)
    return "vpc";
  for (size_t i = 0; format_names[i]; i++)
    if (strcasecmp (name, format_names[i]) == 0)
      return format_names[i];
  return NULL;
}

static int
read_at (int fd, void *buf, size_t len, off_t off)
{
  ssize_t r = pread (fd, buf, len, off);
  return r == (ssize_t) len ? 0 : -1;
}

const char *
format_of_fd (int fd, const struct stat *st)
{
  unsigned char head[512], tail[512];
  const char *fmt = "raw";

  /* A VMDK descriptor is a small text file: read what there is. */
  size_t want = S_ISREG (st->st_mode) && st->st_size < (off_t) sizeof head
    ? (size_t) st->st_size : sizeof head;
  memset (head, 0, sizeof head);
  errno = 0;
  if (read_at (fd, head, want, 0) == -1)
    return NULL;
  if (memcmp (head, "vhdxfile", 8) == 0)
    fmt = "vhdx";
  else if (memcmp (head, "QFI\xfb", 4) == 0)
    fmt = "qcow2";
  else if (memcmp (head, "KDMV", 4) == 0 ||
           memcmp (head, "# Disk DescriptorFile", 21) == 0)
    fmt = "vmdk";
  else if (memcmp (head, "conectix", 8) == 0)
    fmt = "vpc";                /* dynamic VHD: footer copy at offset 0 */
  else if (memcmp (head, "QED\0", 4) == 0)
    fmt = "qed";
  /* VirtualBox: a text line, then the signature at 0x40 (qemu's probe
   * also wants version 1.1; any other version is still a VDI, which
   * qemu then refuses by name rather than being read as raw) */
  else if (get_le32 (head + 0x40) == 0xbeda107fu)
    fmt = "vdi";
  else if (S_ISREG (st->st_mode)) {
    /* Fixed VHD: only a 512-byte footer at the end (some old tools
     * wrote 511 bytes). */
    if (read_at (fd, tail, sizeof tail, st->st_size - 512) == 0 &&
        memcmp (tail, "conectix", 8) == 0)
      fmt = "vpc";
    else if (read_at (fd, tail, 8, st->st_size - 511) == 0 &&
             memcmp (tail, "conectix", 8) == 0)
      fmt = "vpc";
  }
  return fmt;
}

const char *
format_detect (const char *path, struct np_error *err)
{
  struct stat st;
  const char *fmt;
  int fd;

  fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd == -1) {
    np_error_set (err, NP_EXIT_RUNTIME, "%s: cannot open: %s", path, strerror (errno));
    return NULL;
  }
  if (fstat (fd, &st) == -1) {
    np_error_set (err, NP_EXIT_RUNTIME, "%s: %s", path, strerror (errno));
    goto fail;
  }
  if (S_ISDIR (st.st_mode)) {
    np_error_set (err, NP_EXIT_RUNTIME, "%s: is a directory, not a disk image", path);
    goto fail;
  }
  if (!S_ISREG (st.st_mode) && !S_ISBLK (st.st_mode)) {
    np_error_set (err, NP_EXIT_RUNTIME, "%s: not a regular file or block device", path);
    goto fail;
  }
  if (S_ISREG (st.st_mode) && st.st_size == 0) {
    np_error_set (err, NP_EXIT_RUNTIME, "%s: empty file, not a disk image", path);
    goto fail;
  }
  if ((fmt = format_of_fd (fd, &st)) == NULL) {
    np_error_set (err, NP_EXIT_RUNTIME, "%s: cannot read: %s", path,
                  errno ? strerror (errno) : "short read");
    goto fail;
  }
  /* (a VMDK descriptor names its extents: it may be small) */
  if (S_ISREG (st.st_mode) && st.st_size < 512 && strcmp (fmt, "vmdk") != 0) {
    np_error_set (err, NP_EXIT_RUNTIME, "%s: only %lld bytes, too small to be a disk image",
                  path, (long long) st.st_size);
    goto fail;
  }
  close (fd);
  return fmt;

 fail:
  close (fd);
  return NULL;
}

int
format_check (const char *path, const char *format, struct np_error *err)
{
  const char *detected = format_detect (path, err);

  if (detected == NULL)
    return -1;
  if (strcmp (detected, format) == 0)
    return 0;
  /* A raw disk may legitimately hold anything at its end, but a
   * container format must be opened as what it is. */
  if (strcmp (detected, "raw") == 0)
    return np_error_set (err, NP_EXIT_USAGE,
                         "%s: --format %s does not match the file (no %s header found)",
                         path, format, format);
  return np_error_set (err, NP_EXIT_USAGE,
                       "%s: --format %s does not match the file, which is %s",
                       path, format, detected);
}
