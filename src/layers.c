/* netvsc-patch: what other files an image names, checked (layers.h).
 *
 * The parsers read names the way qemu 7.2 does (same offsets, same
 * limits, VMDK extent lines matched as its sscanf matches them), and
 * more widely where that is cheap: a name qemu might follow must never
 * escape the check.
 * Every length and offset comes from the file and is checked against
 * the file's size before use. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "format.h"
#include "bytes.h"
#include "layers.h"

/* --- byte sources --------------------------------------------------- */

static int
mem_read (void *ctx, void *buf, size_t len, uint64_t off)
{
  const struct layers_mem *m = ctx;

  if (off > m->len || len > m->len - off)
    return -1;
  memcpy (buf, m->data + off, len);
  return 0;
}

void
layers_mem_src (struct layers_src *src, struct layers_mem *m, const void *data, size_t len)
{
  m->data = data;
  m->len = len;
  src->size = len;
  src->read = mem_read;
  src->ctx = m;
}

static int
src_read (const struct layers_src *src, void *buf, size_t len, uint64_t off)
{
  if (off > src->size || len > src->size - off)
    return -1;
  return src->read (src->ctx, buf, len, off);
}

static int
why_set (char *why, size_t len, const char *fmt, const char *arg)
{
  snprintf (why, len, fmt, arg);
  return -1;
}

/* Add a name (LEN bytes of S, cut at a NUL as qemu's C strings are). */
static int
add_name (struct layer_names *out, enum layer_role role, const char *s, size_t len,
          const char *format, char *why, size_t whylen)
{
  struct layer_name *n;

  len = strnlen (s, len);
  if (len >= LAYERS_NAME_MAX)
    return why_set (why, whylen, "a file name longer than %s bytes", "1023");
  if (out->n == LAYERS_NAMES_MAX)
    return why_set (why, whylen, "more than %s file names", "64");
  n = &out->v[out->n++];
  n->role = role;
  memcpy (n->name, s, len);
  n->name[len] = '\0';
  snprintf (n->format, sizeof n->format, "%s", format ? format : "");
  return 0;
}

/* UTF-16 (BE or LE) to a name for messages and checks: ASCII kept,
 * anything else '?' (it can only be refused: such a name never
 * matches a file we accept without looking at it anyway). */
static void
utf16_name (const unsigned char *p, size_t bytes, int big, char *out, size_t outlen)
{
  size_t j = 0;

  for (size_t i = 0; i + 1 < bytes && j + 1 < outlen; i += 2) {
    unsigned c = big ? (unsigned) p[i] << 8 | p[i + 1] : (unsigned) p[i + 1] << 8 | p[i];
    if (c == 0)
      break;
    out[j++] = c < 0x80 ? (char) c : '?';
  }
  out[j] = '\0';
}

/* --- qcow2 ---------------------------------------------------------- */

#define QCOW2_EXT_BACKING_FORMAT 0xE2792ACAu
#define QCOW2_EXT_DATA_FILE      0x44415441u
#define QCOW2_INCOMPAT_DATA_FILE (1u << 2)

static int
parse_qcow2 (const struct layers_src *src, struct layer_names *out, char *why, size_t wl)
{
  unsigned char h[112], eh[8];
  char backing[LAYERS_NAME_MAX] = "", bfmt[16] = "", data[LAYERS_NAME_MAX] = "";
  uint32_t version, cluster_bits, header_len = 72, blen;
  uint64_t boff, cluster, off, end;
  int have_data = 0;

  if (src_read (src, h, 104, 0) == -1 && src_read (src, h, 72, 0) == -1)
    return why_set (why, wl, "%s", "a truncated qcow2 header");
  version = get_be32 (h + 4);
  if (version != 2 && version != 3)
    return 0;                   /* qemu's qcow2 driver opens nothing of it */
  cluster_bits = get_be32 (h + 20);
  if (cluster_bits < 9 || cluster_bits > 21)
    return why_set (why, wl, "%s", "a qcow2 cluster size qemu refuses");
  cluster = (uint64_t) 1 << cluster_bits;
  if (version == 3) {
    if (src_read (src, h, 104, 0) == -1)
      return why_set (why, wl, "%s", "a truncated qcow2 header");
    header_len = get_be32 (h + 100);
    if (header_len < 104 || header_len > cluster)
      return why_set (why, wl, "%s", "a qcow2 header length qemu refuses");
    if (get_be64 (h + 72) & QCOW2_INCOMPAT_DATA_FILE)
      out->needs_data_file = 1;
  }

  boff = get_be64 (h + 8);
  blen = get_be32 (h + 16);
  if (boff != 0) {
    /* qemu: at most 1023 bytes, within the first cluster */
    if (boff > cluster || blen > 1023 || blen > cluster - boff)
      return why_set (why, wl, "%s", "a qcow2 backing file name qemu refuses");
    if (blen > 0 && src_read (src, backing, blen, boff) == -1)
      return why_set (why, wl, "%s", "a qcow2 backing file name past the end of the file");
    backing[blen] = '\0';
  }

  /* Header extensions, from the end of the header to the end of the
   * first cluster, 8-byte aligned, until type 0. */
  end = cluster;
  if (end > src->size)
    end = src->size;
  for (off = header_len; off + 8 <= end; ) {
    uint32_t type, len;
    if (src_read (src, eh, 8, off) == -1)
      break;
    type = get_be32 (eh);
    len = get_be32 (eh + 4);
    off += 8;
    if (type == 0)
      break;
    if (len > end - off)
      return why_set (why, wl, "%s", "a qcow2 header extension past the first cluster");
    if (type == QCOW2_EXT_BACKING_FORMAT) {
      if (len >= sizeof bfmt)
        return why_set (why, wl, "%s", "a qcow2 backing format name qemu refuses");
      if (src_read (src, bfmt, len, off) == -1)
        return why_set (why, wl, "%s", "a truncated qcow2 header extension");
      bfmt[len] = '\0';
    }
    else if (type == QCOW2_EXT_DATA_FILE) {
      if (len >= sizeof data)
        return why_set (why, wl, "%s", "a qcow2 data file name longer than 1023 bytes");
      if (src_read (src, data, len, off) == -1)
        return why_set (why, wl, "%s", "a truncated qcow2 header extension");
      data[len] = '\0';
      have_data = 1;
    }
    off += ((uint64_t) len + 7) & ~(uint64_t) 7;
  }

  if (backing[0] && add_name (out, LAYER_BACKING, backing, sizeof backing, bfmt, why, wl) == -1)
    return -1;
  /* qemu uses the name only with the incompatible bit; a name without
   * it is checked all the same (it costs nothing and a later qemu might). */
  if (have_data && data[0] &&
      add_name (out, LAYER_DATA_FILE, data, sizeof data, NULL, why, wl) == -1)
    return -1;
  return 0;
}

/* --- VMDK ----------------------------------------------------------- */

#define VMDK_DESC_MAX ((1u << 20) - 1)  /* qemu's vmdk_read_desc limit */
#define VMDK_PARENT_DESC 10240          /* qemu's DESC_SIZE for the parent hint */

/* Read up to MAX bytes at OFF as a NUL-terminated string (qemu reads
 * descriptors as C strings). */
static char *
read_text (const struct layers_src *src, uint64_t off, size_t max)
{
  size_t len;
  char *buf;

  if (off >= src->size)
    return calloc (1, 1);
  len = src->size - off < max ? (size_t) (src->size - off) : max;
  buf = malloc (len + 1);
  if (buf == NULL)
    return NULL;
  if (src_read (src, buf, len, off) == -1) {
    free (buf);
    return NULL;
  }
  buf[len] = '\0';
  return buf;
}

static int
is_ws (char c)
{
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

static const char *
skip_ws (const char *p)
{
  while (is_ws (*p))
    p++;
  return p;
}

/* One extent line as qemu reads it with
 *   sscanf (p, "%10s %" SCNd64 " %10s \"%511[^\n\r\"]\" ...")
 * (4 matches or more make an extent): the file name into FNAME, or 0.
 * Done by hand because glibc's sscanf takes the length of the whole
 * rest of the buffer at every line: quadratic on a crafted descriptor. */
static int
extent_line (const char *p, char *fname, size_t len)
{
  size_t n;

  p = skip_ws (p);                              /* %10s */
  for (n = 0; n < 10 && *p && !is_ws (*p); n++)
    p++;
  if (n == 0)
    return 0;
  p = skip_ws (p);                              /* %SCNd64 */
  if (*p == '+' || *p == '-')
    p++;
  if (!(*p >= '0' && *p <= '9'))
    return 0;
  while (*p >= '0' && *p <= '9')
    p++;
  p = skip_ws (p);                              /* %10s */
  for (n = 0; n < 10 && *p && !is_ws (*p); n++)
    p++;
  if (n == 0)
    return 0;
  p = skip_ws (p);
  if (*p++ != '"')
    return 0;
  for (n = 0; n < 511 && n + 1 < len && p[n] && p[n] != '\n' && p[n] != '\r' && p[n] != '"'; n++)
    fname[n] = p[n];
  fname[n] = '\0';
  return n > 0;                                 /* %[ needs one character */
}

/* Extent lines: every line that yields a quoted file name the way qemu
 * reads it is an extent to check, whatever its access mode and type
 * (qemu skips some; later versions may not). */
static int
vmdk_extents (const char *desc, struct layer_names *out, char *why, size_t wl)
{
  for (const char *p = desc; *p; ) {
    char fname[512];
    const char *t = skip_ws (p), *nl = memchr (p, '\n', (size_t) (t - p));

    /* Leading blank lines: the same match is found from the last line
     * start in them; jump there (scanning each blank run once). */
    if (nl != NULL) {
      const char *last = nl;
      while ((nl = memchr (last + 1, '\n', (size_t) (t - last - 1))) != NULL)
        last = nl;
      p = last + 1;
      continue;
    }
    if (extent_line (p, fname, sizeof fname) &&
        add_name (out, LAYER_EXTENT, fname, sizeof fname, NULL, why, wl) == -1)
      return -1;
    p = strchr (p, '\n');
    if (p == NULL)
      break;
    p++;
  }
  return 0;
}

/* parentFileNameHint, as qemu's vmdk_parent_open finds it: the first
 * occurrence of the word, the name starting 20 bytes on (after `="`)
 * up to the next '"'.  qemu records the parent's format as vmdk. */
static int
vmdk_parent (const char *desc, struct layer_names *out, char *why, size_t wl)
{
  const char *p = strstr (desc, "parentFileNameHint"), *end;

  if (p == NULL)
    return 0;
  if (strnlen (p, 20) < 20)
    return why_set (why, wl, "%s", "a VMDK parentFileNameHint qemu cannot read");
  p += 20;
  end = strchr (p, '"');
  if (end == NULL)
    return why_set (why, wl, "%s", "a VMDK parentFileNameHint qemu cannot read");
  if (end == p)
    return 0;
  return add_name (out, LAYER_BACKING, p, (size_t) (end - p), "vmdk", why, wl);
}

static int
parse_vmdk (const struct layers_src *src, int as_extent, struct layer_names *out,
            char *why, size_t wl)
{
  unsigned char h[44];
  char *desc = NULL, *hint = NULL;
  int r = -1;

  if (src_read (src, h, 4, 0) == 0 && memcmp (h, "KDMV", 4) == 0) {
    uint64_t capacity, desc_off;
    if (src_read (src, h, sizeof h, 0) == -1)
      return why_set (why, wl, "%s", "a truncated VMDK sparse header");
    capacity = get_le64 (h + 12);
    desc_off = get_le64 (h + 28);
    /* qemu reads extents from an embedded descriptor only when the
     * sparse file has no data of its own (capacity 0). */
    if (capacity == 0 && desc_off != 0) {
      if (desc_off > src->size / 512)
        return why_set (why, wl, "%s", "a VMDK descriptor offset past the end of the file");
      desc = read_text (src, desc_off * 512, VMDK_DESC_MAX);
      if (desc == NULL)
        return why_set (why, wl, "%s", "an unreadable VMDK descriptor");
      if (vmdk_extents (desc, out, why, wl) == -1)
        goto out;
    }
    /* The parent hint is read at 0x200 whatever the header says. */
    if (!as_extent) {
      hint = read_text (src, 512, VMDK_PARENT_DESC);
      if (hint == NULL)
        return why_set (why, wl, "%s", "an unreadable VMDK descriptor");
      if (vmdk_parent (hint, out, why, wl) == -1)
        goto out;
    }
    r = 0;
    goto out;
  }
  if (src_read (src, h, 4, 0) == 0 && memcmp (h, "COWD", 4) == 0)
    return 0;                   /* VMDK3: names nothing qemu follows */
  desc = read_text (src, 0, VMDK_DESC_MAX);
  if (desc == NULL)
    return why_set (why, wl, "%s", "an unreadable VMDK descriptor");
  if (vmdk_extents (desc, out, why, wl) == -1)
    goto out;
  if (!as_extent) {
    if (strlen (desc) > VMDK_PARENT_DESC)
      desc[VMDK_PARENT_DESC] = '\0';
    if (vmdk_parent (desc, out, why, wl) == -1)
      goto out;
  }
  r = 0;
 out:
  free (desc);
  free (hint);
  return r;
}

/* --- VHD ------------------------------------------------------------ */

static int
parse_vpc (const struct layers_src *src, struct layer_names *out, char *why, size_t wl)
{
  unsigned char f[512], dh[1024];
  char name[LAYERS_NAME_MAX] = "";
  uint64_t doff;

  if (!(src->size >= 512 && src_read (src, f, 512, src->size - 512) == 0 &&
        memcmp (f, "conectix", 8) == 0) &&
      !(src_read (src, f, 512, 0) == 0 && memcmp (f, "conectix", 8) == 0))
    return 0;                   /* no footer: qemu refuses it */
  if (get_be32 (f + 60) != 4)
    return 0;                   /* fixed or dynamic: no parent */
  out->has_parent = 1;
  doff = get_be64 (f + 16);
  if (src_read (src, dh, sizeof dh, doff) == 0 && memcmp (dh, "cxsparse", 8) == 0) {
    utf16_name (dh + 64, 512, 1, name, sizeof name);
    /* No unicode name: the Windows locators (W2ru relative, W2ku
     * absolute), UTF-16LE, bounded by the file. */
    for (int i = 0; i < 8 && name[0] == '\0'; i++) {
      const unsigned char *e = dh + 576 + 24 * i;
      uint32_t len = get_be32 (e + 8);
      uint64_t off = get_be64 (e + 16);
      unsigned char buf[2 * LAYERS_NAME_MAX];
      if ((memcmp (e, "W2ru", 4) != 0 && memcmp (e, "W2ku", 4) != 0) ||
          len == 0 || len > sizeof buf || src_read (src, buf, len, off) == -1)
        continue;
      utf16_name (buf, len, 0, name, sizeof name);
    }
  }
  if (name[0])
    return add_name (out, LAYER_PARENT, name, sizeof name, NULL, why, wl);
  return 0;
}

/* --- VHDX ----------------------------------------------------------- */

static const unsigned char vhdx_metadata_region[16] = {
  0x06, 0xa2, 0x7c, 0x8b, 0x90, 0x47, 0x9a, 0x4b,
  0xb8, 0xfe, 0x57, 0x5f, 0x05, 0x0f, 0x88, 0x6e };
static const unsigned char vhdx_file_params[16] = {
  0x37, 0x67, 0xa1, 0xca, 0x36, 0xfa, 0x43, 0x4d,
  0xb3, 0xb6, 0x33, 0xf0, 0xaa, 0x44, 0xe7, 0x6b };
static const unsigned char vhdx_parent_locator[16] = {
  0x2d, 0x5f, 0xd3, 0xa8, 0x0b, 0xb3, 0x4d, 0x45,
  0xab, 0xf7, 0xd3, 0xd8, 0x48, 0x34, 0xab, 0x0c };

/* One parent locator item (LEN bytes at OFF): the parent's path from
 * relative_path, else absolute_win32_path, else volume_path. */
static void
vhdx_locator (const struct layers_src *src, uint64_t off, uint32_t len, char *name, size_t nl)
{
  static const char *const keys[] = { "relative_path", "absolute_win32_path", "volume_path" };
  unsigned char hdr[20], e[12], buf[2 * LAYERS_NAME_MAX];
  char key[32];
  uint16_t count;

  if (len < 20 || src_read (src, hdr, 20, off) == -1)
    return;
  count = get_le16 (hdr + 18);
  for (size_t k = 0; k < 3 && name[0] == '\0'; k++)
    for (uint32_t i = 0; i < count && (uint64_t) 20 + 12 * (i + 1) <= len; i++) {
      uint32_t koff, voff;
      uint16_t klen, vlen;
      if (src_read (src, e, 12, off + 20 + 12 * (uint64_t) i) == -1)
        return;
      koff = get_le32 (e);
      voff = get_le32 (e + 4);
      klen = get_le16 (e + 8);
      vlen = get_le16 (e + 10);
      if (klen == 0 || klen > sizeof buf || koff > len || klen > len - koff ||
          vlen > sizeof buf || voff > len || vlen > len - voff ||
          src_read (src, buf, klen, off + koff) == -1)
        continue;
      utf16_name (buf, klen, 0, key, sizeof key);
      if (strcmp (key, keys[k]) != 0 || src_read (src, buf, vlen, off + voff) == -1)
        continue;
      utf16_name (buf, vlen, 0, name, nl);
      break;
    }
}

static int
parse_vhdx (const struct layers_src *src, struct layer_names *out, char *why, size_t wl)
{
  char name[LAYERS_NAME_MAX] = "";

  /* Both region tables (qemu uses whichever is valid): either one
   * saying "parent" is enough to refuse. */
  for (uint64_t rt = 0x30000; rt <= 0x40000; rt += 0x10000) {
    unsigned char h[16], e[32];
    uint32_t count;
    if (src_read (src, h, 16, rt) == -1 || memcmp (h, "regi", 4) != 0)
      continue;
    count = get_le32 (h + 8);
    if (count > 2047)
      continue;
    for (uint32_t i = 0; i < count; i++) {
      unsigned char mh[32], me[32];
      uint64_t roff;
      uint32_t rlen;
      uint16_t mcount;
      if (src_read (src, e, 32, rt + 16 + 32 * (uint64_t) i) == -1)
        break;
      if (memcmp (e, vhdx_metadata_region, 16) != 0)
        continue;
      roff = get_le64 (e + 16);
      rlen = get_le32 (e + 24);
      if (rlen < 32 || src_read (src, mh, 32, roff) == -1 || memcmp (mh, "metadata", 8) != 0)
        continue;
      mcount = get_le16 (mh + 10);
      for (uint32_t j = 0; j < mcount && j < 2047 && 32 + 32 * (uint64_t) (j + 1) <= rlen; j++) {
        uint32_t ioff, ilen;
        if (src_read (src, me, 32, roff + 32 + 32 * (uint64_t) j) == -1)
          break;
        ioff = get_le32 (me + 16);
        ilen = get_le32 (me + 20);
        if (ioff > rlen || ilen > rlen - ioff)
          continue;
        if (memcmp (me, vhdx_file_params, 16) == 0 && ilen >= 8) {
          unsigned char fp[8];
          if (src_read (src, fp, 8, roff + ioff) == 0 && (get_le32 (fp + 4) & 2))
            out->has_parent = 1;
        }
        else if (memcmp (me, vhdx_parent_locator, 16) == 0) {
          out->has_parent = 1;
          if (name[0] == '\0')
            vhdx_locator (src, roff + ioff, ilen, name, sizeof name);
        }
      }
    }
  }
  if (name[0])
    return add_name (out, LAYER_PARENT, name, sizeof name, NULL, why, wl);
  return 0;
}

/* --- QED ------------------------------------------------------------ */

#define QED_F_BACKING_FILE            0x01u
#define QED_F_BACKING_FORMAT_NO_PROBE 0x04u

/* qemu's bdrv_qed_open: with the backing-file feature, the name is
 * BACKING_FILENAME_SIZE bytes at BACKING_FILENAME_OFFSET, which must end
 * within the header clusters; its format is raw with the no-probe
 * feature, else unrecorded (qemu would probe it). */
static int
parse_qed (const struct layers_src *src, struct layer_names *out, char *why, size_t wl)
{
  unsigned char h[64];
  char backing[LAYERS_NAME_MAX];
  uint64_t features;
  uint32_t cluster, header_clusters, boff, blen;

  if (src_read (src, h, sizeof h, 0) == -1)
    return why_set (why, wl, "%s", "a truncated QED header");
  cluster = get_le32 (h + 4);
  header_clusters = get_le32 (h + 12);
  features = get_le64 (h + 16);
  boff = get_le32 (h + 56);
  blen = get_le32 (h + 60);
  if (!(features & QED_F_BACKING_FILE))
    return 0;
  if ((uint64_t) boff + blen > (uint64_t) cluster * header_clusters)
    return why_set (why, wl, "%s", "a QED backing file name qemu refuses");
  if (blen >= sizeof backing)
    return why_set (why, wl, "%s", "a QED backing file name longer than 1023 bytes");
  if (blen > 0 && src_read (src, backing, blen, boff) == -1)
    return why_set (why, wl, "%s", "a QED backing file name past the end of the file");
  backing[blen] = '\0';
  if (backing[0] == '\0')
    return 0;                   /* qemu opens no backing for an empty name */
  return add_name (out, LAYER_BACKING, backing, sizeof backing,
                   features & QED_F_BACKING_FORMAT_NO_PROBE ? "raw" : NULL, why, wl);
}

/* --- VDI ------------------------------------------------------------ */

#define VDI_TYPE_DYNAMIC 1u
#define VDI_TYPE_STATIC  2u
#define VDI_HEADER_END   0x1c8          /* through uuid_parent */

/* VirtualBox's UUID text: the first three fields little-endian. */
static void
vdi_uuid (const unsigned char *u, char *out, size_t len)
{
  snprintf (out, len, "%08x-%04x-%04x-%02x%02x-%02x%02x%02x%02x%02x%02x",
            get_le32 (u), get_le16 (u + 4), get_le16 (u + 6), u[8], u[9], u[10], u[11],
            u[12], u[13], u[14], u[15]);
}

static int
uuid_is_null (const unsigned char *u)
{
  for (int i = 0; i < 16; i++)
    if (u[i])
      return 0;
  return 1;
}

/* A VDI other than a plain dynamic or fixed one (differencing, undo,
 * or with a link or parent UUID) depends on another image that it
 * names by UUID only, which qemu refuses to open and this tool cannot
 * check: has_parent, the parent's UUID as the name. */
static int
parse_vdi (const struct layers_src *src, struct layer_names *out, char *why, size_t wl)
{
  unsigned char h[VDI_HEADER_END];
  const unsigned char *link = h + 0x1a8, *parent = h + 0x1b8;
  uint32_t type;
  char name[40];

  if (src_read (src, h, sizeof h, 0) == -1)
    return why_set (why, wl, "%s", "a truncated VDI header");
  type = get_le32 (h + 0x4c);
  if ((type == VDI_TYPE_DYNAMIC || type == VDI_TYPE_STATIC) && uuid_is_null (link) &&
      uuid_is_null (parent))
    return 0;
  out->has_parent = 1;
  if (uuid_is_null (parent) && uuid_is_null (link))
    return 0;
  vdi_uuid (uuid_is_null (parent) ? link : parent, name, sizeof name);
  return add_name (out, LAYER_PARENT, name, sizeof name, NULL, why, wl);
}

int
layers_parse (const char *format, int as_extent, const struct layers_src *src,
              struct layer_names *out, char *why, size_t whylen)
{
  memset (out, 0, sizeof *out);
  why[0] = '\0';
  if (strcmp (format, "qcow2") == 0)
    return parse_qcow2 (src, out, why, whylen);
  if (strcmp (format, "vmdk") == 0)
    return parse_vmdk (src, as_extent, out, why, whylen);
  if (strcmp (format, "vpc") == 0)
    return parse_vpc (src, out, why, whylen);
  if (strcmp (format, "vhdx") == 0)
    return parse_vhdx (src, out, why, whylen);
  if (strcmp (format, "qed") == 0)
    return parse_qed (src, out, why, whylen);
  if (strcmp (format, "vdi") == 0)
    return parse_vdi (src, out, why, whylen);
  return 0;
}

/* --- the checker ---------------------------------------------------- */

static int
fd_read (void *ctx, void *buf, size_t len, uint64_t off)
{
  int fd = *(int *) ctx;
  size_t done = 0;

  while (done < len) {
    ssize_t r = pread (fd, (char *) buf + done, len - done, (off_t) (off + done));
    if (r <= 0)
      return -1;
    done += (size_t) r;
  }
  return 0;
}

static const char *
role_name (enum layer_role role, const char *format)
{
  switch (role) {
  case LAYER_EXTENT: return "VMDK extent";
  case LAYER_BACKING: return strcmp (format, "vmdk") == 0 ? "VMDK parent" : "backing file";
  case LAYER_DATA_FILE: return "external data file";
  case LAYER_PARENT: return "parent";
  }
  return "file";
}

/* qemu reads "x:..." (x without '/') as a protocol or json: options. */
static int
is_protocol (const char *name)
{
  size_t k = strcspn (name, ":/");
  return name[k] == ':';
}

static int
has_dotdot (const char *name)
{
  for (const char *p = name; *p; ) {
    size_t k = strcspn (p, "/");
    if (k == 2 && p[0] == '.' && p[1] == '.')
      return 1;
    p += k;
    while (*p == '/')
      p++;
  }
  return 0;
}

struct walk {
  const char *image;            /* the user's path, for messages */
  char *const *allowed;
  size_t n_allowed;
  struct layers *l;
  char real[LAYERS_FILES_MAX][PATH_MAX];  /* real path of each v[] */
};

static int
refuse (struct walk *w, struct np_error *err, const char *what, const char *name,
        const char *reason)
{
  return np_error_set (err, NP_EXIT_RUNTIME, "%s: refused: its %s \"%s\" %s", w->image,
                       what, name, reason);
}

/* Resolve NAME, named (as WHAT) by the file at NAMER, to a checked real
 * path in RP.  Nothing outside NAMER's directory is opened, and without
 * --allow-external not even stat'ed (realpath lstats the directories on
 * the way to it, never the file). */
static int
resolve (struct walk *w, const char *namer, const char *name, enum layer_role role,
         const char *what, char *rp, struct np_error *err)
{
  char dirbuf[PATH_MAX], full[2 * PATH_MAX], dreal[PATH_MAX], nbuf[PATH_MAX];
  const char *dir, *base;
  int allowed = 0;
  struct stat st;

  if (name[0] == '\0')
    return refuse (w, err, what, name, "is an empty name");
  if (strncmp (name, "json:", 5) == 0)
    return refuse (w, err, what, name, "is a json: option string, which is never followed");
  if (is_protocol (name))
    return refuse (w, err, what, name, "is a protocol name, which is never followed");
  snprintf (dirbuf, sizeof dirbuf, "%s", namer);
  dir = dirname (dirbuf);
  if (name[0] == '/')
    snprintf (full, sizeof full, "%s", name);
  else
    snprintf (full, sizeof full, "%s/%s", dir, name);
  if (realpath (dir, dreal) == NULL)
    return np_error_set (err, NP_EXIT_RUNTIME, "%s: %s: %s", w->image, dir, strerror (errno));

  /* Allowed by the user: by real path (a missing file cannot be).  Only
   * looked up when there is an allow list. */
  if (w->n_allowed && realpath (full, rp) != NULL)
    for (size_t i = 0; i < w->n_allowed; i++)
      if (strcmp (rp, w->allowed[i]) == 0)
        allowed = 1;

  if (!allowed) {
    const char *why_out = "is outside the image's directory (--allow-external FILE allows it)";
    if (has_dotdot (name))
      return refuse (w, err, what, name, why_out);
    if (name[0] == '/') {
      /* absolute: allowed only when it names this very directory */
      char nreal[PATH_MAX];
      snprintf (nbuf, sizeof nbuf, "%s", name);
      if (realpath (dirname (nbuf), nreal) == NULL || strcmp (nreal, dreal) != 0)
        return refuse (w, err, what, name, why_out);
    }
    else {
      const char *n = name;
      while (strncmp (n, "./", 2) == 0)
        n += 2;
      while (*n == '/')
        n++;
      if (strchr (n, '/'))
        return refuse (w, err, what, name,
                       "is in another directory (only files beside the image are opened; "
                       "--allow-external FILE allows it)");
    }
    if (realpath (full, rp) == NULL) {
      if (errno == ENOENT && role == LAYER_BACKING)
        return np_error_set (err, NP_EXIT_RUNTIME, "%s: cannot open the parent of this "
                             "differencing image: its %s \"%s\" is missing", w->image,
                             what, name);
      if (errno == ENOENT)
        return refuse (w, err, what, name, "is missing");
      return refuse (w, err, what, name, strerror (errno));
    }
    /* a symlink beside the image must not lead out of the directory */
    snprintf (nbuf, sizeof nbuf, "%s", rp);
    base = dirname (nbuf);
    if (strcmp (base, dreal) != 0)
      return refuse (w, err, what, name, "is a symlink leading out of the image's directory "
                     "(--allow-external FILE allows it)");
  }
  if (lstat (rp, &st) == -1)
    return refuse (w, err, what, name, strerror (errno));
  if (!S_ISREG (st.st_mode))
    return refuse (w, err, what, name, S_ISDIR (st.st_mode) ? "is a directory"
                   : "is not a regular file (device, FIFO or socket)");
  return 0;
}

static int walk_file (struct walk *w, size_t idx, int as_extent, int depth,
                      struct np_error *err);

/* Add the checked file RP as a new layer; returns its index, or -1. */
static int
add_file (struct walk *w, const char *rp, enum layer_role role, struct np_error *err)
{
  struct layers *l = w->l;
  struct layer_file *f;

  if (l->n == LAYERS_FILES_MAX)
    return np_error_set (err, NP_EXIT_RUNTIME, "%s: refused: it names more than %d files",
                         w->image, LAYERS_FILES_MAX);
  f = &l->v[l->n];
  memset (f, 0, sizeof *f);
  snprintf (f->path, sizeof f->path, "%s", rp);
  snprintf (w->real[l->n], PATH_MAX, "%s", rp);
  f->role = role;
  f->backing = f->data_file = -1;
  f->format = "raw";
  return (int) l->n++;
}

static int
find_real (const struct walk *w, const char *rp)
{
  for (size_t i = 0; i < w->l->n; i++)
    if (strcmp (w->real[i], rp) == 0)
      return (int) i;
  return -1;
}

/* Open IDX read-only (no symlink, no blocking on a FIFO swapped in),
 * detect its format by magic, parse and check what it names. */
static int
walk_file (struct walk *w, size_t idx, int as_extent, int depth, struct np_error *err)
{
  struct layer_file *f = &w->l->v[idx];
  struct layer_names *names = NULL;
  struct layers_src src;
  struct stat st;
  char why[256];
  const char *fmt;
  int fd, r = -1;

  if (depth > LAYERS_DEPTH_MAX)
    return np_error_set (err, NP_EXIT_RUNTIME, "%s: refused: more than %d layers",
                         w->image, LAYERS_DEPTH_MAX);
  fd = open (f->path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | (idx ? O_NOFOLLOW : 0));
  if (fd == -1)
    return np_error_set (err, NP_EXIT_RUNTIME, "%s: cannot open %s: %s", w->image,
                         f->path, strerror (errno));
  if (fstat (fd, &st) == -1 || (idx && !S_ISREG (st.st_mode))) {
    np_error_set (err, NP_EXIT_RUNTIME, "%s: refused: %s is not a regular file", w->image,
                  f->path);
    goto out;
  }
  src.size = S_ISREG (st.st_mode) ? (uint64_t) st.st_size : (uint64_t) lseek (fd, 0, SEEK_END);
  src.read = fd_read;
  src.ctx = &fd;

  if (idx == 0)
    fmt = f->format;
  else if (src.size < 512)
    fmt = "raw";                /* a small extent holds data only */
  else if ((fmt = format_of_fd (fd, &st)) == NULL) {
    np_error_set (err, NP_EXIT_RUNTIME, "%s: cannot read %s", w->image, f->path);
    goto out;
  }
  if (idx && f->role == LAYER_EXTENT)
    fmt = strcmp (fmt, "vmdk") == 0 ? "vmdk" : "raw";   /* qemu reads FLAT extents as raw */
  if (idx && f->role == LAYER_BACKING && f->format && strcmp (f->format, "raw") != 0 &&
      strcmp (f->format, fmt) != 0) {
    np_error_set (err, NP_EXIT_RUNTIME, "%s: refused: its backing file %s is recorded as %s "
                  "but is %s", w->image, f->path, f->format, fmt);
    goto out;
  }
  if (idx && f->role == LAYER_BACKING && f->recorded_format && strcmp (f->format, "raw") == 0 &&
      strcmp (fmt, "raw") != 0) {
    np_error_set (err, NP_EXIT_RUNTIME, "%s: refused: its backing file %s is recorded as raw "
                  "but is %s", w->image, f->path, fmt);
    goto out;
  }
  f->format = fmt;

  names = malloc (sizeof *names);
  if (names == NULL) {
    np_error_set (err, NP_EXIT_RUNTIME, "out of memory");
    goto out;
  }
  if (layers_parse (fmt, as_extent, &src, names, why, sizeof why) == -1) {
    np_error_set (err, NP_EXIT_RUNTIME, "%s: refused: %s has %s", w->image,
                  idx ? f->path : "the image", why);
    goto out;
  }
  close (fd);
  fd = -1;

  if (names->has_parent) {
    const char *pname = names->n ? names->v[0].name : "unknown";
    if (strcmp (fmt, "vpc") == 0)
      np_error_set (err, NP_EXIT_RUNTIME,
                    "%s: a differencing VHD (parent: %s): qemu cannot read VHD parents, so "
                    "it cannot be patched safely; merge it into its parent first (e.g. "
                    "Merge-VHD) and patch the result", w->image, pname);
    else if (strcmp (fmt, "vdi") == 0)
      np_error_set (err, NP_EXIT_RUNTIME,
                    "%s: a differencing VDI (parent UUID %s): a VDI names its parent by UUID "
                    "only, which qemu cannot follow, so it cannot be patched safely; make it "
                    "standalone first (e.g. VBoxManage clonemedium) and patch the result",
                    w->image, pname);
    else
      np_error_set (err, NP_EXIT_RUNTIME,
                    "%s: a differencing VHDX (parent: %s): qemu cannot read VHDX parents, "
                    "so it cannot be patched safely; merge it into its parent first (e.g. "
                    "Merge-VHD) and patch the result", w->image, pname);
    goto out;
  }
  if (names->needs_data_file) {
    int named = 0;
    for (size_t i = 0; i < names->n; i++)
      named |= names->v[i].role == LAYER_DATA_FILE;
    if (!named) {
      np_error_set (err, NP_EXIT_RUNTIME, "%s: refused: %s needs an external data file it "
                    "does not name", w->image, idx ? f->path : "the image");
      goto out;
    }
  }

  for (size_t i = 0; i < names->n; i++) {
    const struct layer_name *n = &names->v[i];
    const char *what = role_name (n->role, fmt);
    char rp[PATH_MAX];
    int k;

    if (resolve (w, w->l->v[idx].path, n->name, n->role, what, rp, err) == -1)
      goto out;
    k = find_real (w, rp);
    if (n->role == LAYER_EXTENT) {
      if (k >= 0)
        continue;               /* the image itself (monolithicSparse), or twice */
      if ((k = add_file (w, rp, LAYER_EXTENT, err)) == -1 ||
          walk_file (w, (size_t) k, 1, depth + 1, err) == -1)
        goto out;
      continue;
    }
    if (k >= 0) {
      np_error_set (err, NP_EXIT_RUNTIME, "%s: refused: its %s \"%s\" is a file already in "
                    "the image (a loop)", w->image, what, n->name);
      goto out;
    }
    if ((k = add_file (w, rp, n->role, err)) == -1)
      goto out;
    if (n->role == LAYER_BACKING) {
      w->l->v[idx].backing = k;
      w->l->v[k].recorded_format = n->format[0] != '\0';
      w->l->v[k].format = NULL;
      if (n->format[0]) {
        const char *c = format_canonical (n->format);
        if (c == NULL || strcmp (c, n->format) != 0) {
          np_error_set (err, NP_EXIT_RUNTIME, "%s: refused: its backing file \"%s\" is "
                        "recorded as %s, a format this tool does not open", w->image,
                        n->name, n->format);
          goto out;
        }
        w->l->v[k].format = c;
      }
      if (walk_file (w, (size_t) k, 0, depth + 1, err) == -1)
        goto out;
    }
    else {
      /* a data file holds guest data only; qemu opens it only with the
       * incompatible bit (and refuses a data-file option without it) */
      if (names->needs_data_file)
        w->l->v[idx].data_file = k;
      w->l->v[k].format = "raw";
    }
  }
  r = 0;
 out:
  if (fd != -1)
    close (fd);
  free (names);
  return r;
}

int
layers_check (const char *path, const char *format, char *const *allowed, size_t n_allowed,
              struct layers *out, struct np_error *err)
{
  struct walk *w = calloc (1, sizeof *w);
  int r;

  if (w == NULL)
    return np_error_set (err, NP_EXIT_RUNTIME, "out of memory");
  w->image = path;
  w->allowed = allowed;
  w->n_allowed = n_allowed;
  w->l = out;
  out->n = 0;
  if (add_file (w, path, LAYER_BACKING, err) == -1) {
    free (w);
    return -1;
  }
  snprintf (out->v[0].path, sizeof out->v[0].path, "%s", path);
  if (realpath (path, w->real[0]) == NULL)
    snprintf (w->real[0], PATH_MAX, "%s", path);
  out->v[0].format = format;
  r = walk_file (w, 0, 0, 0, err);
  free (w);
  return r;
}

int
layers_recorded (const char *path, const struct layers *l, struct np_error *err)
{
  for (size_t i = 0; i < l->n; i++) {
    int b = l->v[i].backing;
    /* a QED can record only "raw" (its no-probe feature) */
    if (b >= 0 && !l->v[b].recorded_format && strcmp (l->v[i].format, "qed") == 0)
      return np_error_set (err, NP_EXIT_RUNTIME,
                           "%s: refused: %s does not record its backing file's format (a QED "
                           "can record raw only), which qemu would then guess; use --direct, "
                           "which gives qemu every layer's format", path,
                           i ? l->v[i].path : "the image");
    if (b >= 0 && !l->v[b].recorded_format)
      return np_error_set (err, NP_EXIT_RUNTIME,
                           "%s: refused: %s does not record its backing file's format, which "
                           "qemu would then guess; record it with 'qemu-img rebase -u -F %s "
                           "-b NAME %s' (or use --direct)", path,
                           i ? l->v[i].path : "the image", l->v[b].format,
                           i ? l->v[i].path : path);
  }
  return 0;
}

/* --- the qemu spec -------------------------------------------------- */

int
layers_json_str (FILE *f, const char *s)
{
  fputc ('"', f);
  for (const unsigned char *p = (const unsigned char *) s; *p; p++)
    if (*p == '"' || *p == '\\')
      fprintf (f, "\\%c", *p);
    else if (*p < 0x20)
      fprintf (f, "\\u%04x", *p);
    else
      fputc (*p, f);
  return fputc ('"', f) == EOF ? -1 : 0;
}

static void
json_layer (FILE *f, const struct layers *l, int i, int chain)
{
  const struct layer_file *v = &l->v[i];

  fprintf (f, "{\"driver\":\"%s\",\"file\":{\"driver\":\"file\",\"filename\":", v->format);
  layers_json_str (f, v->path);
  fputc ('}', f);
  if (v->data_file >= 0) {
    fputs (",\"data-file\":{\"driver\":\"file\",\"filename\":", f);
    layers_json_str (f, l->v[v->data_file].path);
    fputc ('}', f);
  }
  if (v->backing >= 0 && chain) {
    fputs (",\"backing\":", f);
    json_layer (f, l, v->backing, 1);
  }
  else if (strcmp (v->format, "qcow2") == 0 || strcmp (v->format, "vmdk") == 0 ||
           strcmp (v->format, "qed") == 0)
    fputs (",\"backing\":null", f);   /* nothing else, even if asked */
  fputc ('}', f);
}

static char *
spec_of (const struct layers *l, int i, int chain)
{
  char *spec = NULL;
  size_t len = 0;
  FILE *f = open_memstream (&spec, &len);

  if (f == NULL)
    return NULL;
  fputs ("json:", f);
  json_layer (f, l, i, chain);
  if (fclose (f) != 0) {
    free (spec);
    return NULL;
  }
  return spec;
}

int
layers_qemu_spec (const struct layers *l, char **spec, char ***each)
{
  int other = 0;
  size_t n = 0;

  *spec = NULL;
  *each = NULL;
  for (size_t i = 0; i < l->n; i++)
    other |= l->v[i].backing >= 0 || l->v[i].data_file >= 0;
  if (!other)
    return 0;
  if ((*spec = spec_of (l, 0, 1)) == NULL ||
      (*each = calloc (LAYERS_DEPTH_MAX + 2, sizeof **each)) == NULL)
    goto fail;
  for (int i = 0; i >= 0 && n <= LAYERS_DEPTH_MAX; i = l->v[i].backing)
    if (((*each)[n++] = spec_of (l, i, 0)) == NULL)
      goto fail;
  return 0;
 fail:
  free (*spec);
  *spec = NULL;
  layers_specs_free (*each);
  *each = NULL;
  return -1;
}

void
layers_specs_free (char **each)
{
  for (size_t i = 0; each && each[i]; i++)
    free (each[i]);
  free (each);
}
