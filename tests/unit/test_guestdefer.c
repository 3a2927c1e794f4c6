/* Unit tests: installing and removing the boot-time action through a
 * disk backend, here an in-memory one that records every write, so the
 * order of the writes (files before their registration, registration
 * out before the files) and idempotency are checked without an image. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "unit.h"
#include "guestdefer.h"

#define MAX_FILES 8

struct memdisk {
  struct { char *path, *data; size_t len; } f[MAX_FILES];
  size_t n;
  char log[1024];          /* "w:/path;r:/path;" for each write and removal */
};

static int
mem_find (struct memdisk *m, const char *path)
{
  for (size_t i = 0; i < m->n; i++)
    if (strcasecmp (m->f[i].path, path) == 0)   /* NTFS: case-insensitive */
      return (int) i;
  return -1;
}

static int
mem_read (struct disk *d, const char *path, char **buf, size_t *len, struct np_error *err)
{
  struct memdisk *m = (struct memdisk *) d;
  int i = mem_find (m, path);

  (void) err;
  if (i == -1)
    return 1;
  *buf = malloc (m->f[i].len + 1);
  memcpy (*buf, m->f[i].data, m->f[i].len);
  (*buf)[m->f[i].len] = '\0';
  *len = m->f[i].len;
  return 0;
}

static int
mem_write (struct disk *d, const char *path, const char *buf, size_t len,
           struct np_error *err)
{
  struct memdisk *m = (struct memdisk *) d;
  int i = mem_find (m, path);

  (void) err;
  if (i == -1) {
    ck_assert_uint_lt (m->n, MAX_FILES);
    i = (int) m->n++;
    m->f[i].path = strdup (path);
  }
  else
    free (m->f[i].data);
  m->f[i].data = malloc (len + 1);   /* NUL-terminated, for the string checks */
  memcpy (m->f[i].data, buf, len);
  m->f[i].data[len] = '\0';
  m->f[i].len = len;
  strcat (m->log, "w:");
  strcat (m->log, strrchr (path, '/') + 1);
  strcat (m->log, ";");
  return 0;
}

static int
mem_remove (struct disk *d, const char *path, struct np_error *err)
{
  struct memdisk *m = (struct memdisk *) d;
  int i = mem_find (m, path);

  (void) err;
  if (i == -1)
    return 0;
  free (m->f[i].path);
  free (m->f[i].data);
  m->f[i] = m->f[--m->n];
  strcat (m->log, "r:");
  strcat (m->log, strrchr (path, '/') + 1);
  strcat (m->log, ";");
  return 0;
}

static const struct disk_backend mem_backend = {
  .name = "memory", .read_file = mem_read, .write_file = mem_write,
  .remove_file = mem_remove,
};

static void
mem_free (struct memdisk *m)
{
  for (size_t i = 0; i < m->n; i++) {
    free (m->f[i].path);
    free (m->f[i].data);
  }
  memset (m, 0, sizeof *m);
}

static void
mem_put (struct memdisk *m, const char *path, const char *data, size_t len)
{
  struct np_error err;
  mem_write ((struct disk *) m, path, data, len, &err);
  m->log[0] = '\0';
}

static enum defer_result
run (struct memdisk *m, const struct defer_spec *spec, int install, int dry)
{
  struct np_error err = { 0, "" };
  enum defer_result res;

  m->log[0] = '\0';
  ck_assert_msg (guest_defer (&mem_backend, (struct disk *) m, spec, install, dry, &res,
                              &err) == 0, "%s", err.msg);
  return res;
}

static size_t
clen (struct memdisk *m, const char *path)
{
  int i = mem_find (m, path);
  ck_assert_int_ne (i, -1);
  return m->f[i].len;
}

static const char *
content (struct memdisk *m, const char *path)
{
  int i = mem_find (m, path);
  return i == -1 ? NULL : m->f[i].data;
}

START_TEST (test_install_remove)
{
  struct memdisk m = { 0 };
  struct defer_value v[] = {
    { .name = "ReceiveBufferSize", .is_dword = 1, .dword = 4096, .check = 1 },
  };
  struct defer_spec spec = { .match = { MATCH_NETVSC, NULL }, .values = v, .n = 1 };
  char *gpt1;

  /* a dry run writes nothing */
  ck_assert_int_eq (run (&m, &spec, 1, 1), DEFER_INSTALLED);
  ck_assert_str_eq (m.log, "");
  ck_assert_uint_eq (m.n, 0);

  /* files first, then scripts.ini, gpt.ini last (its Version makes
   * Windows process the policy) */
  ck_assert_int_eq (run (&m, &spec, 1, 0), DEFER_INSTALLED);
  ck_assert_str_eq (m.log, "w:netvsc-patch.ps1;w:netvsc-patch.cmd;w:scripts.ini;w:gpt.ini;");
  ck_assert_ptr_nonnull (strstr (content (&m, DEFER_PS1), "ReceiveBufferSize"));
  gpt1 = strdup (content (&m, DEFER_GPT_INI));

  /* twice: registered once, nothing written */
  ck_assert_int_eq (run (&m, &spec, 1, 0), DEFER_IN_PLACE);
  ck_assert_str_eq (m.log, "");

  /* other values: only the script changes */
  v[0].dword = 8192;
  ck_assert_int_eq (run (&m, &spec, 1, 0), DEFER_UPDATED);
  ck_assert_str_eq (m.log, "w:netvsc-patch.ps1;");
  ck_assert_str_eq (content (&m, DEFER_GPT_INI), gpt1);

  /* remove: unregister first, then the files; twice: nothing */
  ck_assert_int_eq (run (&m, &spec, 0, 1), DEFER_REMOVED);
  ck_assert_str_eq (m.log, "");
  ck_assert_int_eq (run (&m, &spec, 0, 0), DEFER_REMOVED);
  ck_assert_str_eq (m.log, "w:scripts.ini;w:gpt.ini;r:netvsc-patch.ps1;r:netvsc-patch.cmd;");
  ck_assert_ptr_null (content (&m, DEFER_PS1));
  ck_assert_int_eq (defer_scripts_ini_has (content (&m, DEFER_SCRIPTS_INI),
                                           clen (&m, DEFER_SCRIPTS_INI)), 0);
  ck_assert_str_ne (content (&m, DEFER_GPT_INI), gpt1);   /* version bumped again */
  ck_assert_int_eq (run (&m, &spec, 0, 0), DEFER_ABSENT);
  ck_assert_str_eq (m.log, "");
  free (gpt1);
  mem_free (&m);
}
END_TEST

/* "0CmdLine=other" in UTF-16LE */
#define OTHER_U16 "0\0C\0m\0d\0L\0i\0n\0e\0=\0o\0t\0h\0e\0r\0"

START_TEST (test_keeps_other_policy)
{
  struct memdisk m = { 0 };
  struct defer_value v[] = { { .name = "*JumboPacket", .text = "9014", .check = 1 } };
  struct defer_spec spec = { .match = { MATCH_DESC, "Intel" }, .values = v, .n = 1 };
  /* someone's startup script, in UTF-16LE with a BOM, as gpedit writes */
  const char ini[] = "\r\n[Startup]\r\n0CmdLine=other.cmd\r\n0Parameters=-x\r\n";
  char u16[2 * sizeof ini + 2];
  size_t n = 0;
  const char gpt[] = "[General]\r\ngPCMachineExtensionNames=[{35378EAC-683F-11D2-A89A-"
                     "00C04FBBCFA2}{D02B1F72-3407-48AE-BA88-E8213C6761F1}]\r\n"
                     "Version=65539\r\n";

  u16[n++] = (char) 0xff;
  u16[n++] = (char) 0xfe;
  for (size_t i = 0; i < sizeof ini - 1; i++) {
    u16[n++] = ini[i];
    u16[n++] = 0;
  }
  mem_put (&m, DEFER_SCRIPTS_INI, u16, n);
  mem_put (&m, DEFER_GPT_INI, gpt, sizeof gpt - 1);
  ck_assert_int_eq (run (&m, &spec, 1, 0), DEFER_INSTALLED);
  ck_assert_int_eq (defer_scripts_ini_has (content (&m, DEFER_SCRIPTS_INI),
                                           clen (&m, DEFER_SCRIPTS_INI)), 1);
  /* the other script is still there, first */
  ck_assert_ptr_nonnull (memmem (content (&m, DEFER_SCRIPTS_INI), clen (&m, DEFER_SCRIPTS_INI),
                                 OTHER_U16, sizeof OTHER_U16 - 1));
  /* the user half of Version (1) is kept, the machine half (3) bumped */
  ck_assert_ptr_nonnull (strstr (content (&m, DEFER_GPT_INI), "Version=65540"));
  ck_assert_ptr_nonnull (strstr (content (&m, DEFER_GPT_INI), "{35378EAC-683F-11D2-A89A-00C04FBBCFA2}"));
  ck_assert_ptr_nonnull (strstr (content (&m, DEFER_GPT_INI), "{42B5FAAE-6536-11D2-AE5A-0000F87571E3}"));
  ck_assert_int_eq (run (&m, &spec, 0, 0), DEFER_REMOVED);
  ck_assert_ptr_nonnull (memmem (content (&m, DEFER_SCRIPTS_INI), clen (&m, DEFER_SCRIPTS_INI),
                                 OTHER_U16, sizeof OTHER_U16 - 1));
  mem_free (&m);
}
END_TEST

START_TEST (test_unparseable_left_alone)
{
  struct memdisk m = { 0 };
  struct defer_value v[] = { { .name = "ReceiveBufferSize", .is_dword = 1, .dword = 4096 } };
  struct defer_spec spec = { .match = { MATCH_NETVSC, NULL }, .values = v, .n = 1 };
  struct np_error err = { 0, "" };
  enum defer_result res;
  const char junk[] = "\x01\x02 not an ini \x00\xff";

  mem_put (&m, DEFER_GPT_INI, junk, sizeof junk);
  ck_assert_int_eq (guest_defer (&mem_backend, (struct disk *) &m, &spec, 1, 0, &res, &err), -1);
  ck_assert_msg (strstr (err.msg, "gpt.ini cannot be parsed"), "%s", err.msg);
  /* nothing was written: the check comes before any write */
  ck_assert_str_eq (m.log, "");
  ck_assert_uint_eq (m.n, 1);
  mem_free (&m);
}
END_TEST

/* --defer=setup: the files beside SetupComplete.cmd and our call first
 * in it; switching kinds takes the other out; --remove takes out both;
 * a SetupComplete.cmd that held only our call goes with it. */
START_TEST (test_setup_mode)
{
  struct memdisk m = { 0 };
  struct defer_value v[] = {
    { .name = "ReceiveBufferSize", .is_dword = 1, .dword = 4096, .check = 1 },
  };
  struct defer_spec spec = { .match = { MATCH_NETVSC, NULL }, .values = v, .n = 1,
                             .mode = DEFER_SETUP };
  const char theirs[] = "@echo off\r\ncall C:\\Deploy\\finish.cmd\r\nshutdown /r /t 0\r\n";
  const char block[] = "rem netvsc-patch --defer=setup: begin\r\n"
    "call \"%SystemRoot%\\Setup\\Scripts\\netvsc-patch.cmd\"\r\n"
    "rem netvsc-patch --defer=setup: end\r\n";
  char want[512];

  mem_put (&m, DEFER_SETUPCOMPLETE, theirs, sizeof theirs - 1);
  ck_assert_int_eq (run (&m, &spec, 1, 1), DEFER_INSTALLED);
  ck_assert_str_eq (m.log, "");
  ck_assert_int_eq (run (&m, &spec, 1, 0), DEFER_INSTALLED);
  ck_assert_str_eq (m.log, "w:netvsc-patch.ps1;w:netvsc-patch.cmd;w:SetupComplete.cmd;");
  snprintf (want, sizeof want, "%s%s", block, theirs);
  ck_assert_str_eq (content (&m, DEFER_SETUPCOMPLETE), want);
  ck_assert_ptr_nonnull (strstr (content (&m, DEFER_SETUP_PS1), "\r\n$Mode = 'setup'\r\n"));
  ck_assert_ptr_null (content (&m, DEFER_SCRIPTS_INI));
  ck_assert_ptr_null (content (&m, DEFER_PS1));
  ck_assert_int_eq (run (&m, &spec, 1, 0), DEFER_IN_PLACE);
  ck_assert_str_eq (m.log, "");

  /* to every boot: the startup script in, our call out (theirs kept) */
  spec.mode = DEFER_ALWAYS;
  ck_assert_int_eq (run (&m, &spec, 1, 0), DEFER_INSTALLED);
  ck_assert_str_eq (m.log, "w:netvsc-patch.ps1;w:netvsc-patch.cmd;w:scripts.ini;w:gpt.ini;"
                    "w:SetupComplete.cmd;r:netvsc-patch.ps1;r:netvsc-patch.cmd;");
  ck_assert_str_eq (content (&m, DEFER_SETUPCOMPLETE), theirs);
  ck_assert_ptr_null (content (&m, DEFER_SETUP_PS1));
  ck_assert_ptr_nonnull (strstr (content (&m, DEFER_PS1), "\r\n$Mode = 'always'\r\n"));

  /* and back: the startup script's entry out */
  spec.mode = DEFER_SETUP;
  ck_assert_int_eq (run (&m, &spec, 1, 0), DEFER_INSTALLED);
  ck_assert_int_eq (defer_scripts_ini_has (content (&m, DEFER_SCRIPTS_INI),
                                           clen (&m, DEFER_SCRIPTS_INI)), 0);
  ck_assert_ptr_null (content (&m, DEFER_PS1));

  /* --remove: our block out, theirs kept as it was */
  ck_assert_int_eq (run (&m, &spec, 0, 0), DEFER_REMOVED);
  ck_assert_str_eq (m.log, "w:SetupComplete.cmd;r:netvsc-patch.ps1;r:netvsc-patch.cmd;");
  ck_assert_str_eq (content (&m, DEFER_SETUPCOMPLETE), theirs);
  ck_assert_int_eq (run (&m, &spec, 0, 0), DEFER_ABSENT);

  /* no SetupComplete.cmd: created with our call alone; removed whole */
  mem_free (&m);
  ck_assert_int_eq (run (&m, &spec, 1, 0), DEFER_INSTALLED);
  ck_assert_str_eq (content (&m, DEFER_SETUPCOMPLETE), block);
  ck_assert_int_eq (run (&m, &spec, 0, 0), DEFER_REMOVED);
  ck_assert_str_eq (m.log, "r:SetupComplete.cmd;r:netvsc-patch.ps1;r:netvsc-patch.cmd;");
  ck_assert_uint_eq (m.n, 0);
  mem_free (&m);
}
END_TEST

/* Someone else's file of the other kind that cannot be parsed (a
 * UTF-16 SetupComplete.cmd, a broken scripts.ini) does not stop an
 * install or --remove, and is left alone; one that names us does. */
START_TEST (test_other_kind_unparseable)
{
  struct memdisk m = { 0 };
  struct defer_value v[] = { { .name = "ReceiveBufferSize", .is_dword = 1, .dword = 4096 } };
  struct defer_spec spec = { .match = { MATCH_NETVSC, NULL }, .values = v, .n = 1 };
  struct np_error err = { 0, "" };
  enum defer_result res;
  const char u16[] = "\xff\xfe@\0e\0c\0h\0o\0 \0o\0f\0f\0\r\0\n\0";
  const char junk[] = "\x01 not an ini";
  const char ours[] = "\x01 not an ini, NETVSC-PATCH.cmd";

  mem_put (&m, DEFER_SETUPCOMPLETE, u16, sizeof u16 - 1);
  ck_assert_int_eq (run (&m, &spec, 1, 0), DEFER_INSTALLED);
  ck_assert_int_eq (run (&m, &spec, 0, 0), DEFER_REMOVED);
  ck_assert_uint_eq (clen (&m, DEFER_SETUPCOMPLETE), sizeof u16 - 1);
  ck_assert (memcmp (content (&m, DEFER_SETUPCOMPLETE), u16, sizeof u16 - 1) == 0);
  mem_free (&m);

  spec.mode = DEFER_SETUP;
  mem_put (&m, DEFER_SCRIPTS_INI, junk, sizeof junk - 1);
  ck_assert_int_eq (run (&m, &spec, 1, 0), DEFER_INSTALLED);
  ck_assert_str_eq (content (&m, DEFER_SCRIPTS_INI), junk);
  mem_free (&m);

  mem_put (&m, DEFER_SCRIPTS_INI, ours, sizeof ours - 1);
  ck_assert_int_eq (guest_defer (&mem_backend, (struct disk *) &m, &spec, 1, 1, &res, &err), -1);
  ck_assert_msg (strstr (err.msg, "scripts.ini cannot be parsed"), "%s", err.msg);
  mem_free (&m);
}
END_TEST

Suite *
guestdefer_suite (void)
{
  Suite *s = suite_create ("guestdefer");
  TCase *tc = tcase_create ("core");

  tcase_add_test (tc, test_install_remove);
  tcase_add_test (tc, test_keeps_other_policy);
  tcase_add_test (tc, test_unparseable_left_alone);
  tcase_add_test (tc, test_setup_mode);
  tcase_add_test (tc, test_other_kind_unparseable);
  suite_add_tcase (s, tc);
  return s;
}
