/* netvsc-patch: installing and removing the boot-time action. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "guestdefer.h"

/* The files of one installation: what is there now, what must be. */
struct gfile {
  const char *path;
  char *old;            /* NULL: absent */
  size_t old_len;
  char *new;            /* NULL: leave alone (or remove) */
  size_t new_len;
  int changed;
};

static void
gfile_free (struct gfile *f)
{
  free (f->old);
  free (f->new);
  f->old = f->new = NULL;
}

/* Write the files that changed, in ORDER's order (crash-safe order:
 * what the registration names comes before the registration). */
static int
write_changed (const struct disk_backend *be, struct disk *d, struct gfile *const *order,
               size_t n, struct np_error *err)
{
  for (size_t i = 0; i < n; i++)
    if (order[i]->changed &&
        be->write_file (d, order[i]->path, order[i]->new, order[i]->new_len, err) == -1)
      return -1;
  return 0;
}

static int
gfile_read (const struct disk_backend *be, struct disk *d, struct gfile *f,
            struct np_error *err)
{
  int r = be->read_file (d, f->path, &f->old, &f->old_len, err);

  if (r == 1)
    f->old = NULL;
  return r == -1 ? -1 : 0;
}

/* A file we generate whole: changed when absent or different. */
static void
gfile_compare (struct gfile *f)
{
  f->changed = f->old == NULL || f->old_len != f->new_len ||
    memcmp (f->old, f->new, f->new_len) != 0;
}

/* "/Windows/System32/GroupPolicy/gpt.ini" as Windows writes it. */
static void
win_path (const char *path, char *buf, size_t len)
{
  size_t j = 0;

  for (; *path && j + 1 < len; path++)
    buf[j++] = *path == '/' ? '\\' : *path;
  buf[j] = '\0';
}

static int
edit_failed (const char *path, struct np_error *err)
{
  char win[256];

  win_path (path, win, sizeof win);
  if (errno == ERANGE)
    return np_error_set (err, NP_EXIT_UNSAFE, "%s: [Startup] skips a number and an entry "
                         "follows it: Windows does not run that entry today, and ours in "
                         "the gap would wake it; left alone, the boot-time action not "
                         "installed (fix the numbering first)", win);
  if (errno == EINVAL)
    return np_error_set (err, NP_EXIT_RUNTIME, "%s cannot be parsed: left alone, and "
                         "the boot-time action not changed", win);
  return np_error_set (err, NP_EXIT_RUNTIME, "%s: %s", win, strerror (errno));
}

/* Both install paths: all of ORDER read before anything is written, then
 * ORDER[0] and ORDER[1] (the script, its .cmd) rendered for MODE. */
static int
read_and_render (const struct disk_backend *be, struct disk *d, const struct defer_spec *spec,
                 enum defer_mode mode, struct gfile *const *order, size_t n,
                 struct np_error *err)
{
  struct gfile *ps1 = order[0], *cmd = order[1];

  for (size_t i = 0; i < n; i++)
    if (gfile_read (be, d, order[i], err) == -1)
      return -1;
  if (defer_render_script (spec, &ps1->new, &ps1->new_len) == -1 ||
      defer_render_cmd (mode, &cmd->new, &cmd->new_len) == -1)
    return np_error_set (err, errno == EINVAL ? NP_EXIT_USAGE : NP_EXIT_RUNTIME,
                         "cannot write the boot-time script: %s",
                         errno == EINVAL ? "a name or value holds a character it cannot carry"
                         : strerror (errno));
  gfile_compare (ps1);
  gfile_compare (cmd);
  return 0;
}

static int
install (const struct disk_backend *be, struct disk *d, const struct defer_spec *spec,
         int dry, enum defer_result *res, struct np_error *err)
{
  struct gfile ps1 = { .path = DEFER_PS1 }, cmd = { .path = DEFER_CMD };
  struct gfile scripts = { .path = DEFER_SCRIPTS_INI }, gpt = { .path = DEFER_GPT_INI };
  struct gfile *order[] = { &ps1, &cmd, &scripts, &gpt };   /* the order of writes */
  int r = -1;

  if (read_and_render (be, d, spec, spec->mode, order, 4, err) == -1)
    goto out;
  if (defer_scripts_ini_edit (scripts.old, scripts.old_len, 1, &scripts.new,
                              &scripts.new_len, &scripts.changed) == -1) {
    edit_failed (DEFER_SCRIPTS_INI, err);
    goto out;
  }
  if (defer_gpt_ini_edit (gpt.old, gpt.old_len, scripts.changed, &gpt.new, &gpt.new_len,
                          &gpt.changed) == -1) {
    edit_failed (DEFER_GPT_INI, err);
    goto out;
  }
  if (scripts.changed)
    *res = DEFER_INSTALLED;
  else if (ps1.changed || cmd.changed || gpt.changed)
    *res = DEFER_UPDATED;
  else
    *res = DEFER_IN_PLACE;
  if (!dry && write_changed (be, d, order, 4, err) == -1)
    goto out;
  r = 0;

 out:
  for (size_t i = 0; i < 4; i++)
    gfile_free (order[i]);
  return r;
}

/* Does BUF name us ("netvsc-patch", any case, in ASCII or UTF-16LE)?
 * A registration file that cannot be parsed and does not can hold no
 * entry of ours. */
static int
mentions_us (const char *buf, size_t len)
{
  static const char w[] = "netvsc-patch";
  const size_t k = sizeof w - 1;

  for (size_t step = 1; step <= 2; step++)
    for (size_t i = 0; i + step * k <= len; i++) {
      size_t j = 0;
      while (j < k && tolower ((unsigned char) buf[i + step * j]) == w[j] &&
             (step == 1 || buf[i + step * j + 1] == 0))
        j++;
      if (j == k)
        return 1;
    }
  return 0;
}

/* Both uninstall paths: *HAVE set if any of FILES is there (read: the
 * backends have no stat). */
static int
any_present (const struct disk_backend *be, struct disk *d, const char *const *files,
             size_t n, int *have, struct np_error *err)
{
  for (size_t i = 0; i < n; i++) {
    char *buf;
    size_t len;
    int e = be->read_file (d, files[i], &buf, &len, err);
    if (e == -1)
      return -1;
    if (e == 0) {
      *have = 1;
      free (buf);
    }
  }
  return 0;
}

/* LENIENT (taking out the other kind while installing one): a scripts.ini
 * that cannot be parsed and does not name us is not ours to touch, and
 * no reason to fail. */
static int
uninstall (const struct disk_backend *be, struct disk *d, int dry, int lenient,
           enum defer_result *res, struct np_error *err)
{
  struct gfile scripts = { .path = DEFER_SCRIPTS_INI }, gpt = { .path = DEFER_GPT_INI };
  const char *files[] = { DEFER_PS1, DEFER_CMD };
  int r = -1, have_files = 0;

  if (gfile_read (be, d, &scripts, err) == -1 || gfile_read (be, d, &gpt, err) == -1)
    goto out;
  if (any_present (be, d, files, 2, &have_files, err) == -1)
    goto out;
  if (scripts.old && defer_scripts_ini_has (scripts.old, scripts.old_len) &&
      !(lenient && defer_scripts_ini_has (scripts.old, scripts.old_len) == -1 &&
        !mentions_us (scripts.old, scripts.old_len))) {
    if (defer_scripts_ini_edit (scripts.old, scripts.old_len, 0, &scripts.new,
                                &scripts.new_len, &scripts.changed) == -1) {
      edit_failed (DEFER_SCRIPTS_INI, err);
      goto out;
    }
    /* no gpt.ini: no policy to reprocess (and none to create) */
    if (gpt.old && defer_gpt_ini_edit (gpt.old, gpt.old_len, scripts.changed, &gpt.new,
                                       &gpt.new_len, &gpt.changed) == -1) {
      edit_failed (DEFER_GPT_INI, err);
      goto out;
    }
  }
  *res = scripts.changed || have_files ? DEFER_REMOVED : DEFER_ABSENT;
  if (!dry) {
    /* unregister first: then no boot runs a half-removed action */
    if ((scripts.changed &&
         be->write_file (d, scripts.path, scripts.new, scripts.new_len, err) == -1) ||
        (gpt.changed && be->write_file (d, gpt.path, gpt.new, gpt.new_len, err) == -1))
      goto out;
    for (size_t i = 0; i < 2; i++)
      if (be->remove_file (d, files[i], err) == -1)
        goto out;
  }
  r = 0;

 out:
  gfile_free (&scripts);
  gfile_free (&gpt);
  return r;
}

/* --defer=setup: the two files beside SetupComplete.cmd, and our call
 * in it; written in that order (SetupComplete.cmd last). */
static int
install_setup (const struct disk_backend *be, struct disk *d,
               const struct defer_spec *spec, int dry, enum defer_result *res,
               struct np_error *err)
{
  struct gfile ps1 = { .path = DEFER_SETUP_PS1 }, cmd = { .path = DEFER_SETUP_CMD };
  struct gfile sc = { .path = DEFER_SETUPCOMPLETE };
  struct gfile *order[] = { &ps1, &cmd, &sc };
  int r = -1;

  if (read_and_render (be, d, spec, DEFER_SETUP, order, 3, err) == -1)
    goto out;
  if (defer_setupcomplete_edit (sc.old, sc.old_len, 1, &sc.new, &sc.new_len,
                                &sc.changed) == -1) {
    edit_failed (DEFER_SETUPCOMPLETE, err);
    goto out;
  }
  *res = sc.changed ? DEFER_INSTALLED : ps1.changed || cmd.changed ? DEFER_UPDATED
    : DEFER_IN_PLACE;
  if (!dry && write_changed (be, d, order, 3, err) == -1)
    goto out;
  r = 0;

 out:
  for (size_t i = 0; i < 3; i++)
    gfile_free (order[i]);
  return r;
}

/* Our call out of SetupComplete.cmd (the file deleted when nothing else
 * is left in it), then the two files. */
static int
uninstall_setup (const struct disk_backend *be, struct disk *d, int dry,
                 enum defer_result *res, struct np_error *err)
{
  struct gfile sc = { .path = DEFER_SETUPCOMPLETE };
  const char *files[] = { DEFER_SETUP_PS1, DEFER_SETUP_CMD };
  int r = -1, have_files = 0;

  if (gfile_read (be, d, &sc, err) == -1)
    goto out;
  if (any_present (be, d, files, 2, &have_files, err) == -1)
    goto out;
  /* A SetupComplete.cmd that cannot be parsed (UTF-16...) and does not
   * name us is someone else's: left alone without failing. */
  if (sc.old && (defer_setupcomplete_has (sc.old, sc.old_len) != -1 ||
                 mentions_us (sc.old, sc.old_len)) &&
      defer_setupcomplete_edit (sc.old, sc.old_len, 0, &sc.new, &sc.new_len,
                                &sc.changed) == -1) {
    edit_failed (DEFER_SETUPCOMPLETE, err);
    goto out;
  }
  *res = sc.changed || have_files ? DEFER_REMOVED : DEFER_ABSENT;
  if (!dry) {
    if (sc.changed &&
        (sc.new_len ? be->write_file (d, sc.path, sc.new, sc.new_len, err)
         : be->remove_file (d, sc.path, err)) == -1)
      goto out;
    for (size_t i = 0; i < 2; i++)
      if (be->remove_file (d, files[i], err) == -1)
        goto out;
  }
  r = 0;

 out:
  gfile_free (&sc);
  return r;
}

int
guest_defer (const struct disk_backend *be, struct disk *d, const struct defer_spec *spec,
             int want_install, int dry, enum defer_result *res, struct np_error *err)
{
  enum defer_result other = DEFER_NONE;
  int setup = want_install && spec->mode == DEFER_SETUP;

  *res = DEFER_NONE;
  if (be->read_file == NULL || be->write_file == NULL || be->remove_file == NULL)
    return np_error_set (err, NP_EXIT_USAGE, "the %s backend cannot install a boot-time "
                         "action", be->name);
  if (!want_install) {
    /* --remove: whichever kinds are there */
    if (uninstall (be, d, dry, 0, res, err) == -1 ||
        uninstall_setup (be, d, dry, &other, err) == -1)
      return -1;
    if (other == DEFER_REMOVED)
      *res = DEFER_REMOVED;
    return 0;
  }
  /* The kind asked for first, then the other kind taken out: a crash in
   * between leaves both (the values set twice), never neither. */
  if ((setup ? install_setup (be, d, spec, dry, res, err)
       : install (be, d, spec, dry, res, err)) == -1 ||
      (setup ? uninstall (be, d, dry, 1, &other, err)
       : uninstall_setup (be, d, dry, &other, err)) == -1)
    return -1;
  if (other == DEFER_REMOVED && *res == DEFER_IN_PLACE)
    *res = DEFER_UPDATED;
  return 0;
}

const char *
defer_result_name (enum defer_result r)
{
  switch (r) {
  case DEFER_NONE: return "none";
  case DEFER_INSTALLED: return "installed";
  case DEFER_UPDATED: return "updated";
  case DEFER_IN_PLACE: return "in-place";
  case DEFER_REMOVED: return "removed";
  case DEFER_ABSENT: return "absent";
  }
  return "?";
}

const char *
defer_mode_name (enum defer_mode m)
{
  return m == DEFER_ONCE ? "once" : m == DEFER_SETUP ? "setup" : "always";
}

const char *
defer_script_win (enum defer_mode m)
{
  return m == DEFER_SETUP ? DEFER_SETUP_SCRIPT_WIN : DEFER_SCRIPT_WIN;
}

const char *
defer_mode_text (enum defer_mode m)
{
  switch (m) {
  case DEFER_ONCE:
    return "a machine startup script of the local Group Policy: at each boot until one "
      "succeeds, then it removes itself";
  case DEFER_SETUP:
    return "called from SetupComplete.cmd: once, at the end of Windows Setup of this "
      "generalized image";
  case DEFER_ALWAYS:
    break;
  }
  return "a machine startup script of the local Group Policy: at every boot";
}
