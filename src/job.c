/* netvsc-patch: the pipeline for one target.
 *
 *   image:  format -> preflight -> appliance -> Windows volume -> fetch
 *           SYSTEM -> plan -> apply + verify (host temp file) -> put back
 *   hive:   plan -> apply + verify (temp file beside it) -> rename
 *
 * Both modes share plan_hive() and write_patched(): the hive logic
 * never knows whether an image was involved. */
#include <errno.h>
#include <signal.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "apply.h"
#include "format.h"
#include "hostfile.h"
#include "interrupt.h"
#include "logreplay.h"
#include "disk.h"
#include "job.h"

static const char *
sig_name (int sig)
{
  static const char *const names[] = { [SIGHUP] = "SIGHUP", [SIGINT] = "SIGINT",
                                       [SIGTERM] = "SIGTERM" };
  return sig > 0 && sig <= SIGTERM && names[sig] ? names[sig] : "a signal";
}

/* Between steps: stop if SIGINT/SIGTERM came in.  Nothing has been
 * written yet at any of the places this is called. */
static int
check_interrupt (const char *target, struct np_error *err)
{
  int sig = interrupt_pending ();

  if (sig == 0)
    return 0;
  return np_error_set (err, NP_EXIT_RUNTIME, "%s: interrupted by %s; nothing was written, "
                       "the original is untouched", target, sig_name (sig));
}

static void
fail (struct outcome *out, const struct np_error *err)
{
  out->exit_code = err->code;
  out->status = err->code == NP_EXIT_UNSAFE ? ST_REFUSED : ST_ERROR;
  snprintf (out->message, sizeof out->message, "%s", err->msg);
}

/* Where a dirty hive's transaction logs are, and where to put the hive
 * recovered from them. */
struct logs {
  const char *log1, *log2;     /* either may name a missing file */
  const char *recovered;
};

/* Base block check, open, control sets, adapters, plan.  On a dirty
 * hive, fails with NP_EXIT_UNSAFE and a message the caller completes
 * with what it knows of the log files. */
static int
plan_hive (const struct options *o, const char *path, const char *name,
           const struct logs *logs, struct hive *hv, struct outcome *out,
           struct np_error *err)
{
  const char *given = path;
  struct base_block bb;
  struct adapter_list adapters;

  if (hive_read_base_block (path, &bb, err) == -1)
    goto rename_error;
  if (base_block_is_dirty (&bb)) {
    char why[128];
    base_block_describe (&bb, why, sizeof why);
    if (o->no_replay || logs == NULL)
      return np_error_set (err, NP_EXIT_UNSAFE,
                           "%s: refused: the hive is dirty (%s): Windows would replay its "
                           "transaction logs over the change", name, why);
    /* Windows' newest changes are in the logs: recover them first, then
     * plan on the recovered hive, so that nothing it logged is lost. */
    if (hive_replay_logs (path, logs->log1, logs->log2, logs->recovered, &out->replay,
                          err) == -1) {
      char reason[sizeof err->msg];
      snprintf (reason, sizeof reason, "%s", err->msg);
      return np_error_set (err, err->code, "%s: refused: the hive is dirty (%s) and cannot "
                           "be recovered from its transaction logs: %s", name, why, reason);
    }
    out->replayed = 1;
    path = logs->recovered;
  }
  if (hive_open (hv, path, o->mode == RUN_PATCH, err) == -1)
    goto rename_error;
  if (hive_control_sets (hv, &o->control_set, &out->cs, err) == -1 ||
      adapters_enumerate (hv, &out->cs, &o->match, &o->request, o->mode == RUN_LIST,
                          &adapters, err) == -1)
    goto rename_error;
  if (plan_build (&out->plan, &adapters, &o->request) == -1)
    return np_error_set (err, NP_EXIT_RUNTIME, "out of memory");
  out->have_plan = 1;
  return 0;

 rename_error:
  /* Messages name the file we read; for an image, name the image and
   * the hive inside it instead of our temporary copy. */
  path = given;
  if (strcmp (path, name) != 0) {
    size_t plen = strlen (path);
    if (strncmp (err->msg, path, plen) == 0) {
      char rest[sizeof err->msg];
      snprintf (rest, sizeof rest, "%s", err->msg + plen);
      snprintf (err->msg, sizeof err->msg, "%s%s", name, rest);
    }
  }
  return -1;
}

/* Decide the outcome of a plan that will not be written. */
static int
settle_without_write (const struct options *o, struct outcome *out)
{
  if (o->mode == RUN_LIST) {
    out->status = ST_LISTED;
    return 1;
  }
  if (out->plan.n_matched == 0) {
    out->status = ST_NO_ADAPTER;
    out->exit_code = NP_EXIT_NO_ADAPTER;
    snprintf (out->message, sizeof out->message,
              "%s: no network adapter matches '%s' (%zu network instance%s found)%s",
              out->target, o->match.kind == MATCH_NETVSC ? "netvsc" : o->match.arg,
              out->plan.adapters.n, out->plan.adapters.n == 1 ? "" : "s",
              o->match.kind == MATCH_NETVSC
              ? "; Windows creates the Hyper-V adapter when it first boots on Hyper-V: "
                "--defer installs a boot-time action that sets the values then" : "");
    return 1;
  }
  if (out->plan.n_refused && !o->request.force) {
    const struct change *c = NULL;
    for (size_t i = 0; c == NULL && i < out->plan.n_changes; i++)
      if (out->plan.changes[i].refusal)
        c = &out->plan.changes[i];
    const struct adapter *a = &out->plan.adapters.v[c->adapter];
    out->status = ST_INVALID;
    out->exit_code = NP_EXIT_USAGE;
    snprintf (out->message, sizeof out->message,
              "%s: %s\\...\\%s: the driver does not allow %s=%s: %s%s (--force writes it anyway)",
              out->target, a->control_set, a->index, c->want->name, c->text, c->refusal,
              out->plan.n_refused > 1 ? " (and more)" : "");
    return 1;
  }
  if (out->plan.n_writes == 0) {
    out->status = ST_UNCHANGED;
    return 1;
  }
  if (o->mode == RUN_DRY) {
    out->status = ST_WOULD_PATCH;
    return 1;
  }
  if (o->mode == RUN_CHECK) {
    out->status = ST_CHECK_DIFFERS;
    out->exit_code = NP_EXIT_RUNTIME;
    return 1;
  }
  return 0;
}

/* --defer, and --remove on an image: fold what the boot-time action
 * needs (out->defer, found by a dry guest_defer) into the outcome. */
static void
settle_defer (const struct options *o, struct outcome *out)
{
  int writes = out->defer == DEFER_INSTALLED || out->defer == DEFER_UPDATED ||
    out->defer == DEFER_REMOVED;

  /* No adapter is what --defer is for; --remove that removed the
   * action did something. */
  if (out->status == ST_NO_ADAPTER && (o->defer || writes)) {
    out->exit_code = NP_EXIT_OK;
    out->message[0] = '\0';
    out->status = o->defer ? ST_DEFERRED : ST_UNCHANGED;
  }
  if (!writes || (out->status != ST_UNCHANGED && out->status != ST_DEFERRED))
    return;
  if (o->mode == RUN_DRY)
    out->status = ST_WOULD_PATCH;
  else if (o->mode == RUN_CHECK) {
    out->status = ST_CHECK_DIFFERS;
    out->exit_code = NP_EXIT_RUNTIME;
  }
  else if (out->status == ST_UNCHANGED)
    out->status = ST_PATCHED;
}

/* Apply the plan to HV, committing to TMP, and verify TMP. */
static int
write_patched (struct hive *hv, const struct outcome *out, const char *tmp,
               struct np_error *err)
{
  struct hive_census before;

  if (hive_census_take (hv, &before, err) == -1 ||
      apply_plan (hv, &out->plan, tmp, err) == -1 ||
      verify_written (tmp, &out->plan, &before, err) == -1)
    return -1;
  return 0;
}

/* --backup: copy ORIGINAL into the backup directory under a name made
 * from the target's absolute path, so that images with the same file
 * name in different directories do not collide. */
static int
backup_original (const struct options *o, const char *original, const struct logs *logs,
                 struct outcome *out, struct np_error *err)
{
  char *abs = realpath (out->target, NULL);
  char flat[PATH_MAX];
  size_t j = 0;

  if (abs == NULL)
    return np_error_set (err, NP_EXIT_RUNTIME, "%s: %s", out->target, strerror (errno));
  for (const char *p = abs + 1; *p && j < sizeof flat - 1; p++)
    flat[j++] = *p == '/' ? '_' : *p;
  flat[j] = '\0';
  free (abs);

  for (int n = 0; n < 1000; n++) {
    if (n == 0)
      snprintf (out->backup, sizeof out->backup, "%s/%s.SYSTEM", o->backup_dir, flat);
    else
      snprintf (out->backup, sizeof out->backup, "%s/%s.%d.SYSTEM", o->backup_dir, flat, n);
    if (access (out->backup, F_OK) == 0)
      continue;
    if (hostfile_copy (original, out->backup, err) == -1) {
      out->backup[0] = '\0';
      return -1;
    }
    /* the logs are emptied after a recovery: keep them too */
    for (int i = 0; out->replayed && logs && i < 2; i++) {
      const char *log = i ? logs->log2 : logs->log1;
      char copy[PATH_MAX + 8];
      if (log == NULL || access (log, F_OK) == -1)
        continue;
      snprintf (copy, sizeof copy, "%s.LOG%d", out->backup, i + 1);
      if (hostfile_copy (log, copy, err) == -1)
        return -1;
    }
    return 0;
  }
  out->backup[0] = '\0';
  return np_error_set (err, NP_EXIT_RUNTIME, "%s: too many backups already", o->backup_dir);
}

static void
describe_host_logs (const char *hive, char *buf, size_t len)
{
  char l1[PATH_MAX], l2[PATH_MAX];
  int h1, h2;

  snprintf (l1, sizeof l1, "%s.LOG1", hive);
  snprintf (l2, sizeof l2, "%s.LOG2", hive);
  h1 = access (l1, F_OK) == 0;
  h2 = access (l2, F_OK) == 0;
  if (h1 && h2)
    snprintf (buf, len, "%s.LOG1 and .LOG2 exist beside it", hive);
  else if (h1 || h2)
    snprintf (buf, len, "only %s exists beside it", h1 ? l1 : l2);
  else
    snprintf (buf, len, "no .LOG1/.LOG2 files beside it");
}

/* After a recovered hive was patched and put in place as DEST: empty
 * the logs beside it, which Windows must not replay over it (see
 * hive_log_reset).  Failures are warnings: the hive is patched and
 * clean either way. */
static void
reset_host_logs (const char *hive, const char *dest, struct outcome *out)
{
  for (int i = 1; i <= 2; i++) {
    char log[PATH_MAX + 8];
    char *tmp = NULL;
    struct np_error err;

    snprintf (log, sizeof log, "%s.LOG%d", hive, i);
    if (access (log, F_OK) == -1)
      continue;
    if (hostfile_temp_beside (log, &tmp, &err) == -1 ||
        hive_log_reset (dest, tmp, &err) == -1 ||
        hostfile_replace (tmp, log, log, &err) == -1) {
      fprintf (stderr, "netvsc-patch: warning: %s\n", err.msg);
      if (tmp)
        unlink (tmp);
    }
    else
      out->logs_reset++;
    free (tmp);
  }
}

static void
append_message (struct np_error *err, const char *extra)
{
  size_t used = strlen (err->msg);
  snprintf (err->msg + used, sizeof err->msg - used, "; %s", extra);
}

void
job_run_hive (const struct options *o, const char *path, struct outcome *out)
{
  struct hive hv = { NULL, path };
  struct np_error err = { 0, "" };
  const char *dest = o->output ? o->output : path;
  char *tmp = NULL;
  struct stat st;
  char log1[PATH_MAX + 8], log2[PATH_MAX + 8], recovered[PATH_MAX];
  struct logs logs;

  recovered[0] = '\0';
  memset (out, 0, sizeof *out);
  out->target = path;

  if (stat (path, &st) == -1) {
    np_error_set (&err, NP_EXIT_RUNTIME, "%s: %s", path, strerror (errno));
    goto failed;
  }
  if (!S_ISREG (st.st_mode)) {
    np_error_set (&err, NP_EXIT_RUNTIME, "%s: not a regular file", path);
    goto failed;
  }
  /* Replacing a read-only file would succeed (the directory decides),
   * but read-only is the owner's way of saying "do not change". */
  if (o->mode == RUN_PATCH && !o->output && access (path, W_OK) == -1) {
    np_error_set (&err, NP_EXIT_RUNTIME, "%s: the hive is read-only (%s)", path,
                  strerror (errno));
    goto failed;
  }
  if (check_interrupt (path, &err) == -1)
    goto failed;
  snprintf (log1, sizeof log1, "%s.LOG1", path);
  snprintf (log2, sizeof log2, "%s.LOG2", path);
  {
    const char *tmpenv = getenv ("TMPDIR");
    int fd;
    snprintf (recovered, sizeof recovered, "%s/netvsc-patch-recovered.XXXXXX",
              tmpenv && *tmpenv && strlen (tmpenv) < PATH_MAX - 64 ? tmpenv : "/tmp");
    if ((fd = mkstemp (recovered)) == -1) {
      np_error_set (&err, NP_EXIT_RUNTIME, "%s: %s", recovered, strerror (errno));
      recovered[0] = '\0';
      goto failed;
    }
    close (fd);
  }
  logs = (struct logs) { log1, log2, recovered };
  if (plan_hive (o, path, path, &logs, &hv, out, &err) == -1) {
    if (err.code == NP_EXIT_UNSAFE && o->no_replay) {
      char desc[PATH_MAX + 64];
      describe_host_logs (path, desc, sizeof desc);
      append_message (&err, desc);
    }
    goto failed;
  }
  if (o->replay_only) {
    /* write the recovered (or, if it was clean, the same) hive to -o */
    if (hostfile_temp_beside (dest, &tmp, &err) == -1)
      goto failed;
    unlink (tmp);
    if (hostfile_copy (out->replayed ? recovered : path, tmp, &err) == -1 ||
        hostfile_replace (tmp, dest, path, &err) == -1)
      goto failed;
    free (tmp);
    tmp = NULL;
    out->written_to = dest;
    out->status = out->replayed ? ST_RECOVERED : ST_UNCHANGED;
    goto done;
  }
  if (settle_without_write (o, out))
    goto done;

  if (hostfile_temp_beside (dest, &tmp, &err) == -1 ||
      write_patched (&hv, out, tmp, &err) == -1 ||
      (o->backup_dir && backup_original (o, path, &logs, out, &err) == -1))
    goto failed;
  /* The rename is not interrupted; a signal that came before it stops
   * the run with the original in place. */
  interrupt_defer (1);
  if (check_interrupt (path, &err) == -1 ||
      hostfile_replace (tmp, dest, path, &err) == -1) {
    interrupt_defer (0);
    goto failed;
  }
  if (out->replayed && !o->output)
    reset_host_logs (path, dest, out);
  interrupt_defer (0);
  free (tmp);
  tmp = NULL;
  out->written_to = dest;
  out->status = ST_PATCHED;
  goto done;

 failed:
  fail (out, &err);
 done:
  if (tmp) {
    unlink (tmp);
    free (tmp);
  }
  if (recovered[0])
    unlink (recovered);
  hive_close (&hv);
}

static int
remove_entry (const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
  (void) sb; (void) flag; (void) ftw;
  return remove (path);
}

/* Which of the hive's transaction logs exist beside it, for messages. */
static void
describe_guest_logs (const struct disk_backend *be, struct disk *d, char *buf, size_t len)
{
  int h1 = be->exists (d, "SYSTEM.LOG1"), h2 = be->exists (d, "SYSTEM.LOG2");

  if (h1 && h2)
    snprintf (buf, len, "SYSTEM.LOG1 and SYSTEM.LOG2 exist beside it");
  else if (h1 || h2)
    snprintf (buf, len, "only SYSTEM.LOG%d exists beside it", h1 ? 1 : 2);
  else
    snprintf (buf, len, "no SYSTEM.LOG1/SYSTEM.LOG2 beside it");
}

/* One image between the steps of its run. */
struct image_job {
  const char *path;
  struct outcome *out;
  struct disk_request req;
  char tmpdir[PATH_MAX];
  int have_tmpdir;
  int deferred;                 /* signals blocked for the write */
};

/* The guest's counterpart of reset_host_logs: empty SYSTEM.LOG1/LOG2
 * once the recovered, patched SYSTEM (PATCHED on the host) is in place. */
static void
reset_guest_logs (const struct disk_backend *be, struct disk *d, struct image_job *job,
                  const char *patched, const char *scratch)
{
  for (int i = 1; i <= 2; i++) {
    char name[16], empty[PATH_MAX + 16];
    struct np_error err;

    snprintf (name, sizeof name, "SYSTEM.LOG%d", i);
    snprintf (empty, sizeof empty, "%s/empty.LOG%d", job->tmpdir, i);
    if (!be->exists (d, name))
      continue;
    if (hive_log_reset (patched, empty, &err) == -1 ||
        be->replace (d, name, empty, scratch, &err) == -1)
      fprintf (stderr, "netvsc-patch: warning: %s: %s\n", job->path, err.msg);
    else
      job->out->logs_reset++;
  }
}

/* Everything before a backend opens the image: format, writability,
 * qemu-img preflight, the host directory the hive is staged in.
 * Returns 0, or -1 with the outcome set. */
static int
image_prepare (const struct options *o, struct image_job *job, const char *path,
               const char *format, struct outcome *out)
{
  struct np_error err = { 0, "" };
  const char *tmpenv = getenv ("TMPDIR");

  memset (job, 0, sizeof *job);
  memset (out, 0, sizeof *out);
  job->path = path;
  job->out = out;
  out->target = path;
  out->is_image = 1;

  if (format) {
    if (format_check (path, format, &err) == -1)
      goto failed;
    out->format = format;
  }
  else if ((out->format = format_detect (path, &err)) == NULL)
    goto failed;
  job->req = (struct disk_request) { path, out->format, o->mode != RUN_PATCH, o->verbose,
                                     o->quiet, o->launch_timeout };

  if (o->mode == RUN_PATCH && access (path, W_OK) == -1) {
    np_error_set (&err, NP_EXIT_RUNTIME, "%s: the image is read-only (%s)", path,
                  strerror (errno));
    goto failed;
  }
  if (check_interrupt (path, &err) == -1 ||
      disk_preflight (path, out->format, &err) == -1)
    goto failed;

  /* The hive is staged on the host, where it is planned, patched and
   * verified exactly as in hive mode. */
  if (tmpenv == NULL || *tmpenv == '\0' || strlen (tmpenv) > PATH_MAX - 64)
    tmpenv = "/tmp";
  snprintf (job->tmpdir, sizeof job->tmpdir, "%s/netvsc-patch.XXXXXX", tmpenv);
  if (mkdtemp (job->tmpdir) == NULL) {
    np_error_set (&err, NP_EXIT_RUNTIME, "%s: cannot create a temporary directory: %s",
                  tmpenv, strerror (errno));
    goto failed;
  }
  job->have_tmpdir = 1;
  return 0;

 failed:
  fail (out, &err);
  return -1;
}

/* The image's own work once its disk is open: find Windows, fetch the
 * hive, plan, apply and verify, put it back.  Leaves D open.  Returns 0,
 * or -1 with the outcome set. */
static int
image_work (const struct options *o, const struct disk_backend *be, struct disk *d,
            struct image_job *job)
{
  struct outcome *out = job->out;
  struct hive hv = { NULL, NULL };
  struct np_error err = { 0, "" };
  char local[PATH_MAX + 16], patched[PATH_MAX + 16], scratch[PATH_MAX + 16];
  char log1[PATH_MAX + 16], log2[PATH_MAX + 16], recovered[PATH_MAX + 16];
  char name[PATH_MAX + 300];
  const char *path = job->path;
  struct base_block bb;
  struct logs logs = { log1, log2, recovered };
  int r = -1, act, hive_written = 0;

  snprintf (log1, sizeof log1, "%s/SYSTEM.LOG1", job->tmpdir);
  snprintf (log2, sizeof log2, "%s/SYSTEM.LOG2", job->tmpdir);
  snprintf (recovered, sizeof recovered, "%s/SYSTEM.recovered", job->tmpdir);
  snprintf (local, sizeof local, "%s/SYSTEM", job->tmpdir);
  snprintf (patched, sizeof patched, "%s/SYSTEM.new", job->tmpdir);
  snprintf (scratch, sizeof scratch, "%s/readback", job->tmpdir);

  if (check_interrupt (path, &err) == -1 ||
      be->find_windows (d, o->root, &err) == -1)
    goto failed;
  snprintf (out->root, sizeof out->root, "%s", be->root (d));
  snprintf (out->hive_path, sizeof out->hive_path, "%s", be->hive_path (d));
  if (be->fetch (d, "SYSTEM", local, &err) == -1 ||
      check_interrupt (path, &err) == -1)
    goto failed;
  /* A dirty hive is recovered from its logs (fetched beside it) first. */
  if (!o->no_replay && hive_read_base_block (local, &bb, &err) == 0 &&
      base_block_is_dirty (&bb)) {
    for (int i = 0; i < 2; i++)
      if (be->exists (d, i ? "SYSTEM.LOG2" : "SYSTEM.LOG1") &&
          be->fetch (d, i ? "SYSTEM.LOG2" : "SYSTEM.LOG1", i ? log2 : log1, &err) == -1)
        goto failed;
  }

  snprintf (name, sizeof name, "%s:%s:%s", path, out->root, out->hive_path);
  if (plan_hive (o, local, name, &logs, &hv, out, &err) == -1) {
    if (err.code == NP_EXIT_UNSAFE && o->no_replay) {
      char desc[128];
      describe_guest_logs (be, d, desc, sizeof desc);
      append_message (&err, desc);
    }
    goto failed;
  }
  /* The boot-time action is planned like the hive: read what is there,
   * decide, and write only in a real run. */
  act = o->defer || (o->remove && o->mode != RUN_LIST);
  if (act && guest_defer (be, d, &o->defer_spec, o->defer, 1, &out->defer, &err) == -1)
    goto defer_failed;
  if (!settle_without_write (o, out)) {
    if (write_patched (&hv, out, patched, &err) == -1 ||
        (o->backup_dir && backup_original (o, local, &logs, out, &err) == -1))
      goto failed;
    /* From here the write runs to its end, through the flush when the
     * disk is closed: a signal is acted on only before it starts. */
    interrupt_defer (1);
    job->deferred = 1;
    if (check_interrupt (path, &err) == -1 ||
        be->replace (d, "SYSTEM", patched, scratch, &err) == -1)
      goto failed;
    out->status = ST_PATCHED;
    hive_written = 1;
    if (out->replayed)
      reset_guest_logs (be, d, job, patched, scratch);
  }
  if (act && out->status != ST_INVALID && out->status != ST_LISTED) {
    enum defer_result planned = out->defer;
    settle_defer (o, out);
    if (o->mode == RUN_PATCH && planned != DEFER_IN_PLACE && planned != DEFER_ABSENT) {
      if (!job->deferred) {
        interrupt_defer (1);
        job->deferred = 1;
        if (check_interrupt (path, &err) == -1)
          goto failed;
      }
      if (guest_defer (be, d, &o->defer_spec, o->defer, 0, &out->defer, &err) == -1)
        goto defer_failed;
    }
  }
  r = 0;
  goto done;

 defer_failed:
  /* name the image, and say whether the hive was patched before */
  {
    char reason[sizeof err.msg];
    size_t plen = strlen (path);
    /* backends' messages start with the image already */
    snprintf (reason, sizeof reason, "%s",
              strncmp (err.msg, path, plen) == 0 && strncmp (err.msg + plen, ": ", 2) == 0
              ? err.msg + plen + 2 : err.msg);
    np_error_set (&err, err.code, "%s: boot-time action: %s%s", path, reason,
                  hive_written ? " (the hive was patched)" : "");
  }
 failed:
  /* A step cut short by a signal fails with whatever error it met;
   * what matters to the user is that nothing was written. */
  if (!job->deferred && interrupt_pending ())
    check_interrupt (path, &err);
  fail (out, &err);
 done:
  hive_close (&hv);
  return r;
}

static void
image_finish (struct image_job *job)
{
  if (job->have_tmpdir)
    nftw (job->tmpdir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
  job->have_tmpdir = 0;
  if (job->deferred) {
    interrupt_defer (0);
    if (interrupt_pending () && job->out->status == ST_PATCHED)
      fprintf (stderr, "netvsc-patch: %s: interrupted by %s after the new hive was in "
               "place: the image is patched\n", job->path, sig_name (interrupt_pending ()));
  }
}

/* A close that failed after a write: the write may not have reached the
 * image. */
static void
close_failed (struct image_job *job, const struct np_error *err)
{
  if (job->out->status == ST_PATCHED || job->out->exit_code == 0)
    fail (job->out, err);
}

const struct disk_backend *
job_backend (const struct options *o)
{
  return o->direct ? &direct_backend : &appliance_backend;
}

void
job_run_image (const struct options *o, const char *path, const char *format,
               struct outcome *out)
{
  const struct disk_backend *be = job_backend (o);
  struct image_job job;
  struct np_error err = { 0, "" };
  struct disk *d;

  if (image_prepare (o, &job, path, format, out) == -1)
    goto done;
  if (o->verbose && !o->quiet)
    fprintf (stderr, "netvsc-patch: %s: opening (%s, %s backend)\n", path, out->format,
             be->name);
  if ((d = be->open (&job.req, &err)) == NULL) {
    if (interrupt_pending ())
      check_interrupt (path, &err);
    fail (out, &err);
    goto done;
  }
  if (image_work (o, be, d, &job) == -1 && !job.deferred) {
    be->abort (d);
    goto done;
  }
  if (be->close (d, &err) == -1)
    close_failed (&job, &err);
 done:
  image_finish (&job);
}

void
job_run_batch (const struct options *o, const char *const *paths,
               const char *const *formats, size_t n, struct outcome *outs)
{
  const struct disk_backend *be = job_backend (o);
  struct image_job *jobs = calloc (n, sizeof *jobs);
  struct disk_request *reqs = calloc (n, sizeof *reqs);
  struct disk **disks = calloc (n, sizeof *disks);
  struct np_error *errs = calloc (n, sizeof *errs);
  size_t *which = calloc (n, sizeof *which), m = 0;
  struct disk_batch *b;
  struct np_error err = { 0, "" };

  if (n == 1 || be->open_batch == NULL || !jobs || !reqs || !disks || !errs || !which) {
    for (size_t i = 0; i < n; i++)
      job_run_image (o, paths[i], formats[i], &outs[i]);
    goto out;
  }
  for (size_t i = 0; i < n; i++)
    if (image_prepare (o, &jobs[i], paths[i], formats[i], &outs[i]) == 0) {
      reqs[m] = jobs[i].req;
      which[m++] = i;
    }
  if (m == 0)
    goto finish;
  if (o->verbose && !o->quiet)
    fprintf (stderr, "netvsc-patch: opening %zu images in one %s\n", m, be->name);
  b = be->open_batch (reqs, m, disks, errs);
  if (b == NULL) {
    /* One image can sink a shared launch: give each its own. */
    for (size_t k = 0; k < m; k++) {
      image_finish (&jobs[which[k]]);
      job_run_image (o, paths[which[k]], formats[which[k]], &outs[which[k]]);
    }
    goto out;
  }
  for (size_t k = 0; k < m; k++) {
    struct image_job *job = &jobs[which[k]];
    if (disks[k] == NULL) {
      fail (job->out, &errs[k]);
      continue;
    }
    if (image_work (o, be, disks[k], job) == -1 && !job->deferred)
      be->abort (disks[k]);
    else if (be->close (disks[k], &err) == -1)
      close_failed (job, &err);
  }
  if (be->close_batch (b, &err) == -1)
    for (size_t k = 0; k < m; k++) {
      struct np_error e2;
      np_error_set (&e2, err.code, "%s: %s", paths[which[k]], err.msg);
      close_failed (&jobs[which[k]], &e2);
    }
 finish:
  for (size_t i = 0; i < n; i++)
    image_finish (&jobs[i]);
 out:
  free (jobs);
  free (reqs);
  free (disks);
  free (errs);
  free (which);
}

void
outcome_free (struct outcome *out)
{
  if (out->have_plan)
    plan_free (&out->plan);
  control_sets_free (&out->cs);
  out->have_plan = 0;
}

const char *
outcome_status_name (enum outcome_status s)
{
  switch (s) {
  case ST_PATCHED: return "patched";
  case ST_UNCHANGED: return "unchanged";
  case ST_WOULD_PATCH: return "would-patch";
  case ST_CHECK_DIFFERS: return "differs";
  case ST_LISTED: return "listed";
  case ST_RECOVERED: return "recovered";
  case ST_NO_ADAPTER: return "no-adapter";
  case ST_DEFERRED: return "deferred";
  case ST_REFUSED: return "refused";
  case ST_INVALID: return "invalid-value";
  case ST_ERROR: return "error";
  }
  return "?";
}
