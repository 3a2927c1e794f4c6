/* netvsc-patch: a hive's transaction logs on the host or in a guest,
 * behind one interface (see include/logsite.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "contain.h"
#include "escape.h"
#include "hostfile.h"
#include "logreplay.h"
#include "logsite.h"

/* The host: the logs beside the hive file, replaced through a
 * temporary file beside each. */

static int
host_needs_reset (const struct log_site *s, int i)
{
  struct stat st;

  return s->host->found[i] && stat (s->host->path[i], &st) == 0 &&
    !(i == REPLAY_LOG && st.st_size == 0);
}

static int
host_stage (const struct log_site *s, int i, char *buf, size_t len, struct np_error *err)
{
  char *tmp = NULL;

  int n;

  if (hostfile_temp_beside (s->host->path[i], &tmp, err) == -1)
    return -1;
  n = snprintf (buf, len, "%s", tmp);
  contain_note_temp (tmp);
  if (n < 0 || (size_t) n >= len) {
    unlink (tmp);
    free (tmp);
    return np_error_set (err, NP_EXIT_RUNTIME, "%s: path too long", s->host->path[i]);
  }
  free (tmp);
  return 0;
}

static int
host_commit (const struct log_site *s, int i, const char *staged, struct np_error *err)
{
  const char *log = s->host->path[i];

  return hostfile_replace (staged, log, log, err);
}

static void
host_release (const struct log_site *s, int i, const char *staged, int failed,
              struct np_error *err)
{
  if (failed && staged[0]) {
    /* the user knows the log, not our temporary file */
    np_error_rename (err, staged, s->host->path[i]);
    unlink (staged);
  }
}

void
log_site_host (struct log_site *s, const struct host_logs *found)
{
  memset (s, 0, sizeof *s);
  s->needs_reset = host_needs_reset;
  s->stage = host_stage;
  s->commit = host_commit;
  s->release = host_release;
  s->host = found;
}

/* A guest: the logs beside SYSTEM, replaced through the backend; the
 * replacements are made in the job's staging directory. */

static const char *const guest_name[REPLAY_NLOGS] = { "SYSTEM.LOG1", "SYSTEM.LOG2",
                                                     "SYSTEM.LOG" };

static int
disk_needs_reset (const struct log_site *s, int i)
{
  char fetched[PATH_MAX + 16];
  struct stat st;

  if (!s->be->exists (s->d, guest_name[i]))
    return 0;
  /* SYSTEM.LOG: only when it held a log (Vista and later keep it empty) */
  snprintf (fetched, sizeof fetched, "%s/SYSTEM.LOG", s->dir);
  return i != REPLAY_LOG || (stat (fetched, &st) == 0 && st.st_size != 0);
}

static int
disk_stage (const struct log_site *s, int i, char *buf, size_t len, struct np_error *err)
{
  (void) err;
  snprintf (buf, len, "%s/empty.LOG%d", s->dir, i + 1);
  return 0;
}

static int
disk_commit (const struct log_site *s, int i, const char *staged, struct np_error *err)
{
  return s->be->replace (s->d, guest_name[i], staged, s->scratch, err);
}

static void
disk_release (const struct log_site *s, int i, const char *staged, int failed,
              struct np_error *err)
{
  /* the staging directory is removed with the job */
  (void) s; (void) i; (void) staged; (void) failed; (void) err;
}

void
log_site_disk (struct log_site *s, const struct disk_backend *be, struct disk *d,
               const char *dir, const char *scratch, const char *subject)
{
  memset (s, 0, sizeof *s);
  s->needs_reset = disk_needs_reset;
  s->stage = disk_stage;
  s->commit = disk_commit;
  s->release = disk_release;
  s->subject = subject;
  s->be = be;
  s->d = d;
  s->dir = dir;
  s->scratch = scratch;
}

int
log_site_reset (const struct log_site *s, const char *hive)
{
  int n = 0;

  for (int i = 0; i < REPLAY_NLOGS; i++) {
    char staged[PATH_MAX + 64] = "";
    struct np_error err;
    int failed;

    if (!s->needs_reset (s, i))
      continue;
    failed = s->stage (s, i, staged, sizeof staged, &err) == -1 ||
      hive_log_reset (hive, staged, &err) == -1 ||
      s->commit (s, i, staged, &err) == -1;
    s->release (s, i, staged, failed, &err);
    if (!failed)
      n++;
    else if (s->subject)
      esc_line (stderr, "netvsc-patch: warning: %s: %s", s->subject, err.msg);
    else
      esc_line (stderr, "netvsc-patch: warning: %s", err.msg);
  }
  return n;
}
