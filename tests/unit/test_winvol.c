/* Unit tests: choosing the Windows volume (winvol.c), with volumes made
 * of hand-written path lists instead of a backend. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "unit.h"
#include "winvol.h"

/* A volume: "d /Windows", "f /Windows/System32/config/SYSTEM", ...
 * (every directory on the way listed), NULL-terminated.  FAIL_IN: a
 * directory whose listing fails. */
struct fake {
  const char *const *paths;
  const char *fail_in;
  int listings;
};

static int
fake_list (void *ctx, const char *dir, const char *name, struct winvol_name **out,
           size_t *n, char *why, size_t len)
{
  struct fake *f = ctx;
  size_t dlen = strcmp (dir, "/") ? strlen (dir) : 0;

  f->listings++;
  *out = NULL;
  *n = 0;
  if (f->fail_in && strcmp (f->fail_in, dir) == 0) {
    snprintf (why, len, "%s: Input/output error", dir);
    return -1;
  }
  for (size_t i = 0; f->paths[i]; i++) {
    const char *p = f->paths[i] + 2;
    if (strncmp (p, dir, dlen) != 0 || p[dlen] != '/' || strchr (p + dlen + 1, '/') ||
        strcasecmp (p + dlen + 1, name) != 0)
      continue;
    *out = realloc (*out, (*n + 1) * sizeof **out);
    ck_assert_ptr_nonnull (*out);
    (*out)[*n].name = strdup (p + dlen + 1);
    (*out)[*n].kind = f->paths[i][0] == 'd' ? WINVOL_DIR
      : f->paths[i][0] == 'f' ? WINVOL_FILE : WINVOL_OTHER;
    (*n)++;
  }
  return 0;
}

#define TREE(w, s32, cfg)                                               \
  "d /" w, "d /" w "/" s32, "d /" w "/" s32 "/" cfg,                    \
  "f /" w "/" s32 "/" cfg "/SYSTEM", "f /" w "/" s32 "/" cfg "/SYSTEM.LOG1", \
  "f /" w "/" s32 "/" cfg "/SYSTEM.LOG2"

static const char *const windows[] = { TREE ("Windows", "System32", "config"),
                                       "f /Windows/System32/config/SOFTWARE", NULL };
static const char *const data[] = { "d /Documents", "f /readme.txt", NULL };

/* Record DEV of TYPE and, if winvol asks, look at VOL through a fake. */
static struct winvol_fs *
add (struct winvol *w, const char *dev, const char *type, const char *const *vol)
{
  struct winvol_fs *fs = winvol_add (w, dev, type);
  struct fake f = { vol, NULL, 0 };

  if (fs)
    ck_assert_int_eq (winvol_look (fs, fake_list, &f), 0);
  return fs;
}

/* The verdict on one NTFS volume VOL, alone on the image. */
static const struct winvol_fs *
choose_one (struct winvol *w, const char *const *vol, struct np_error *err)
{
  winvol_init (w, "img.raw", NULL);
  ck_assert_ptr_nonnull (add (w, "/dev/sda1", "ntfs", vol));
  return winvol_choose (w, err);
}

START_TEST (test_one_windows)
{
  struct winvol w;
  struct np_error err = { 0, "" };
  const struct winvol_fs *fs;

  winvol_init (&w, "img.raw", NULL);
  ck_assert_ptr_null (add (&w, "/dev/sda1", "vfat", data));
  ck_assert_ptr_null (add (&w, "/dev/sda2", "swap", data));
  ck_assert_ptr_null (add (&w, "/dev/sda3", "unknown", data));
  ck_assert_ptr_nonnull (add (&w, "/dev/sda4", "ntfs", windows));
  fs = winvol_choose (&w, &err);
  ck_assert_msg (fs != NULL, "%s", err.msg);
  ck_assert_str_eq (fs->dev, "/dev/sda4");
  ck_assert_str_eq (fs->hive, "/Windows/System32/config/SYSTEM");
  winvol_free (&w);
}
END_TEST

/* Another case than Windows' own, but one spelling only: taken as is. */
START_TEST (test_other_case_spelt)
{
  static const char *const vol[] = { TREE ("WINDOWS", "system32", "CONFIG"), NULL };
  struct winvol w;
  struct np_error err = { 0, "" };
  const struct winvol_fs *fs = choose_one (&w, vol, &err);

  ck_assert_msg (fs != NULL, "%s", err.msg);
  ck_assert_str_eq (fs->hive, "/WINDOWS/system32/CONFIG/SYSTEM");
  winvol_free (&w);
}
END_TEST

START_TEST (test_no_filesystems)
{
  struct winvol w;
  struct np_error err = { 0, "" };

  winvol_init (&w, "img.raw", NULL);
  ck_assert_ptr_null (add (&w, "/dev/sda", "unknown", data));
  ck_assert_ptr_null (add (&w, "/dev/sda1", "swap", data));
  ck_assert_ptr_null (add (&w, "/dev/sda2", "", data));
  ck_assert_ptr_null (winvol_choose (&w, &err));
  ck_assert_int_eq (err.code, NP_EXIT_RUNTIME);
  ck_assert_str_eq (err.msg, "img.raw: no filesystems found (no partitions, or not a disk image?)");
  winvol_free (&w);
}
END_TEST

START_TEST (test_no_windows)
{
  /* SYSTEM a directory, or the way stopping short, is no Windows. */
  static const char *const dir_system[] = { "d /Windows", "d /Windows/System32",
                                            "d /Windows/System32/config",
                                            "d /Windows/System32/config/SYSTEM", NULL };
  static const char *const short_way[] = { "d /Windows", "f /Windows/System32", NULL };
  struct winvol w;
  struct np_error err = { 0, "" };

  winvol_init (&w, "img.raw", NULL);
  add (&w, "/dev/sda1", "vfat", data);
  add (&w, "/dev/sda2", "ntfs", data);
  add (&w, "/dev/sda3", "ntfs", dir_system);
  add (&w, "/dev/sda5", "ntfs", short_way);
  add (&w, "/dev/sda6", "ext4", windows);
  ck_assert_ptr_null (winvol_choose (&w, &err));
  ck_assert_int_eq (err.code, NP_EXIT_RUNTIME);
  ck_assert_str_eq (err.msg, "img.raw: no Windows system volume (no NTFS filesystem holds "
                    "\\Windows\\System32\\config\\SYSTEM; filesystems: /dev/sda1 (vfat), "
                    "/dev/sda2 (ntfs), /dev/sda3 (ntfs), /dev/sda5 (ntfs), /dev/sda6 (ext4))");
  winvol_free (&w);
}
END_TEST

START_TEST (test_several_windows)
{
  struct winvol w;
  struct np_error err = { 0, "" };

  winvol_init (&w, "img.raw", NULL);
  add (&w, "/dev/sda1", "ntfs", windows);
  add (&w, "/dev/sda2", "ntfs", data);
  add (&w, "/dev/sda3", "ntfs", windows);
  ck_assert_ptr_null (winvol_choose (&w, &err));
  ck_assert_int_eq (err.code, NP_EXIT_RUNTIME);
  ck_assert_str_eq (err.msg, "img.raw: 2 Windows installations (/dev/sda1, /dev/sda3): "
                    "choose one with --root DEVICE");
  winvol_free (&w);
}
END_TEST

START_TEST (test_root)
{
  struct winvol w;
  struct np_error err = { 0, "" };
  const struct winvol_fs *fs;
  struct fake f = { windows, NULL, 0 };

  /* Only the volume --root names is looked at. */
  winvol_init (&w, "img.raw", "/dev/sda3");
  ck_assert_ptr_null (winvol_add (&w, "/dev/sda1", "ntfs"));
  ck_assert_ptr_null (winvol_add (&w, "/dev/sda2", "vfat"));
  fs = winvol_add (&w, "/dev/sda3", "ntfs");
  ck_assert_ptr_nonnull (fs);
  ck_assert_int_eq (winvol_look ((struct winvol_fs *) fs, fake_list, &f), 0);
  fs = winvol_choose (&w, &err);
  ck_assert_msg (fs != NULL, "%s", err.msg);
  ck_assert_str_eq (fs->dev, "/dev/sda3");
  winvol_free (&w);

  /* Not there. */
  winvol_init (&w, "img.raw", "/dev/sda9");
  add (&w, "/dev/sda1", "ntfs", windows);
  add (&w, "/dev/sda2", "vfat", data);
  ck_assert_ptr_null (winvol_choose (&w, &err));
  ck_assert_str_eq (err.msg, "img.raw: --root /dev/sda9: the image has no such filesystem "
                    "(filesystems: /dev/sda1 (ntfs), /dev/sda2 (vfat))");
  winvol_free (&w);
  winvol_init (&w, "img.raw", "/dev/sda1");
  ck_assert_ptr_null (winvol_choose (&w, &err));
  ck_assert_str_eq (err.msg, "img.raw: --root /dev/sda1: the image has no such filesystem "
                    "(filesystems: none)");
  winvol_free (&w);

  /* There, but not Windows (not NTFS, or NTFS without the hive). */
  for (int i = 0; i < 2; i++) {
    winvol_init (&w, "img.raw", "/dev/sda2");
    add (&w, "/dev/sda1", "ntfs", windows);
    add (&w, "/dev/sda2", i ? "ntfs" : "vfat", data);
    ck_assert_ptr_null (winvol_choose (&w, &err));
    ck_assert_int_eq (err.code, NP_EXIT_RUNTIME);
    ck_assert_str_eq (err.msg, i
                      ? "img.raw: /dev/sda2 is not a Windows system volume (no "
                        "\\Windows\\System32\\config\\SYSTEM on it; filesystems: "
                        "/dev/sda1 (ntfs), /dev/sda2 (ntfs))"
                      : "img.raw: /dev/sda2 is not a Windows system volume (no "
                        "\\Windows\\System32\\config\\SYSTEM on it; filesystems: "
                        "/dev/sda1 (ntfs), /dev/sda2 (vfat))");
    winvol_free (&w);
  }
}
END_TEST

START_TEST (test_unreadable)
{
  struct winvol w;
  struct np_error err = { 0, "" };
  struct winvol_fs *fs;
  struct fake f = { windows, "/Windows/System32", 0 };

  /* Not mountable, and a listing that fails: "needs repair", not "no
   * Windows" (it may well be there). */
  winvol_init (&w, "img.raw", NULL);
  fs = winvol_add (&w, "/dev/sda1", "ntfs");
  winvol_unreadable (fs, "Input/output error");
  fs = winvol_add (&w, "/dev/sda2", "ntfs");
  ck_assert_int_eq (winvol_look (fs, fake_list, &f), -1);
  ck_assert_int_eq (fs->state, WINVOL_UNREADABLE);
  add (&w, "/dev/sda3", "ntfs", data);
  ck_assert_ptr_null (winvol_choose (&w, &err));
  ck_assert_int_eq (err.code, NP_EXIT_RUNTIME);
  ck_assert_str_eq (err.msg, "img.raw: the NTFS filesystem on /dev/sda1 (Input/output error), "
                    "/dev/sda2 (/Windows/System32: Input/output error) cannot be read: it "
                    "needs repair (chkdsk in Windows, or ntfsfix)");
  /* A readable Windows elsewhere is chosen. */
  add (&w, "/dev/sda4", "ntfs", windows);
  ck_assert_ptr_nonnull (winvol_choose (&w, &err));
  winvol_free (&w);

  /* --root naming an unreadable one says so too. */
  winvol_init (&w, "img.raw", "/dev/sda1");
  winvol_unreadable (winvol_add (&w, "/dev/sda1", "ntfs"), "Input/output error");
  ck_assert_ptr_null (winvol_choose (&w, &err));
  ck_assert_str_eq (err.msg, "img.raw: the NTFS filesystem on /dev/sda1 (Input/output error) "
                    "cannot be read: it needs repair (chkdsk in Windows, or ntfsfix)");
  winvol_free (&w);
}
END_TEST

/* Names that differ only in case, at each level of the way and among
 * the logs: refused, naming both paths (byte order) and the device. */
static const struct {
  const char *const paths[16];
  const char *a, *b;
} clashes[] = {
  { { TREE ("Windows", "System32", "config"), TREE ("WINDOWS", "System32", "config"), NULL },
    "/WINDOWS", "/Windows" },
  /* the other spelling empty, or a file: ambiguous all the same */
  { { TREE ("Windows", "System32", "config"), "d /windows", NULL }, "/Windows", "/windows" },
  { { TREE ("Windows", "System32", "config"), "f /windows", NULL }, "/Windows", "/windows" },
  { { TREE ("Windows", "System32", "config"), "d /Windows/SYSTEM32", NULL },
    "/Windows/SYSTEM32", "/Windows/System32" },
  { { TREE ("Windows", "System32", "config"), "d /Windows/System32/Config", NULL },
    "/Windows/System32/Config", "/Windows/System32/config" },
  { { TREE ("Windows", "System32", "config"), "f /Windows/System32/config/system", NULL },
    "/Windows/System32/config/SYSTEM", "/Windows/System32/config/system" },
  { { TREE ("Windows", "System32", "config"), "f /Windows/System32/config/system.log1", NULL },
    "/Windows/System32/config/SYSTEM.LOG1", "/Windows/System32/config/system.log1" },
  { { TREE ("Windows", "System32", "config"), "f /Windows/System32/config/System.Log2", NULL },
    "/Windows/System32/config/SYSTEM.LOG2", "/Windows/System32/config/System.Log2" },
  /* only the second spelling holds the hive */
  { { "d /Windows", TREE ("WINDOWS", "System32", "config"), NULL }, "/WINDOWS", "/Windows" },
};

START_TEST (test_case_clash)
{
  struct winvol w;
  struct np_error err = { 0, "" };
  char want[1024];

  ck_assert_ptr_null (choose_one (&w, clashes[_i].paths, &err));
  ck_assert_int_eq (err.code, NP_EXIT_RUNTIME);
  snprintf (want, sizeof want, "img.raw: /dev/sda1: %s and %s differ only in case (Windows "
            "would open one of them, which one is not defined): rename or remove one",
            clashes[_i].a, clashes[_i].b);
  ck_assert_str_eq (err.msg, want);
  winvol_free (&w);
}
END_TEST

START_TEST (test_case_clash_more)
{
  static const char *const vol[] = { TREE ("Windows", "System32", "config"),
                                     "d /WINDOWS", "d /windows", "d /WinDows", NULL };
  struct winvol w;
  struct np_error err = { 0, "" };

  ck_assert_ptr_null (choose_one (&w, vol, &err));
  ck_assert_str_eq (err.msg, "img.raw: /dev/sda1: /WINDOWS and /WinDows (and 2 more) differ "
                    "only in case (Windows would open one of them, which one is not "
                    "defined): rename or remove one");
  winvol_free (&w);
}
END_TEST

/* Two spellings that lead nowhere: not Windows, so not refused for
 * that; another volume's Windows is chosen.  The same clash on a
 * second Windows volume makes two installations (--root decides). */
START_TEST (test_case_clash_elsewhere)
{
  static const char *const empty[] = { "d /Windows", "d /WINDOWS", NULL };
  static const char *const both[] = { TREE ("Windows", "System32", "config"),
                                      "d /WINDOWS", NULL };
  struct winvol w;
  struct np_error err = { 0, "" };
  const struct winvol_fs *fs;

  winvol_init (&w, "img.raw", NULL);
  add (&w, "/dev/sda1", "ntfs", empty);
  add (&w, "/dev/sda2", "ntfs", windows);
  fs = winvol_choose (&w, &err);
  ck_assert_msg (fs != NULL, "%s", err.msg);
  ck_assert_str_eq (fs->dev, "/dev/sda2");
  winvol_free (&w);

  winvol_init (&w, "img.raw", NULL);
  add (&w, "/dev/sda1", "ntfs", both);
  add (&w, "/dev/sda2", "ntfs", windows);
  ck_assert_ptr_null (winvol_choose (&w, &err));
  ck_assert_str_eq (err.msg, "img.raw: 2 Windows installations (/dev/sda1, /dev/sda2): "
                    "choose one with --root DEVICE");
  winvol_free (&w);

  winvol_init (&w, "img.raw", "/dev/sda1");
  add (&w, "/dev/sda1", "ntfs", both);
  add (&w, "/dev/sda2", "ntfs", windows);
  ck_assert_ptr_null (winvol_choose (&w, &err));
  ck_assert_str_eq (err.msg, "img.raw: /dev/sda1: /WINDOWS and /Windows differ only in case "
                    "(Windows would open one of them, which one is not defined): rename or "
                    "remove one");
  winvol_free (&w);
}
END_TEST

/* Every case variant at every level, and no hive: the walk stops after
 * a bounded number of listings, and the volume is refused (not passed
 * by as "no Windows", nor walked 4 x 4 x 4 times). */
START_TEST (test_fan_out_bounded)
{
  static const char *const w4[] = { "Windows", "WINDOWS", "windows", "WinDows" };
  static const char *const s4[] = { "System32", "SYSTEM32", "system32", "SyStem32" };
  static const char *const c4[] = { "config", "CONFIG", "Config", "conFig" };
  const char *paths[4 + 16 + 64 + 1];
  char buf[4 + 16 + 64][64];
  size_t n = 0;
  struct winvol w;
  struct np_error err = { 0, "" };
  struct winvol_fs *fs;
  struct fake f;

  for (size_t i = 0; i < 4; i++) {
    snprintf (buf[n], sizeof buf[n], "d /%s", w4[i]);
    paths[n] = buf[n];
    n++;
    for (size_t j = 0; j < 4; j++) {
      snprintf (buf[n], sizeof buf[n], "d /%s/%s", w4[i], s4[j]);
      paths[n] = buf[n];
      n++;
      for (size_t k = 0; k < 4; k++) {
        snprintf (buf[n], sizeof buf[n], "d /%s/%s/%s", w4[i], s4[j], c4[k]);
        paths[n] = buf[n];
        n++;
      }
    }
  }
  paths[n] = NULL;
  f = (struct fake) { paths, NULL, 0 };
  winvol_init (&w, "img.raw", NULL);
  fs = winvol_add (&w, "/dev/sda1", "ntfs");
  ck_assert_int_eq (winvol_look (fs, fake_list, &f), 0);
  ck_assert_int_le (f.listings, 32);
  ck_assert_ptr_null (winvol_choose (&w, &err));
  ck_assert_str_eq (err.msg, "img.raw: /dev/sda1: /WINDOWS and /WinDows (and 2 more) differ "
                    "only in case (Windows would open one of them, which one is not "
                    "defined): rename or remove one");
  winvol_free (&w);
}
END_TEST

/* BitLocker volumes not opened: the message says how to open them, in
 * the backend's terms, with its own exit code; a Windows volume beside
 * one is chosen as ever. */
START_TEST (test_encrypted)
{
  struct winvol w;
  struct np_error err = { 0, "" };
  const struct winvol_fs *fs;

  /* --direct: cannot decrypt, points at the appliance */
  winvol_init (&w, "img.raw", NULL);
  ck_assert_ptr_null (add (&w, "/dev/sda1", "vfat", data));
  ck_assert_ptr_null (add (&w, "/dev/sda2", "BitLocker", data));
  ck_assert_ptr_null (winvol_choose (&w, &err));
  ck_assert_int_eq (err.code, NP_EXIT_ENCRYPTED);
  ck_assert_str_eq (err.msg, "img.raw: /dev/sda2 is BitLocker-encrypted and --direct cannot "
                    "decrypt it: run without --direct and give its recovery key with --key "
                    "/dev/sda2:file:FILE or --keys-from-stdin; nothing was written");
  winvol_free (&w);

  /* the appliance, no key given; two of them */
  winvol_init (&w, "img.raw", NULL);
  w.can_decrypt = 1;
  winvol_add_encrypted (&w, "/dev/sda2", NULL);
  winvol_add_encrypted (&w, "/dev/sda3", NULL);
  ck_assert_ptr_nonnull (add (&w, "/dev/sda4", "ntfs", data));
  ck_assert_ptr_null (winvol_choose (&w, &err));
  ck_assert_int_eq (err.code, NP_EXIT_ENCRYPTED);
  ck_assert_str_eq (err.msg, "img.raw: /dev/sda2 (and 1 more) is BitLocker-encrypted (the "
                    "Windows volume?): give its recovery key or password with --key "
                    "/dev/sda2:file:FILE or --keys-from-stdin; nothing was written");
  winvol_free (&w);

  /* a key that failed: its reason, one line */
  winvol_init (&w, "img.raw", "/dev/sda2");
  w.can_decrypt = 1;
  winvol_add_encrypted (&w, "/dev/sda1", NULL);
  winvol_add_encrypted (&w, "/dev/sda2", "cryptsetup_open: No key available\nwith this passphrase");
  ck_assert_ptr_null (winvol_choose (&w, &err));
  ck_assert_int_eq (err.code, NP_EXIT_ENCRYPTED);
  ck_assert_str_eq (err.msg, "img.raw: /dev/sda2 is BitLocker-encrypted and the key given did "
                    "not open it (cryptsetup_open: No key available with this passphrase); "
                    "nothing was written");
  winvol_free (&w);

  /* Windows outside the encrypted volume: patched as ever */
  winvol_init (&w, "img.raw", NULL);
  ck_assert_ptr_null (add (&w, "/dev/sda1", "BitLocker", data));
  ck_assert_ptr_nonnull (add (&w, "/dev/sda2", "ntfs", windows));
  fs = winvol_choose (&w, &err);
  ck_assert_msg (fs != NULL, "%s", err.msg);
  ck_assert_str_eq (fs->dev, "/dev/sda2");
  winvol_free (&w);
}
END_TEST

Suite *
winvol_suite (void)
{
  Suite *s = suite_create ("winvol");
  TCase *tc = tcase_create ("choose");

  tcase_add_test (tc, test_one_windows);
  tcase_add_test (tc, test_other_case_spelt);
  tcase_add_test (tc, test_no_filesystems);
  tcase_add_test (tc, test_no_windows);
  tcase_add_test (tc, test_several_windows);
  tcase_add_test (tc, test_root);
  tcase_add_test (tc, test_unreadable);
  tcase_add_loop_test (tc, test_case_clash, 0, sizeof clashes / sizeof clashes[0]);
  tcase_add_test (tc, test_case_clash_more);
  tcase_add_test (tc, test_case_clash_elsewhere);
  tcase_add_test (tc, test_fan_out_bounded);
  tcase_add_test (tc, test_encrypted);
  suite_add_tcase (s, tc);
  return s;
}
