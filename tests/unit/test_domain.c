/* Unit tests: a libvirt domain's disks read from its XML (domain.c). */
#include <string.h>

#include "unit.h"
#include "domain.h"

static int
parse (const char *xml, struct domain *d, struct np_error *err)
{
  memset (d, 0, sizeof *d);
  return domain_parse_xml ("vm", xml, strlen (xml), d, err);
}

START_TEST (test_disks)
{
  struct domain d;
  struct np_error err;
  const char *xml =
    "<domain type='kvm'><name>vm</name><devices>"
    "<disk type='file' device='disk'><driver name='qemu' type='raw'/>"
    "<source file='/v/data.raw'/><target dev='vda'/></disk>"
    "<disk type='file' device='cdrom'><target dev='sda'/><readonly/></disk>"     /* no medium */
    "<disk type='block' device='disk'><driver name='qemu' type='qcow2'/>"
    "<source dev='/dev/vg/win'/><target dev='vdb'/></disk>"
    "<disk type='file' device='cdrom'><source file='/iso/x.iso'/><target dev='sdb'/></disk>"
    "<disk type='file' device='disk'><source file='/v/nofmt'/><target dev='vdc'/>"
    "<readonly/></disk>"
    "<interface type='network'/></devices></domain>";

  ck_assert_int_eq (parse (xml, &d, &err), 0);
  ck_assert_uint_eq (d.n, 4);
  ck_assert_str_eq (d.disks[0].path, "/v/data.raw");
  ck_assert_str_eq (d.disks[0].format, "raw");
  ck_assert_int_eq (d.disks[0].readonly, 0);
  ck_assert_str_eq (d.disks[1].path, "/dev/vg/win");
  ck_assert_str_eq (d.disks[1].format, "qcow2");
  ck_assert_str_eq (d.disks[1].target, "vdb");
  ck_assert_str_eq (d.disks[2].path, "/iso/x.iso");
  ck_assert_int_eq (d.disks[2].readonly, 1);               /* a CD-ROM */
  ck_assert (d.disks[3].format == NULL);                   /* detected later */
  ck_assert_int_eq (d.disks[3].readonly, 1);
  domain_free (&d);
}
END_TEST

START_TEST (test_refused)
{
  struct domain d;
  struct np_error err;

  ck_assert_int_eq (parse ("<domain><devices></devices></domain>", &d, &err), -1);
  ck_assert_str_eq (err.msg, "domain vm: the domain has no disks");
  ck_assert_int_eq (parse ("<domain><devices><disk type='network' device='disk'>"
                           "<source protocol='rbd' name='p/i'/><target dev='vda'/></disk>"
                           "</devices></domain>", &d, &err), -1);
  ck_assert_str_eq (err.msg, "domain vm: disk vda is a 'network' disk: only local files and "
                    "block devices can be opened");
  ck_assert_int_eq (parse ("<domain><devices><disk type='file' device='disk'>"
                           "<driver type='parallels'/><source file='/a'/><target dev='vda'/></disk>"
                           "</devices></domain>", &d, &err), -1);
  ck_assert (strstr (err.msg, "format 'parallels' is not one netvsc-patch opens") != NULL);
  ck_assert_int_eq (parse ("<domain><devices><disk type='file' device='disk'>"
                           "<target dev='vda'/></disk></devices></domain>", &d, &err), -1);
  ck_assert_str_eq (err.msg, "domain vm: disk vda names no source file");
  ck_assert_int_eq (parse ("<domain><devices", &d, &err), -1);
  ck_assert_int_eq (err.code, NP_EXIT_RUNTIME);
  ck_assert_uint_eq (d.n, 0);
}
END_TEST

START_TEST (test_drive_names)
{
  char b[8];

  domain_drive_name (0, b, sizeof b);
  ck_assert_str_eq (b, "sda");
  domain_drive_name (25, b, sizeof b);
  ck_assert_str_eq (b, "sdz");
  domain_drive_name (26, b, sizeof b);
  ck_assert_str_eq (b, "sdaa");
  domain_drive_name (27, b, sizeof b);
  ck_assert_str_eq (b, "sdab");
  domain_drive_name (52, b, sizeof b);
  ck_assert_str_eq (b, "sdba");
}
END_TEST

Suite *
domain_suite (void)
{
  Suite *s = suite_create ("domain");
  TCase *tc = tcase_create ("core");

  tcase_add_test (tc, test_disks);
  tcase_add_test (tc, test_refused);
  tcase_add_test (tc, test_drive_names);
  suite_add_tcase (s, tc);
  return s;
}
