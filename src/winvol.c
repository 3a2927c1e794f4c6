/* netvsc-patch: choosing the Windows volume (winvol.h), for both
 * backends. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bitlocker.h"
#include "winvol.h"

/* The way to the hive, and the files beside it that are looked up by
 * name too (the hive's transaction logs, job.c). */
static const char *const dirs[] = { "Windows", "System32", "config" };
static const char *const leaves[] = { "SYSTEM", "SYSTEM.LOG1", "SYSTEM.LOG2" };
#define N_DIRS (sizeof dirs / sizeof dirs[0])
#define N_LEAVES (sizeof leaves / sizeof leaves[0])

/* Without two names differing only in case the walk is one path:
 * N_DIRS + N_LEAVES listings.  With them it can fan out (a hostile
 * volume: every case variant of System32); once an ambiguity is seen
 * the verdict cannot be a patch, so this bounds the work. */
#define MAX_LISTINGS 32

void
winvol_init (struct winvol *w, const char *image, const char *want_root)
{
  memset (w, 0, sizeof *w);
  w->image = image;
  w->want_root = want_root;
}

void
winvol_free (struct winvol *w)
{
  free (w->fs);
  w->fs = NULL;
  w->n = w->cap = 0;
}

static struct winvol_fs *
record (struct winvol *w, const char *dev, const char *type)
{
  struct winvol_fs *fs;

  if (w->n == w->cap) {
    size_t cap = w->cap ? 2 * w->cap : 8;
    struct winvol_fs *v = realloc (w->fs, cap * sizeof *v);
    if (v == NULL) {
      w->oom = 1;
      return NULL;
    }
    w->fs = v;
    w->cap = cap;
  }
  fs = &w->fs[w->n++];
  memset (fs, 0, sizeof *fs);
  snprintf (fs->dev, sizeof fs->dev, "%s", dev);
  snprintf (fs->type, sizeof fs->type, "%s", type);
  return fs;
}

struct winvol_fs *
winvol_add (struct winvol *w, const char *dev, const char *type)
{
  struct winvol_fs *fs;

  if (type == NULL || *type == '\0' || strcmp (type, "unknown") == 0 ||
      strcmp (type, "swap") == 0)
    return NULL;
  if (strcmp (type, BITLOCKER_TYPE) == 0) {
    winvol_add_encrypted (w, dev, NULL);
    return NULL;
  }
  if ((fs = record (w, dev, type)) == NULL || strcmp (type, "ntfs") != 0 ||
      (w->want_root && strcmp (w->want_root, dev) != 0))
    return NULL;
  return fs;
}

void
winvol_add_encrypted (struct winvol *w, const char *dev, const char *why)
{
  struct winvol_fs *fs = record (w, dev, BITLOCKER_TYPE);

  if (fs == NULL)
    return;
  fs->state = WINVOL_ENCRYPTED;
  snprintf (fs->why, sizeof fs->why, "%s", why ? why : "");
  np_one_line (fs->why);
}

void
winvol_unreadable (struct winvol_fs *fs, const char *why)
{
  fs->state = WINVOL_UNREADABLE;
  fs->windows = 0;
  fs->hive[0] = '\0';
  snprintf (fs->why, sizeof fs->why, "%s", why && *why ? why : "unknown error");
  np_one_line (fs->why);
}

struct walk {
  struct winvol_fs *fs;
  winvol_list_fn list;
  void *ctx;
  int listings;
  int exhausted;
};

static void
join (char *buf, size_t len, const char *dir, const char *name)
{
  snprintf (buf, len, "%s/%s", strcmp (dir, "/") ? dir : "", name);
}

static void
free_names (struct winvol_name *v, size_t n)
{
  for (size_t i = 0; i < n; i++)
    free (v[i].name);
  free (v);
}

/* List NAME in DIR, noting the first ambiguity.  0, 1 to stop (the
 * listing budget is spent), -1 if the backend failed. */
static int
list_one (struct walk *wk, const char *dir, const char *name, struct winvol_name **v,
          size_t *n)
{
  struct winvol_fs *fs = wk->fs;
  char why[256] = "";

  *v = NULL;
  *n = 0;
  if (wk->listings++ >= MAX_LISTINGS) {
    wk->exhausted = 1;
    return 1;
  }
  if (wk->list (wk->ctx, dir, name, v, n, why, sizeof why) == -1) {
    winvol_unreadable (fs, why);
    return -1;
  }
  if (*n >= 2 && fs->clash[0][0] == '\0') {
    /* The two first in byte order: both backends then name the same. */
    size_t a = 0, b = 1;
    if (strcmp ((*v)[b].name, (*v)[a].name) < 0)
      a = 1, b = 0;
    for (size_t i = 2; i < *n; i++) {
      if (strcmp ((*v)[i].name, (*v)[a].name) < 0)
        b = a, a = i;
      else if (strcmp ((*v)[i].name, (*v)[b].name) < 0)
        b = i;
    }
    join (fs->clash[0], sizeof fs->clash[0], dir, (*v)[a].name);
    join (fs->clash[1], sizeof fs->clash[1], dir, (*v)[b].name);
    fs->clash_n = *n;
  }
  return 0;
}

/* The config directory DIR: SYSTEM and its logs. */
static int
walk_leaves (struct walk *wk, const char *dir)
{
  struct winvol_fs *fs = wk->fs;

  for (size_t j = 0; j < N_LEAVES; j++) {
    struct winvol_name *v;
    size_t n;
    int r = list_one (wk, dir, leaves[j], &v, &n);

    if (r != 0)
      return r;
    for (size_t i = 0; j == 0 && i < n && !fs->windows; i++)
      if (v[i].kind == WINVOL_FILE) {
        fs->windows = 1;
        join (fs->hive, sizeof fs->hive, dir, v[i].name);
      }
    free_names (v, n);
  }
  return 0;
}

/* Every spelling of dirs[DEPTH..] below DIR.  0, 1 to stop, -1. */
static int
walk_dir (struct walk *wk, const char *dir, size_t depth)
{
  struct winvol_fs *fs = wk->fs;
  struct winvol_name *v;
  size_t n;
  int r;

  if (depth == N_DIRS)
    return walk_leaves (wk, dir);
  r = list_one (wk, dir, dirs[depth], &v, &n);
  for (size_t i = 0; r == 0 && i < n; i++) {
    char path[sizeof fs->hive];

    if (v[i].kind != WINVOL_DIR)
      continue;
    join (path, sizeof path, dir, v[i].name);
    r = walk_dir (wk, path, depth + 1);
    /* Both facts that decide are known: no need to look further. */
    if (r == 0 && fs->windows && fs->clash[0][0])
      r = 1;
  }
  free_names (v, n);
  return r;
}

int
winvol_look (struct winvol_fs *fs, winvol_list_fn list, void *ctx)
{
  struct walk wk = { fs, list, ctx, 0, 0 };

  fs->state = WINVOL_LOOKED;
  fs->windows = 0;
  fs->hive[0] = fs->clash[0][0] = fs->clash[1][0] = '\0';
  fs->clash_n = 0;
  if (walk_dir (&wk, "/", 0) == -1)
    return -1;
  /* Stopped early, which only an ambiguity allows: whether a hive was
   * still to be found is unknown, and the volume is refused either way
   * if it is the one; count it as Windows rather than pass it by. */
  if (wk.exhausted && fs->clash[0][0])
    fs->windows = 1;
  return 0;
}

/* Append ", ITEM" (or ITEM if BUF is empty), printf-style. */
static void __attribute__((format (printf, 3, 4)))
append (char *buf, size_t len, const char *fmt, ...)
{
  size_t used = strlen (buf);
  va_list ap;

  if (used + 3 >= len)
    return;
  if (used) {
    memcpy (buf + used, ", ", 3);
    used += 2;
  }
  va_start (ap, fmt);
  vsnprintf (buf + used, len - used, fmt, ap);
  va_end (ap);
}

const struct winvol_fs *
winvol_choose (const struct winvol *w, struct np_error *err)
{
  char seen[512] = "", found[512] = "", broken[512] = "";
  const struct winvol_fs *chosen = NULL, *root = NULL, *locked = NULL;
  size_t n_found = 0, n_locked = 0;

  if (w->oom) {
    np_error_set (err, NP_EXIT_RUNTIME, "out of memory");
    return NULL;
  }
  for (size_t i = 0; i < w->n; i++) {
    const struct winvol_fs *fs = &w->fs[i];

    append (seen, sizeof seen, "%s (%s)", fs->dev, fs->type);
    if (w->want_root && strcmp (w->want_root, fs->dev) == 0)
      root = fs;
    if (fs->state == WINVOL_UNREADABLE)
      append (broken, sizeof broken, "%s (%s)", fs->dev, fs->why);
    if (fs->state == WINVOL_ENCRYPTED && (!w->want_root || strcmp (w->want_root, fs->dev) == 0)
        && n_locked++ == 0)
      locked = fs;
    if (fs->state != WINVOL_LOOKED || !fs->windows)
      continue;
    append (found, sizeof found, "%s", fs->dev);
    if (n_found++ == 0)
      chosen = fs;
  }

  if (w->want_root && root == NULL) {
    np_error_set (err, NP_EXIT_RUNTIME, "%s: --root %s: the image has no such filesystem "
                  "(filesystems: %s)", w->image, w->want_root, w->n ? seen : "none");
    return NULL;
  }
  if (w->n == 0) {
    np_error_set (err, NP_EXIT_RUNTIME,
                  "%s: no filesystems found (no partitions, or not a disk image?)", w->image);
    return NULL;
  }
  if (n_found == 0 && locked) {
    /* Windows may well be inside: say how to open it, not "no Windows" */
    char more[48] = "";
    if (n_locked > 1)
      snprintf (more, sizeof more, " (and %zu more)", n_locked - 1);
    if (!w->can_decrypt)
      np_error_set (err, NP_EXIT_ENCRYPTED, "%s: %s%s is BitLocker-encrypted and --direct "
                    "cannot decrypt it: run without --direct and give its recovery key "
                    "with --key %s:file:FILE or --keys-from-stdin; nothing was written",
                    w->image, locked->dev, more, locked->dev);
    else if (locked->why[0])
      np_error_set (err, NP_EXIT_ENCRYPTED, "%s: %s%s is BitLocker-encrypted and the key "
                    "given did not open it (%s); nothing was written", w->image,
                    locked->dev, more, locked->why);
    else
      np_error_set (err, NP_EXIT_ENCRYPTED, "%s: %s%s is BitLocker-encrypted (the Windows "
                    "volume?): give its recovery key or password with --key %s:file:FILE "
                    "or --keys-from-stdin; nothing was written", w->image, locked->dev,
                    more, locked->dev);
    return NULL;
  }
  if (n_found == 0) {
    /* Said rather than "no Windows": it may well be there. */
    if (broken[0])
      np_error_set (err, NP_EXIT_RUNTIME, "%s: the NTFS filesystem on %s cannot be read: "
                    "it needs repair (chkdsk in Windows, or ntfsfix)", w->image, broken);
    else if (w->want_root)
      np_error_set (err, NP_EXIT_RUNTIME, "%s: %s is not a Windows system volume (no "
                    "\\Windows\\System32\\config\\SYSTEM on it; filesystems: %s)",
                    w->image, w->want_root, seen);
    else
      np_error_set (err, NP_EXIT_RUNTIME, "%s: no Windows system volume (no NTFS filesystem "
                    "holds \\Windows\\System32\\config\\SYSTEM; filesystems: %s)",
                    w->image, seen);
    return NULL;
  }
  if (n_found > 1) {
    np_error_set (err, NP_EXIT_RUNTIME,
                  "%s: %zu Windows installations (%s): choose one with --root DEVICE",
                  w->image, n_found, found);
    return NULL;
  }
  if (chosen->clash[0][0]) {
    char more[48] = "";
    if (chosen->clash_n > 2)
      snprintf (more, sizeof more, " (and %zu more)", chosen->clash_n - 2);
    np_error_set (err, NP_EXIT_RUNTIME, "%s: %s: %s and %s%s differ only in case (Windows "
                  "would open one of them, which one is not defined): rename or remove one", w->image, chosen->dev, chosen->clash[0],
                  chosen->clash[1], more);
    return NULL;
  }
  return chosen;
}
