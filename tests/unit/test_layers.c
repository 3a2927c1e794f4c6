/* Unit tests: what other files an image names (layers.c), parsed from
 * bytes built here after the formats' specifications, and the checker
 * on files in a temporary directory. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "unit.h"
#include "layers.h"

static unsigned char img[1 << 20];

static void
put_be32 (unsigned char *p, uint32_t v)
{
  p[0] = (unsigned char) (v >> 24); p[1] = (unsigned char) (v >> 16);
  p[2] = (unsigned char) (v >> 8); p[3] = (unsigned char) v;
}

static void
put_be64 (unsigned char *p, uint64_t v)
{
  put_be32 (p, (uint32_t) (v >> 32));
  put_be32 (p + 4, (uint32_t) v);
}

static void
put_le (unsigned char *p, uint64_t v, int bytes)
{
  for (int i = 0; i < bytes; i++)
    p[i] = (unsigned char) (v >> (8 * i));
}

static int
parse (const char *fmt, size_t len, struct layer_names *out, char *why)
{
  struct layers_src src;
  struct layers_mem m;

  layers_mem_src (&src, &m, img, len);
  return layers_parse (fmt, 0, &src, out, why, 256);
}

/* A qcow2 v3 header (64 KiB clusters) with an optional backing name,
 * backing format extension and data file extension. */
static size_t
make_qcow2 (const char *backing, const char *bfmt, const char *data, int data_bit)
{
  size_t off = 104;

  memset (img, 0, 65536);
  memcpy (img, "QFI\xfb", 4);
  put_be32 (img + 4, 3);
  put_be32 (img + 20, 16);
  put_be32 (img + 100, 104);
  if (data_bit)
    put_be64 (img + 72, 4);
  if (bfmt) {
    put_be32 (img + off, 0xE2792ACA);
    put_be32 (img + off + 4, (uint32_t) strlen (bfmt));
    memcpy (img + off + 8, bfmt, strlen (bfmt));
    off += 8 + ((strlen (bfmt) + 7) & ~7u);
  }
  if (data) {
    put_be32 (img + off, 0x44415441);
    put_be32 (img + off + 4, (uint32_t) strlen (data));
    memcpy (img + off + 8, data, strlen (data));
    off += 8 + ((strlen (data) + 7) & ~7u);
  }
  off += 8;                     /* end marker */
  if (backing) {
    put_be64 (img + 8, 4096);
    put_be32 (img + 16, (uint32_t) strlen (backing));
    memcpy (img + 4096, backing, strlen (backing));
  }
  return 65536;
}

START_TEST (test_qcow2_names)
{
  struct layer_names n;
  char why[256];

  ck_assert_int_eq (parse ("qcow2", make_qcow2 (NULL, NULL, NULL, 0), &n, why), 0);
  ck_assert_int_eq (n.n, 0);

  ck_assert_int_eq (parse ("qcow2", make_qcow2 ("base.qcow2", "qcow2", NULL, 0), &n, why), 0);
  ck_assert_int_eq (n.n, 1);
  ck_assert_int_eq (n.v[0].role, LAYER_BACKING);
  ck_assert_str_eq (n.v[0].name, "base.qcow2");
  ck_assert_str_eq (n.v[0].format, "qcow2");

  ck_assert_int_eq (parse ("qcow2", make_qcow2 ("b.raw", NULL, "/etc/shadow", 1), &n, why), 0);
  ck_assert_int_eq (n.n, 2);
  ck_assert_str_eq (n.v[0].format, "");
  ck_assert_int_eq (n.v[1].role, LAYER_DATA_FILE);
  ck_assert_str_eq (n.v[1].name, "/etc/shadow");
  ck_assert_int_eq (n.needs_data_file, 1);

  /* the data file bit with no name: flagged, nothing named */
  ck_assert_int_eq (parse ("qcow2", make_qcow2 (NULL, NULL, NULL, 1), &n, why), 0);
  ck_assert_int_eq (n.needs_data_file, 1);
  ck_assert_int_eq (n.n, 0);

  /* a name cut by a NUL is what qemu reads */
  make_qcow2 ("abc", NULL, NULL, 0);
  img[4097] = 0;
  ck_assert_int_eq (parse ("qcow2", 65536, &n, why), 0);
  ck_assert_str_eq (n.v[0].name, "a");
}
END_TEST

START_TEST (test_qcow2_bounds)
{
  struct layer_names n;
  char why[256];

  /* backing name past the end of a short file */
  make_qcow2 ("base", NULL, NULL, 0);
  ck_assert_int_eq (parse ("qcow2", 4098, &n, why), -1);
  ck_assert_msg (strstr (why, "backing") != NULL, "%s", why);
  /* name longer than qemu's 1023 */
  make_qcow2 ("x", NULL, NULL, 0);
  put_be32 (img + 16, 2000);
  ck_assert_int_eq (parse ("qcow2", 65536, &n, why), -1);
  /* backing offset beyond the first cluster */
  make_qcow2 ("x", NULL, NULL, 0);
  put_be64 (img + 8, 1 << 20);
  ck_assert_int_eq (parse ("qcow2", sizeof img, &n, why), -1);
  /* extension length running past the cluster */
  make_qcow2 (NULL, "qcow2", NULL, 0);
  put_be32 (img + 108, 0xfffffff0u);
  ck_assert_int_eq (parse ("qcow2", 65536, &n, why), -1);
  /* absurd cluster bits, header length */
  make_qcow2 (NULL, NULL, NULL, 0);
  put_be32 (img + 20, 40);
  ck_assert_int_eq (parse ("qcow2", 65536, &n, why), -1);
  make_qcow2 (NULL, NULL, NULL, 0);
  put_be32 (img + 100, 1u << 30);
  ck_assert_int_eq (parse ("qcow2", 65536, &n, why), -1);
  /* truncated header */
  ck_assert_int_eq (parse ("qcow2", 50, &n, why), -1);
}
END_TEST

static size_t
text (const char *s)
{
  size_t len = strlen (s);
  memcpy (img, s, len);
  return len;
}

START_TEST (test_vmdk_descriptor)
{
  struct layer_names n;
  char why[256];

  ck_assert_int_eq (parse ("vmdk", text ("# Disk DescriptorFile\nversion=1\n"
                                         "createType=\"monolithicFlat\"\n"
                                         "RW 100 FLAT \"x-flat.vmdk\" 0\n"
                                         "RW 88 FLAT \"/home/admin/.ssh/authorized_keys\" 0\n"
                                         "RDONLY 10 SPARSE \"s.vmdk\"\n"
                                         "  NOACCESS 5 ZERO\n"
                                         "ddb.adapterType = \"ide\"\n"), &n, why), 0);
  ck_assert_int_eq (n.n, 3);
  ck_assert_str_eq (n.v[0].name, "x-flat.vmdk");
  ck_assert_str_eq (n.v[1].name, "/home/admin/.ssh/authorized_keys");
  ck_assert_str_eq (n.v[2].name, "s.vmdk");
  for (size_t i = 0; i < n.n; i++)
    ck_assert_int_eq (n.v[i].role, LAYER_EXTENT);

  /* parent hint as qemu reads it: 20 bytes on from the word */
  ck_assert_int_eq (parse ("vmdk", text ("# Disk DescriptorFile\n"
                                         "parentFileNameHint=\"base.vmdk\"\n"
                                         "RW 100 SPARSE \"d.vmdk\"\n"), &n, why), 0);
  ck_assert_int_eq (n.n, 2);
  ck_assert_int_eq (n.v[1].role, LAYER_BACKING);
  ck_assert_str_eq (n.v[1].name, "base.vmdk");
  ck_assert_str_eq (n.v[1].format, "vmdk");

  /* after a NUL nothing counts (qemu reads a C string) */
  memcpy (img, "# Disk DescriptorFile\n\0RW 1 FLAT \"/etc/passwd\" 0\n", 50);
  ck_assert_int_eq (parse ("vmdk", 50, &n, why), 0);
  ck_assert_int_eq (n.n, 0);

  /* qemu's sscanf skips newlines between fields: so do we */
  ck_assert_int_eq (parse ("vmdk", text ("RW\n 100\n\n FLAT\n \"spread.vmdk\" 0\n"), &n, why), 0);
  ck_assert_int_eq (n.n, 1);
  ck_assert_str_eq (n.v[0].name, "spread.vmdk");

  /* 1 MB of blank lines and fields: linear, not quadratic (Check's
   * timeout fails it otherwise) */
  memset (img, '\n', sizeof img);
  memcpy (img + sizeof img - 40, "RW 1 FLAT \"end.vmdk\" 0", 23);
  ck_assert_int_eq (parse ("vmdk", sizeof img, &n, why), 0);
  ck_assert_int_eq (n.n, 1);
  for (size_t i = 0; i < sizeof img; i += 2)
    memcpy (img + i, i % 4 ? "\n" : "R ", 2);
  ck_assert_int_eq (parse ("vmdk", sizeof img, &n, why), 0);

  /* an unterminated hint is refused */
  ck_assert_int_eq (parse ("vmdk", text ("parentFileNameHint=\"abc"), &n, why), -1);
}
END_TEST

START_TEST (test_vmdk_sparse)
{
  struct layer_names n;
  char why[256];
  const char *d = "# Disk DescriptorFile\nRW 100 SPARSE \"other.vmdk\"\n";

  /* capacity 0, descriptor at sector 1: its extents count */
  memset (img, 0, 4096);
  memcpy (img, "KDMV", 4);
  put_le (img + 4, 1, 4);
  put_le (img + 28, 1, 8);
  memcpy (img + 512, d, strlen (d));
  ck_assert_int_eq (parse ("vmdk", 4096, &n, why), 0);
  ck_assert_int_eq (n.n, 1);
  ck_assert_str_eq (n.v[0].name, "other.vmdk");

  /* with data of its own (monolithicSparse): extents are not read, the
   * parent hint at 0x200 is */
  memset (img + 512, 0, 1024);
  put_le (img + 12, 2048, 8);
  d = "# Disk DescriptorFile\nRW 100 SPARSE \"self.vmdk\"\nparentFileNameHint=\"p.vmdk\"\n";
  memcpy (img + 512, d, strlen (d));
  ck_assert_int_eq (parse ("vmdk", 4096, &n, why), 0);
  ck_assert_int_eq (n.n, 1);
  ck_assert_int_eq (n.v[0].role, LAYER_BACKING);
  ck_assert_str_eq (n.v[0].name, "p.vmdk");

  /* descriptor offset past the end */
  put_le (img + 12, 0, 8);
  put_le (img + 28, 1000, 8);
  ck_assert_int_eq (parse ("vmdk", 4096, &n, why), -1);
}
END_TEST

START_TEST (test_vhd_parent)
{
  struct layer_names n;
  char why[256];
  const char *name = "parent.vhd";

  memset (img, 0, 4096);
  memcpy (img, "conectix", 8);
  put_be64 (img + 16, 512);
  put_be32 (img + 60, 4);
  memcpy (img + 512, "cxsparse", 8);
  for (size_t i = 0; i < strlen (name); i++)
    img[512 + 64 + 2 * i + 1] = (unsigned char) name[i];
  memcpy (img + 4096 - 512, img, 512);
  ck_assert_int_eq (parse ("vpc", 4096, &n, why), 0);
  ck_assert_int_eq (n.has_parent, 1);
  ck_assert_int_eq (n.n, 1);
  ck_assert_str_eq (n.v[0].name, "parent.vhd");

  /* dynamic: no parent */
  put_be32 (img + 60, 3);
  put_be32 (img + 4096 - 512 + 60, 3);
  ck_assert_int_eq (parse ("vpc", 4096, &n, why), 0);
  ck_assert_int_eq (n.has_parent, 0);

  /* a dynamic header offset far past the end: differencing, no name */
  put_be32 (img + 60, 4);
  put_be32 (img + 4096 - 512 + 60, 4);
  put_be64 (img + 4096 - 512 + 16, UINT64_MAX - 10);
  ck_assert_int_eq (parse ("vpc", 4096, &n, why), 0);
  ck_assert_int_eq (n.has_parent, 1);
  ck_assert_int_eq (n.n, 0);
}
END_TEST

/* QED: a backing name only with the backing-file feature, within the
 * header clusters; its format recorded only as raw (no-probe). */
START_TEST (test_qed_backing)
{
  struct layer_names n;
  char why[256];

  memset (img, 0, 65536);
  memcpy (img, "QED\0", 4);
  put_le (img + 4, 4096, 4);            /* cluster size */
  put_le (img + 12, 1, 4);              /* header: one cluster */
  put_le (img + 56, 64, 4);
  put_le (img + 60, 8, 4);
  memcpy (img + 64, "base.raw", 8);
  /* without the feature bit qemu ignores the name */
  ck_assert_int_eq (parse ("qed", 65536, &n, why), 0);
  ck_assert_int_eq (n.n, 0);
  put_le (img + 16, 1, 8);
  ck_assert_int_eq (parse ("qed", 65536, &n, why), 0);
  ck_assert_int_eq (n.n, 1);
  ck_assert_int_eq (n.v[0].role, LAYER_BACKING);
  ck_assert_str_eq (n.v[0].name, "base.raw");
  ck_assert_str_eq (n.v[0].format, "");
  put_le (img + 16, 5, 8);              /* + no-probe: raw */
  ck_assert_int_eq (parse ("qed", 65536, &n, why), 0);
  ck_assert_str_eq (n.v[0].format, "raw");
  /* past the header clusters: qemu refuses, so do we */
  put_le (img + 56, 4090, 4);
  ck_assert_int_eq (parse ("qed", 65536, &n, why), -1);
  ck_assert_ptr_nonnull (strstr (why, "QED backing file name qemu refuses"));
  /* past the end of the file */
  put_le (img + 12, 16, 4);
  ck_assert_int_eq (parse ("qed", 4092, &n, why), -1);
  ck_assert_ptr_nonnull (strstr (why, "past the end"));
  /* longer than we keep */
  put_le (img + 56, 64, 4);
  put_le (img + 60, 2000, 4);
  ck_assert_int_eq (parse ("qed", 65536, &n, why), -1);
  ck_assert_ptr_nonnull (strstr (why, "longer than 1023"));
  /* truncated header */
  ck_assert_int_eq (parse ("qed", 40, &n, why), -1);
}
END_TEST

/* VDI: dynamic and fixed stand alone; differencing (type 4), undo, or a
 * parent or link UUID: has_parent, the UUID as VirtualBox prints it. */
START_TEST (test_vdi_parent)
{
  static const unsigned char uuid[16] = {
    0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88,
    0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x01 };
  struct layer_names n;
  char why[256];

  memset (img, 0, 4096);
  put_le (img + 0x40, 0xbeda107f, 4);
  put_le (img + 0x4c, 1, 4);
  ck_assert_int_eq (parse ("vdi", 4096, &n, why), 0);
  ck_assert_int_eq (n.has_parent, 0);
  put_le (img + 0x4c, 2, 4);
  ck_assert_int_eq (parse ("vdi", 4096, &n, why), 0);
  ck_assert_int_eq (n.has_parent, 0);
  put_le (img + 0x4c, 4, 4);
  ck_assert_int_eq (parse ("vdi", 4096, &n, why), 0);
  ck_assert_int_eq (n.has_parent, 1);
  ck_assert_int_eq (n.n, 0);
  memcpy (img + 0x1b8, uuid, 16);
  ck_assert_int_eq (parse ("vdi", 4096, &n, why), 0);
  ck_assert_int_eq (n.n, 1);
  ck_assert_int_eq (n.v[0].role, LAYER_PARENT);
  ck_assert_str_eq (n.v[0].name, "44332211-6655-8877-99aa-bbccddeeff01");
  /* a dynamic image with a link UUID only is not standalone either */
  put_le (img + 0x4c, 1, 4);
  memset (img + 0x1b8, 0, 16);
  memcpy (img + 0x1a8, uuid, 16);
  ck_assert_int_eq (parse ("vdi", 4096, &n, why), 0);
  ck_assert_int_eq (n.has_parent, 1);
  ck_assert_int_eq (parse ("vdi", 0x100, &n, why), -1);
  ck_assert_ptr_nonnull (strstr (why, "truncated VDI header"));
}
END_TEST

START_TEST (test_vhdx_parent)
{
  static const unsigned char meta[16] = {
    0x06, 0xa2, 0x7c, 0x8b, 0x90, 0x47, 0x9a, 0x4b,
    0xb8, 0xfe, 0x57, 0x5f, 0x05, 0x0f, 0x88, 0x6e };
  static const unsigned char loc[16] = {
    0x2d, 0x5f, 0xd3, 0xa8, 0x0b, 0xb3, 0x4d, 0x45,
    0xab, 0xf7, 0xd3, 0xd8, 0x48, 0x34, 0xab, 0x0c };
  struct layer_names n;
  char why[256];
  size_t rt = 0x30000, md = 0x50000, item = md + 0x1000;
  const char *key = "relative_path", *val = "..\\base.vhdx";

  memset (img, 0, 0x60000);
  memcpy (img, "vhdxfile", 8);
  memcpy (img + rt, "regi", 4);
  put_le (img + rt + 8, 1, 4);
  memcpy (img + rt + 16, meta, 16);
  put_le (img + rt + 32, md, 8);
  put_le (img + rt + 40, 0x10000, 4);
  memcpy (img + md, "metadata", 8);
  put_le (img + md + 10, 1, 2);
  memcpy (img + md + 32, loc, 16);
  put_le (img + md + 48, 0x1000, 4);
  put_le (img + md + 52, 200, 4);
  /* locator: type GUID, reserved, count 1; entry: key at 40, value at 80 */
  put_le (img + item + 18, 1, 2);
  put_le (img + item + 20, 40, 4);
  put_le (img + item + 24, 80, 4);
  put_le (img + item + 28, 2 * strlen (key), 2);
  put_le (img + item + 30, 2 * strlen (val), 2);
  for (size_t i = 0; i < strlen (key); i++)
    img[item + 40 + 2 * i] = (unsigned char) key[i];
  for (size_t i = 0; i < strlen (val); i++)
    img[item + 80 + 2 * i] = (unsigned char) val[i];
  ck_assert_int_eq (parse ("vhdx", 0x60000, &n, why), 0);
  ck_assert_int_eq (n.has_parent, 1);
  ck_assert_int_eq (n.n, 1);
  ck_assert_str_eq (n.v[0].name, "..\\base.vhdx");

  /* a value length past the item: found the parent, not the name */
  put_le (img + item + 30, 60000, 2);
  ck_assert_int_eq (parse ("vhdx", 0x60000, &n, why), 0);
  ck_assert_int_eq (n.has_parent, 1);
  ck_assert_int_eq (n.n, 0);

  /* no metadata region: nothing */
  memset (img + rt, 0, 4);
  ck_assert_int_eq (parse ("vhdx", 0x60000, &n, why), 0);
  ck_assert_int_eq (n.has_parent, 0);
}
END_TEST

/* --- the checker on real files ------------------------------------- */

static char dir[PATH_MAX], outside[PATH_MAX];

static void
write_file (const char *path, const void *data, size_t len)
{
  int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ck_assert_int_ne (fd, -1);
  ck_assert_int_eq (write (fd, data, len), (ssize_t) len);
  close (fd);
}

static void
descriptor (const char *name, const char *extent)
{
  char path[PATH_MAX + 64], buf[PATH_MAX + 200];
  int len = snprintf (buf, sizeof buf, "# Disk DescriptorFile\nversion=1\n"
                      "createType=\"monolithicFlat\"\nRW 1 FLAT \"%s\" 0\n", extent);
  snprintf (path, sizeof path, "%s/%s", dir, name);
  write_file (path, buf, (size_t) len);
}

static int
check (const char *name, char *const *allowed, size_t n_allowed, struct np_error *err)
{
  char path[PATH_MAX + 64];
  struct layers *l = malloc (sizeof *l);
  int r;

  snprintf (path, sizeof path, "%s/%s", dir, name);
  r = layers_check (path, "vmdk", allowed, n_allowed, l, err);
  free (l);
  return r;
}

static void
setup (void)
{
  char p[PATH_MAX + 64];
  unsigned char zero[512] = { 0 };

  snprintf (dir, sizeof dir, "/tmp/netvsc-layers.XXXXXX");
  ck_assert_ptr_ne (mkdtemp (dir), NULL);
  snprintf (outside, sizeof outside, "/tmp/netvsc-layers-out.XXXXXX");
  ck_assert_int_ne (mkstemp (outside), -1);
  snprintf (p, sizeof p, "%s/x-flat.vmdk", dir);
  write_file (p, zero, sizeof zero);
  snprintf (p, sizeof p, "%s/sub", dir);
  mkdir (p, 0755);
  snprintf (p, sizeof p, "%s/sub/f", dir);
  write_file (p, zero, sizeof zero);
  snprintf (p, sizeof p, "%s/fifo", dir);
  ck_assert_int_eq (mkfifo (p, 0644), 0);
  snprintf (p, sizeof p, "%s/out-link", dir);
  ck_assert_int_eq (symlink (outside, p), 0);
  snprintf (p, sizeof p, "%s/in-link", dir);
  ck_assert_int_eq (symlink ("x-flat.vmdk", p), 0);
}

static void
teardown (void)
{
  char cmd[PATH_MAX + 16];

  snprintf (cmd, sizeof cmd, "rm -rf %s", dir);
  ck_assert_int_eq (system (cmd), 0);
  unlink (outside);
}

static void
refused (const char *extent, const char *phrase)
{
  struct np_error err = { 0, "" };

  descriptor ("t.vmdk", extent);
  ck_assert_int_eq (check ("t.vmdk", NULL, 0, &err), -1);
  ck_assert_int_eq (err.code, NP_EXIT_RUNTIME);
  ck_assert_msg (strstr (err.msg, extent) && strstr (err.msg, phrase), "%s", err.msg);
}

START_TEST (test_check_rules)
{
  struct np_error err = { 0, "" };
  char abs[PATH_MAX + 64];

  descriptor ("ok.vmdk", "x-flat.vmdk");
  ck_assert_msg (check ("ok.vmdk", NULL, 0, &err) == 0, "%s", err.msg);
  descriptor ("ok2.vmdk", "in-link");
  ck_assert_msg (check ("ok2.vmdk", NULL, 0, &err) == 0, "%s", err.msg);
  snprintf (abs, sizeof abs, "%s/x-flat.vmdk", dir);
  descriptor ("ok3.vmdk", abs);
  ck_assert_msg (check ("ok3.vmdk", NULL, 0, &err) == 0, "%s", err.msg);

  refused (outside, "outside the image's directory");
  refused ("../x", "outside the image's directory");
  refused ("sub/f", "another directory");
  refused ("fifo", "not a regular file");
  refused ("/dev/null", "outside");
  refused ("out-link", "symlink leading out");
  refused ("gone.vmdk", "is missing");
  refused ("nbd:host:10809", "protocol");
  refused ("json:{}", "json:");
  refused ("sub", "is a directory");

  /* --allow-external: exactly that file */
  {
    char *allowed[] = { outside };
    descriptor ("t.vmdk", outside);
    ck_assert_msg (check ("t.vmdk", allowed, 1, &err) == 0, "%s", err.msg);
    descriptor ("t.vmdk", "/dev/null");
    ck_assert_int_eq (check ("t.vmdk", allowed, 1, &err), -1);
  }
}
END_TEST

Suite *
layers_suite (void)
{
  Suite *s = suite_create ("layers");
  TCase *tc = tcase_create ("parse");
  TCase *tc2 = tcase_create ("check");

  tcase_add_test (tc, test_qcow2_names);
  tcase_add_test (tc, test_qcow2_bounds);
  tcase_add_test (tc, test_vmdk_descriptor);
  tcase_add_test (tc, test_vmdk_sparse);
  tcase_add_test (tc, test_vhd_parent);
  tcase_add_test (tc, test_vhdx_parent);
  tcase_add_test (tc, test_qed_backing);
  tcase_add_test (tc, test_vdi_parent);
  suite_add_tcase (s, tc);
  tcase_add_checked_fixture (tc2, setup, teardown);
  tcase_add_test (tc2, test_check_rules);
  suite_add_tcase (s, tc2);
  return s;
}
