/* netvsc-patch: the header of a non-raw image served over NBD, read
 * with libnbd and checked by layers.c before qemu on this host opens it
 * (uri.h).  In the image module (backends.h): it needs libnbd. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libnbd.h>

#include "layers.h"
#include "uri.h"

struct nbd_src {
  struct nbd_handle *nbd;
  uint64_t size;
  uint64_t align;
};

/* layers.h's reader over NBD: whole aligned blocks, as the server may
 * ask for them. */
static int
nbd_src_read (void *ctx, void *buf, size_t len, uint64_t off)
{
  struct nbd_src *s = ctx;
  uint64_t start, stop;
  char *tmp;
  int r;

  if (off > s->size || len > s->size - off)
    return -1;
  if (len == 0)
    return 0;
  start = off / s->align * s->align;
  stop = (off + len + s->align - 1) / s->align * s->align;
  if (stop > s->size)
    stop = s->size;
  if (stop - start > (64u << 20) || (tmp = malloc (stop - start)) == NULL)
    return -1;
  r = nbd_pread (s->nbd, tmp, stop - start, start, 0);
  if (r == 0)
    memcpy (buf, tmp + (off - start), len);
  free (tmp);
  return r == 0 ? 0 : -1;
}

static int
nbd_failed (const char *target, const char *what, struct np_error *err)
{
  char msg[512];
  const char *e = nbd_get_error ();

  snprintf (msg, sizeof msg, "%s", e ? e : "unknown libnbd error");
  np_one_line (msg);
  return np_error_set (err, NP_EXIT_RUNTIME, "%s: %s: %s", target, what, msg);
}

/* Read TARGET's FORMAT header over NBD: it must name no other file.
 * A served qcow2 (or VMDK, VHD, VHDX) is only bytes to the server; the
 * qemu on this host that opens it as FORMAT would open what it names,
 * as a local path.  (The server could change the header after this
 * check: the direct backend also gives qemu "backing": null.) */
int
uri_check_header (const char *target, const char *format, struct np_error *err)
{
  struct nbd_handle *nbd = nbd_create ();
  struct nbd_src s = { nbd, 0, 1 };
  struct layers_src src;
  struct layer_names *names = calloc (1, sizeof *names);
  char why[256];
  int64_t size, align;
  int r = -1;

  if (nbd == NULL || names == NULL) {
    r = np_error_set (err, NP_EXIT_RUNTIME, "out of memory");
    goto out;
  }
  if (nbd_connect_uri (nbd, target) == -1) {
    nbd_failed (target, "cannot connect to read its header", err);
    goto out;
  }
  if ((size = nbd_get_size (nbd)) < 0) {
    nbd_failed (target, "cannot get the size of the export", err);
    goto out;
  }
  align = nbd_get_block_size (nbd, LIBNBD_SIZE_MINIMUM);
  s.size = (uint64_t) size;
  s.align = align > 0 && align <= 65536 ? (uint64_t) align : 1;
  src = (struct layers_src) { s.size, nbd_src_read, &s };
  if (layers_parse (format, 0, &src, names, why, sizeof why) == -1) {
    np_error_set (err, NP_EXIT_RUNTIME, "%s: cannot read it as %s: %s", target, format, why);
    goto out;
  }
  if (names->n > 0)
    np_error_set (err, NP_EXIT_RUNTIME, "%s: refused: as %s it names another file, \"%s\" "
                  "(%s), which qemu on this host would open: only whole images are taken "
                  "over NBD (flatten it with qemu-img convert, or serve it as raw with "
                  "qemu-nbd -f %s on the server)", target, format, names->v[0].name,
                  names->v[0].role == LAYER_EXTENT ? "an extent"
                  : names->v[0].role == LAYER_DATA_FILE ? "an external data file"
                  : names->v[0].role == LAYER_PARENT ? "a parent" : "a backing file",
                  format);
  else if (names->needs_data_file || names->has_parent)
    np_error_set (err, NP_EXIT_RUNTIME, "%s: refused: as %s it needs %s, which qemu on "
                  "this host would open: only whole images are taken over NBD", target,
                  format, names->has_parent ? "a parent" : "an external data file");
  else
    r = 0;
 out:
  if (nbd) {
    nbd_shutdown (nbd, 0);
    nbd_close (nbd);
  }
  free (names);
  return r;
}
