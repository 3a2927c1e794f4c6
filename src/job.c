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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "apply.h"
#include "backends.h"
#include "contain.h"
#include "format.h"
#include "hostfile.h"
#include "interrupt.h"
#include "logfind.h"
#include "logreplay.h"
#include "logsite.h"
#include "disk.h"
#include "directfile.h"
#include "escape.h"
#include "job.h"
#include "trace.h"
#include "layers.h"
#include "domain.h"
#include "uri.h"

static const char *
sig_name (int sig)
{
  static const char *const names[] = { [SIGHUP] = "SIGHUP", [SIGINT] = "SIGINT",
                                       [SIGTERM] = "SIGTERM",
                                       [SIGPIPE] = "SIGPIPE (standard output closed)" };
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
  const char *recovered;       /* where to recover to; NULL: the hive was clean */
  const char *log;             /* the single FILE.LOG (old format), or NULL */
  const char *ambiguous;       /* non-empty: two logs' names differ only in case */
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

  trace_step (o, name, "read the base block");
  if (hive_read_base_block (path, &bb, err) == -1)
    goto rename_error;
  if (base_block_is_dirty (&bb)) {
    char why[128];
    base_block_describe (&bb, why, sizeof why);
    trace_step (o, name, "the hive is dirty (%s)", why);
    if (o->no_replay || logs == NULL || logs->recovered == NULL)
      return np_error_set (err, NP_EXIT_UNSAFE,
                           "%s: refused: the hive is dirty (%s): Windows would replay its "
                           "transaction logs over the change", name, why);
    if (logs->ambiguous && logs->ambiguous[0])
      return np_error_set (err, NP_EXIT_UNSAFE, "%s: refused: the hive is dirty (%s) and its "
                           "transaction logs are ambiguous: %s, names that differ only in case "
                           "(Windows sees one file): keep the right one", name, why,
                           logs->ambiguous);
    /* Windows' newest changes are in the logs: recover them first, then
     * plan on the recovered hive, so that nothing it logged is lost. */
    {
      const char *const files[REPLAY_NLOGS] = { logs->log1, logs->log2, logs->log };
      if (hive_replay_files (path, files, logs->recovered, &out->replay, err) == -1) {
        np_error_wrap (err, path, "refused: the hive is dirty (%s) and cannot be recovered "
                       "from its transaction logs: ", why);
        np_error_rename (err, path, name);
        np_error_rename (err, logs->recovered, name);
        return -1;
      }
    }
    out->replayed = 1;
    path = logs->recovered;
    trace_step (o, name, "recovered from its transaction logs (%d entries)",
                out->replay.entries);
  }
  if (o->replay_only) {
    /* Only the recovery: any hive (NTUSER.DAT, SOFTWARE...), no control
     * sets or adapters needed; hivex must read the result. */
    if (hive_open (hv, path, 0, err) == -1)
      goto rename_error;
    return 0;
  }
  trace_step (o, name, "open with hivex%s", o->mode == RUN_PATCH ? " for writing" : "");
  if (hive_open (hv, path, o->mode == RUN_PATCH, err) == -1)
    goto rename_error;
  if (hive_control_sets (hv, &o->control_set, &out->cs, err) == -1 ||
      adapters_enumerate (hv, &out->cs, &o->match, &o->request, o->mode == RUN_LIST,
                          &adapters, err) == -1)
    goto rename_error;
  if (plan_build (&out->plan, &adapters, &o->request) == -1)
    return np_error_set (err, NP_EXIT_RUNTIME, "out of memory");
  out->have_plan = 1;
  trace_step (o, name, "%zu control set%s, %zu network instance%s, %zu matched, %zu "
              "value%s to write", out->cs.n, out->cs.n == 1 ? "" : "s", out->plan.adapters.n,
              out->plan.adapters.n == 1 ? "" : "s", out->plan.n_matched, out->plan.n_writes,
              out->plan.n_writes == 1 ? "" : "s");
  return 0;

 rename_error:
  /* Messages name the file we read; for an image, name the image and
   * the hive inside it instead of our temporary copy, and for a hive
   * recovered from its logs, the user's hive instead of the temporary
   * recovered one. */
  if (path != given) {
    char recovered[PATH_MAX + 64];
    snprintf (recovered, sizeof recovered, "%s (as recovered from its transaction logs)", name);
    np_error_rename (err, path, recovered);
  }
  else if (strcmp (path, name) != 0)
    np_error_rename (err, path, name);
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
    out->exit_code = NP_EXIT_DIFFERS;
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
    out->exit_code = NP_EXIT_DIFFERS;
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
  int r = -1;

  if (hive_census_take (hv, &out->plan, &before, err) == -1)
    return -1;
  if (apply_plan (hv, &out->plan, tmp, err) == 0) {
    /* hivex's copy of the hive (12 MB for a real SYSTEM) is done with
     * once committed: freed before verification maps the written file */
    hive_close (hv);
    if (verify_written (tmp, &out->plan, &before, err) == 0)
      r = 0;
  }
  hive_census_free (&before);
  return r;
}

/* --backup: copy ORIGINAL into the backup directory under a name made
 * from the target's absolute path, so that images with the same file
 * name in different directories do not collide. */
static int
backup_original (const struct options *o, const char *original, const struct logs *logs,
                 struct outcome *out, struct np_error *err)
{
  int remote = uri_looks_like (out->target);
  char *abs = remote ? strdup (out->target) : realpath (out->target, NULL);
  char flat[PATH_MAX];
  size_t j = 0;
  struct stat like;

  /* a remote image has no owner or mode here: the backup is ours, 0600 */
  if (remote && abs) {
    memset (&like, 0, sizeof like);
    like.st_mode = S_IFREG | 0600;
    like.st_uid = getuid ();
    like.st_gid = getgid ();
  }
  if (abs == NULL || (!remote && stat (out->target, &like) == -1)) {
    np_error_set (err, NP_EXIT_RUNTIME, "%s: %s", out->target, strerror (errno));
    free (abs);
    return -1;
  }
  for (const char *p = remote ? abs : abs + 1; *p && j < sizeof flat - 1; p++)
    flat[j++] = *p == '/' ? '_' : *p;
  flat[j] = '\0';
  free (abs);

  for (int n = 0; n < 1000; n++) {
    int len = n == 0
      ? snprintf (out->backup, sizeof out->backup, "%s/%s.SYSTEM", o->backup_dir, flat)
      : snprintf (out->backup, sizeof out->backup, "%s/%s.%d.SYSTEM", o->backup_dir, flat, n);
    /* a cut name could be another file's */
    if (len < 0 || (size_t) len >= sizeof out->backup) {
      out->backup[0] = '\0';
      return np_error_set (err, NP_EXIT_RUNTIME, "%s: the backup of %s would have a name "
                           "longer than PATH_MAX", o->backup_dir, out->target);
    }
    if (access (out->backup, F_OK) == 0)
      continue;
    /* the user's file's mode (or stricter) and owner, not our copy's */
    if (hostfile_copy_like (original, out->backup, &like, err) == -1) {
      out->backup[0] = '\0';
      return -1;
    }
    /* the logs are emptied after a recovery: keep them too */
    for (int i = 0; out->replayed && logs && i < REPLAY_NLOGS; i++) {
      const char *log = i == REPLAY_LOG ? logs->log : i ? logs->log2 : logs->log1;
      char copy[PATH_MAX + 8];
      if (log == NULL || access (log, F_OK) == -1)
        continue;
      snprintf (copy, sizeof copy, "%s.LOG%s", out->backup, i == REPLAY_LOG ? "" : i ? "2" : "1");
      if (hostfile_copy (log, copy, err) == -1)
        return -1;
    }
    return 0;
  }
  out->backup[0] = '\0';
  return np_error_set (err, NP_EXIT_RUNTIME, "%s: too many backups already", o->backup_dir);
}

/* Before a hive is written in place: what its owner said (no write
 * bits: do not change; hard links: other names that a rename would
 * leave on the old hive). */
static int
hive_writable (const struct options *o, const char *path, const struct hostfile_lock *lk,
               struct np_error *err)
{
  if (access (lk->real, W_OK) == -1)
    return np_error_set (err, NP_EXIT_RUNTIME, "%s: the hive is read-only (%s)", path,
                         strerror (errno));
  /* root may write anything: the mode is the owner's word all the same */
  if ((lk->st.st_mode & 0222) == 0 && !o->request.force)
    return np_error_set (err, NP_EXIT_RUNTIME, "%s: the hive is read-only (mode %04o, no "
                         "write permission); nothing was written (--force writes it anyway)",
                         path, (unsigned) (lk->st.st_mode & 07777));
  if (lk->st.st_nlink > 1)
    return np_error_set (err, NP_EXIT_RUNTIME, "%s: the hive has %lu hard links: replacing it "
                         "would leave the other names on the old hive; nothing was written "
                         "(patch a copy, or write elsewhere with -o)", path,
                         (unsigned long) lk->st.st_nlink);
  return 0;
}

void
job_run_hive (const struct options *o, const char *path, struct outcome *out)
{
  struct hive hv = { NULL, path, NULL };
  struct np_error err = { 0, "" };
  const char *dest = o->output ? o->output : path;
  char *tmp = NULL, *real = NULL;
  struct stat st;
  char recovered[PATH_MAX];
  struct host_logs found;
  struct logs logs;
  struct hostfile_lock lk = { -1, NULL, { 0 } };
  int writing = o->mode == RUN_PATCH, in_place = writing && !o->output;

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
  if (writing && o->output && hostfile_check_output (path, o->output, &err) == -1)
    goto failed;
  /* A run that writes holds the hive's lock from reading it to after
   * the rename: concurrent runs on one hive take turns, and none loses
   * another's update.  Under the lock, a temporary file beside the hive
   * is a killed run's. */
  if (writing) {
    trace_step (o, path, "lock");
    if (hostfile_lock (path, o->lock_timeout, interrupt_pending, &lk, &err) == -1)
      goto failed;
    hostfile_clean_stale (&lk, o->verbose && !o->quiet);
    if (in_place && hive_writable (o, path, &lk, &err) == -1)
      goto failed;
    /* a symlink stays: the file it points at is replaced */
    if (in_place)
      dest = lk.real;
  }
  if (check_interrupt (path, &err) == -1)
    goto failed;
  /* the logs are beside the file itself, wherever a link points */
  real = realpath (path, NULL);
  host_logs_find (real ? real : path, &found);
  {
    /* Only a dirty hive is recovered, into a file of its own: beside
     * the hive, where a killed run's copy is found and removed by the
     * next run; else (read-only directory, a dry run) in TMPDIR.  A
     * clean one gets none (plan_hive refuses a hive that turned dirty
     * since). */
    char *t = NULL;
    struct np_error ignored;
    struct base_block bb;
    int dirty = hive_read_base_block (path, &bb, &ignored) == 0 && base_block_is_dirty (&bb);
    if (dirty && in_place && hostfile_temp_beside (lk.real, &t, &ignored) == 0) {
      snprintf (recovered, sizeof recovered, "%s", t);
      contain_note_temp (recovered);
    }
    free (t);
    if (dirty && recovered[0] == '\0') {
      const char *tmpenv = hostfile_tmpdir ();
      int fd;
      snprintf (recovered, sizeof recovered, "%s/netvsc-patch-recovered.XXXXXX", tmpenv);
      if ((fd = mkstemp (recovered)) == -1) {
        np_error_set (&err, NP_EXIT_RUNTIME, "%s: cannot create a temporary file in %s: %s",
                      path, tmpenv, strerror (errno));
        recovered[0] = '\0';
        goto failed;
      }
      close (fd);
    }
  }
  logs = (struct logs) { found.path[REPLAY_LOG1], found.path[REPLAY_LOG2],
                         recovered[0] ? recovered : NULL, found.path[REPLAY_LOG],
                         found.ambiguous };
  if (plan_hive (o, path, path, &logs, &hv, out, &err) == -1) {
    if (err.code == NP_EXIT_UNSAFE && o->no_replay) {
      char desc[2 * NAME_MAX + 80];
      host_logs_describe (&found, desc, sizeof desc);
      np_error_append (&err, "; %s", desc);
    }
    goto failed;
  }
  if (o->replay_only) {
    /* write the recovered (or, if it was clean, the same) hive to -o */
    if (hostfile_temp_beside (dest, &tmp, &err) == -1)
      goto failed;
    contain_note_temp (tmp);
    unlink (tmp);
    if (hostfile_copy (out->replayed ? recovered : path, tmp, &err) == -1) {
      np_error_rename (&err, tmp, dest);
      goto failed;
    }
    if (hostfile_replace_as (tmp, dest, lk.fd, dest, &err) == -1)
      goto failed;
    free (tmp);
    tmp = NULL;
    out->written_to = dest;
    out->status = out->replayed ? ST_RECOVERED : ST_UNCHANGED;
    goto done;
  }
  if (settle_without_write (o, out))
    goto done;

  if (hostfile_temp_beside (dest, &tmp, &err) == -1)
    goto failed;
  contain_note_temp (tmp);
  trace_step (o, path, "write the patched hive beside %s and verify it", dest);
  if (write_patched (&hv, out, tmp, &err) == -1) {
    np_error_rename (&err, tmp, o->output ? o->output : path);
    np_error_rename (&err, recovered, path);
    goto failed;
  }
  if (o->backup_dir && backup_original (o, path, &logs, out, &err) == -1)
    goto failed;
  /* The rename is not interrupted; a signal that came before it stops
   * the run with the original in place. */
  contain_note_write ();
  interrupt_defer (1);
  trace_step (o, path, "rename it over %s", dest);
  if (check_interrupt (path, &err) == -1 ||
      hostfile_replace_locked (tmp, dest, lk.fd, in_place, o->output ? o->output : path,
                               in_place ? &lk : NULL, &err) == -1) {
    interrupt_defer (0);
    goto failed;
  }
  if (out->replayed && !o->output) {
    struct log_site site;
    log_site_host (&site, &found);
    out->logs_reset += log_site_reset (&site, dest);
  }
  interrupt_defer (0);
  free (tmp);
  tmp = NULL;
  out->written_to = o->output ? o->output : path;
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
  free (real);
  hostfile_unlock (&lk);
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
  /* Windows XP / Server 2003 keep the single SYSTEM.LOG */
  if (be->exists (d, "SYSTEM.LOG")) {
    size_t used = strlen (buf);
    snprintf (buf + used, len - used, "; SYSTEM.LOG exists beside it");
  }
}

/* The appliance backend's hive stage rehearsed in a child (contain.c):
 * libhivex parses the downloaded copy in this process, whose libguestfs
 * handle cannot cross a fork, so the planning and the write are first
 * done in a child on scratch files; the same code on the same bytes
 * does the same thing, so if they do not crash the parser there, they
 * do not here.  Costs one fork and one more pass over the hive. */
struct rehearsal {
  const struct options *o;
  const char *local, *name;
  struct logs logs;
  char target[PATH_MAX + 16];
  char scratch[PATH_MAX + 32];
};

static int
rehearse_child (void *arg)
{
  struct rehearsal *r = arg;
  struct outcome out;
  struct hive hv = { NULL, NULL, NULL };
  struct np_error err = { 0, "" };
  int ret = -1;

  memset (&out, 0, sizeof out);
  out.target = r->target;
  if (plan_hive (r->o, r->local, r->name, &r->logs, &hv, &out, &err) == 0)
    ret = settle_without_write (r->o, &out) ? 0 : write_patched (&hv, &out, r->scratch, &err);
  hive_close (&hv);
  return ret;
}

/* One image between the steps of its run. */
struct image_job {
  const char *path;
  struct outcome *out;
  struct disk_request req;
  char tmpdir[PATH_MAX];
  int have_tmpdir;
  int tmpdir_lock;              /* held while tmpdir is in use (hostfile_stage_dir) */
  int deferred;                 /* signals blocked for the write */
  char *qemu_spec;              /* req.qemu_spec, owned */
  char **layer_specs;           /* each layer alone, for qemu-img info */
  int windows_found;            /* a domain's: find_windows done by job_run_domain */
};

/* Before qemu opens anything: every other file the image names is
 * checked (layers.h), and the chain is given to qemu explicitly. */
static int
check_layers (const struct options *o, struct image_job *job, struct np_error *err)
{
  struct layers *l = malloc (sizeof *l);
  int r = -1;

  if (l == NULL)
    return np_error_set (err, NP_EXIT_RUNTIME, "out of memory");
  if (layers_check (job->path, job->req.format, o->allow_external,
                    (size_t) o->n_allow_external, l, err) == 0 &&
      (o->direct || layers_recorded (job->path, l, err) == 0)) {
    if (layers_qemu_spec (l, &job->qemu_spec, &job->layer_specs) == -1)
      np_error_set (err, NP_EXIT_RUNTIME, "out of memory");
    else {
      job->req.qemu_spec = job->qemu_spec;
      r = 0;
    }
  }
  free (l);
  return r;
}

static int
rehearse_hive (const struct options *o, struct image_job *job, const char *local,
               const char *name, const struct logs *logs, struct np_error *err)
{
  struct rehearsal r = { o, local, name, *logs, "", "" };
  char recovered[PATH_MAX + 32];
  int ret;

  /* --direct runs the whole job in a child already */
  if (contain_active ())
    return 0;
  snprintf (r.target, sizeof r.target, "%s", job->path);
  snprintf (recovered, sizeof recovered, "%s/rehearsal.recovered", job->tmpdir);
  snprintf (r.scratch, sizeof r.scratch, "%s/rehearsal.new", job->tmpdir);
  r.logs.recovered = recovered;
  ret = contain_rehearse (job->path, rehearse_child, &r, err);
  unlink (recovered);
  unlink (r.scratch);
  return ret;
}

/* Everything before a backend opens the image: format, writability,
 * qemu-img preflight, the host directory the hive is staged in.
 * Returns 0, or -1 with the outcome set. */
static int
image_prepare (const struct options *o, struct image_job *job, const char *path,
               const char *format, struct outcome *out, int readonly)
{
  struct np_error err = { 0, "" };
  const char *tmpenv = hostfile_tmpdir ();
  struct stat st;

  memset (job, 0, sizeof *job);
  memset (out, 0, sizeof *out);
  job->path = path;
  job->out = out;
  out->target = path;
  out->is_image = 1;

  /* A remote image (uri.h): no host file, so no file checks, locks or
   * preflight; what qemu on this host would interpret is checked there. */
  if (uri_looks_like (path)) {
    if (check_interrupt (path, &err) == -1 ||
        uri_prepare (o, path, format, &out->format, &job->qemu_spec, &err) == -1)
      goto failed;
    job->req = (struct disk_request) { path, out->format, o->mode != RUN_PATCH, o->verbose,
                                       o->quiet, job->qemu_spec, o->launch_timeout,
                                       o->trace, o->blocksize,
                                       o->keys.n ? &o->keys : NULL };
    goto stage;
  }
  if (format) {
    if (format_check (path, format, &err) == -1)
      goto failed;
    out->format = format;
  }
  else if ((out->format = format_detect (path, &err)) == NULL)
    goto failed;
  /* READONLY: a domain's disk never written (<readonly/>, a CD-ROM) */
  job->req = (struct disk_request) { path, out->format, o->mode != RUN_PATCH || readonly,
                                     o->verbose, o->quiet, NULL, o->launch_timeout,
                                     o->trace, o->blocksize,
                                     o->keys.n ? &o->keys : NULL };

  if (!job->req.readonly && access (path, W_OK) == -1) {
    np_error_set (&err, NP_EXIT_RUNTIME, "%s: the image is read-only (%s)", path,
                  strerror (errno));
    goto failed;
  }
  /* as for a hive: no write bit is the owner's word, even to root */
  if (!job->req.readonly && !o->request.force && stat (path, &st) == 0 &&
      (st.st_mode & 0222) == 0) {
    np_error_set (&err, NP_EXIT_RUNTIME, "%s: the image is read-only (mode %04o, no write "
                  "permission); nothing was written (--force writes it anyway)", path,
                  (unsigned) (st.st_mode & 07777));
    goto failed;
  }
  if (check_interrupt (path, &err) == -1 ||
      check_layers (o, job, &err) == -1)
    goto failed;
  /* An image the direct backend reads itself (directfile.h) is checked
   * there: qemu's locks, its bounds; qemu-img has nothing to add. */
  if (!(o->direct && backends_direct_file_serves (path, out->format, job->req.qemu_spec)) &&
      disk_preflight_spec (path, out->format, job->layer_specs, &err) == -1)
    goto failed;

 stage:
  /* The hive is staged on the host, where it is planned, patched and
   * verified exactly as in hive mode. */
  /* a killed run's staging directory (a copy of a hive) is removed */
  hostfile_clean_stale_stages (tmpenv, o->verbose && !o->quiet);
  if (hostfile_stage_dir (tmpenv, job->tmpdir, sizeof job->tmpdir, &job->tmpdir_lock,
                          &err) == -1)
    goto failed;
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
  struct hive hv = { NULL, NULL, NULL };
  struct np_error err = { 0, "" };
  char local[PATH_MAX + 32], patched[PATH_MAX + 32], scratch[PATH_MAX + 32];
  char log1[PATH_MAX + 32], log2[PATH_MAX + 32], recovered[PATH_MAX + 32];  /* tmpdir + "/SYSTEM.recovered" */
  char dotlog[PATH_MAX + 32];
  char name[PATH_MAX + 300];
  const char *path = job->path;
  struct base_block bb;
  struct logs logs = { log1, log2, recovered, dotlog, NULL };
  int r = -1, act, hive_written = 0;

  snprintf (log1, sizeof log1, "%s/SYSTEM.LOG1", job->tmpdir);
  snprintf (log2, sizeof log2, "%s/SYSTEM.LOG2", job->tmpdir);
  snprintf (dotlog, sizeof dotlog, "%s/SYSTEM.LOG", job->tmpdir);
  snprintf (recovered, sizeof recovered, "%s/SYSTEM.recovered", job->tmpdir);
  snprintf (local, sizeof local, "%s/SYSTEM", job->tmpdir);
  snprintf (patched, sizeof patched, "%s/SYSTEM.new", job->tmpdir);
  snprintf (scratch, sizeof scratch, "%s/readback", job->tmpdir);

  trace_step (o, path, "find the Windows volume%s%s", o->root ? " on " : "",
              o->root ? o->root : "");
  if (check_interrupt (path, &err) == -1 ||
      (!job->windows_found && be->find_windows (d, o->root, &err) == -1))
    goto failed;
  snprintf (out->root, sizeof out->root, "%s", be->root (d));
  snprintf (out->hive_path, sizeof out->hive_path, "%s", be->hive_path (d));
  trace_step (o, path, "copy %s:%s out", out->root, out->hive_path);
  if (be->fetch (d, "SYSTEM", local, &err) == -1 ||
      check_interrupt (path, &err) == -1)
    goto failed;
  /* A dirty hive is recovered from its logs (fetched beside it) first. */
  if (!o->no_replay && hive_read_base_block (local, &bb, &err) == 0 &&
      base_block_is_dirty (&bb)) {
    /* SYSTEM.LOG: Windows XP / Server 2003's single log (old format) */
    static const char *const guest_log[REPLAY_NLOGS] = { "SYSTEM.LOG1", "SYSTEM.LOG2",
                                                        "SYSTEM.LOG" };
    const char *local_log[REPLAY_NLOGS] = { log1, log2, dotlog };
    for (int i = 0; i < REPLAY_NLOGS; i++)
      if (be->exists (d, guest_log[i]) &&
          be->fetch (d, guest_log[i], local_log[i], &err) == -1)
        goto failed;
  }

  snprintf (name, sizeof name, "%s:%s:%s", path, out->root, out->hive_path);
  if (rehearse_hive (o, job, local, name, &logs, &err) == -1)
    goto failed;
  if (plan_hive (o, local, name, &logs, &hv, out, &err) == -1) {
    if (err.code == NP_EXIT_UNSAFE && o->no_replay) {
      char desc[128];
      describe_guest_logs (be, d, desc, sizeof desc);
      np_error_append (&err, "; %s", desc);
    }
    goto failed;
  }
  /* The boot-time action is planned like the hive: read what is there,
   * decide, and write only in a real run. */
  act = o->defer || (o->remove && o->mode != RUN_LIST);
  if (act)
    trace_step (o, path, "look for the boot-time action");
  if (act && guest_defer (be, d, &o->defer_spec, o->defer, 1, &out->defer, &err) == -1)
    goto defer_failed;
  if (!settle_without_write (o, out)) {
    trace_step (o, path, "write the patched hive on the host and verify it");
    if (write_patched (&hv, out, patched, &err) == -1) {
      /* our host copies are the hive in the image to the user */
      np_error_rename (&err, patched, name);
      np_error_rename (&err, out->replayed ? recovered : local, name);
      goto failed;
    }
    if (o->backup_dir && backup_original (o, local, &logs, out, &err) == -1)
      goto failed;
    /* From here the write runs to its end, through the flush when the
     * disk is closed: a signal is acted on only before it starts. */
    contain_note_write ();
    interrupt_defer (1);
    job->deferred = 1;
    trace_step (o, path, "put it back as %s", out->hive_path);
    if (check_interrupt (path, &err) == -1 ||
        be->replace (d, "SYSTEM", patched, scratch, &err) == -1)
      goto failed;
    out->status = ST_PATCHED;
    hive_written = 1;
    if (out->replayed) {
      struct log_site site;
      log_site_disk (&site, be, d, job->tmpdir, scratch, path);
      out->logs_reset += log_site_reset (&site, patched);
    }
  }
  if (act && out->status != ST_INVALID && out->status != ST_LISTED) {
    enum defer_result planned = out->defer;
    settle_defer (o, out);
    if (o->mode == RUN_PATCH && planned != DEFER_IN_PLACE && planned != DEFER_ABSENT) {
      if (!job->deferred) {
        contain_note_write ();
        interrupt_defer (1);
        job->deferred = 1;
        if (check_interrupt (path, &err) == -1)
          goto failed;
      }
      trace_step (o, path, "%s the boot-time action", o->defer ? "install" : "remove");
      if (guest_defer (be, d, &o->defer_spec, o->defer, 0, &out->defer, &err) == -1)
        goto defer_failed;
    }
  }
  r = 0;
  goto done;

 defer_failed:
  /* name the image, and say whether the hive was patched before */
  np_error_wrap (&err, path, "boot-time action: ");
  if (hive_written)
    np_error_append (&err, " (the hive was patched)");
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
    hostfile_stage_remove (job->tmpdir, job->tmpdir_lock);
  job->have_tmpdir = 0;
  free (job->qemu_spec);
  job->qemu_spec = NULL;
  layers_specs_free (job->layer_specs);
  job->layer_specs = NULL;
  job->req.qemu_spec = NULL;
  if (job->deferred) {
    interrupt_defer (0);
    if (interrupt_pending () && job->out->status == ST_PATCHED)
      esc_line (stderr, "netvsc-patch: %s: interrupted by %s after the new hive was in "
                "place: the image is patched", job->path, sig_name (interrupt_pending ()));
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

/* The caller (batch_run) has loaded the backends (backends.h). */
const struct disk_backend *
job_backend (const struct options *o)
{
  return backends_get (o->direct);
}

void
job_run_image (const struct options *o, const char *path, const char *format,
               struct outcome *out)
{
  const struct disk_backend *be = job_backend (o);
  struct image_job job;
  struct np_error err = { 0, "" };
  struct disk *d;

  if (image_prepare (o, &job, path, format, out, 0) == -1)
    goto done;
  if (o->verbose && !o->quiet)
    esc_line (stderr, "netvsc-patch: %s: opening (%s, %s backend)", path, out->format,
             be->name);
  trace_step (o, path, "open (%s, %s backend)", out->format, be->name);
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
    if (image_prepare (o, &jobs[i], paths[i], formats[i], &outs[i], 0) == 0) {
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

/* --- a libvirt domain (domain.h) ------------------------------------ */

/* winvol.c's verdicts that a disk holds no Windows at all (a domain's
 * data disk), as opposed to one that may (NTFS that cannot be read,
 * names differing only in case): the latter fail the domain, as they
 * would an image, unless --root picks another disk. */
static int
no_windows_here (const char *msg)
{
  return strstr (msg, ": no Windows system volume (") != NULL ||
    strstr (msg, ": no filesystems found (") != NULL;
}

/* The backends name a disk's filesystems as if it were alone
 * (/dev/sda2); in a domain, disk I is /dev/sdX, as in the guest's
 * appliance and as --root takes it.  The message's leading PATH is
 * left as it is (a block device may be called /dev/sda). */
static void
drive_rename (char *s, size_t len, const char *path, size_t i)
{
  struct np_error e = { 0, "" };
  char name[8], to[16];
  size_t pl = strlen (path);

  if (i == 0)
    return;
  domain_drive_name (i, name, sizeof name);
  snprintf (to, sizeof to, "/dev/%s", name);
  if (strncmp (s, path, pl) != 0)
    pl = 0;
  snprintf (e.msg, sizeof e.msg, "%s", s + pl);
  np_error_rename (&e, "/dev/sda", to);
  snprintf (s + pl, len - pl, "%s", e.msg);
}

/* --root /dev/sdX[N] with a domain: which disk (*ONLY), and the name the
 * backend knows it by (/dev/sda[N], in WANT).  -1 if none. */
static int
domain_root (const char *root, size_t n, size_t *only, char *want, size_t len)
{
  for (size_t i = 0; i < n; i++) {
    char name[8];
    const char *rest;
    domain_drive_name (i, name, sizeof name);
    if (strncmp (root, "/dev/", 5) != 0 || strncmp (root + 5, name, strlen (name)) != 0)
      continue;
    rest = root + 5 + strlen (name);
    if (strspn (rest, "0123456789") != strlen (rest))
      continue;
    *only = i;
    snprintf (want, len, "/dev/sda%s", rest);
    return 0;
  }
  return -1;
}

/* The domain's disks are checked as images, opened together (one
 * appliance, or a qemu-nbd each), Windows is searched across them, and
 * the Windows disk's outcome is the domain's. */
void
job_run_domain (const struct options *o, const char *name, struct outcome *out)
{
  const struct disk_backend *be = job_backend (o);
  struct domain dom;
  struct np_error err = { 0, "" };
  struct image_job *jobs = NULL;
  struct outcome *outs = NULL;
  struct disk_request *reqs = NULL;
  struct disk **disks = NULL;
  struct np_error *errs = NULL;
  struct disk_batch *b = NULL;
  size_t n, prepared = 0, found = 0, n_found = 0, only = (size_t) -1;
  char want[64], list[512] = "", last[8];
  const char *want_root = NULL;
  int worked = 0, r;

  memset (out, 0, sizeof *out);
  out->target = name;
  out->is_image = 1;
  if (backends_domain_lookup (o->connect, name, &dom, &err) == -1) {
    fail (out, &err);
    return;
  }
  n = dom.n;
  /* As libguestfs refuses to add a live domain's disks read-write: a
   * running VM's own writes and ours would corrupt the filesystem. */
  if (dom.active && o->mode == RUN_PATCH) {
    np_error_set (&err, NP_EXIT_UNSAFE, "domain %s: refused: the domain is %s (writing to "
                  "the disks of a running VM corrupts them); shut it down first (virsh "
                  "shutdown %s); nothing was written", dom.name, dom.state, dom.name);
    goto failed;
  }
  /* and, as libguestfs does, reads it (--dry-run, --check, --list) */
  if (dom.active && !o->quiet)
    esc_line (stderr, "netvsc-patch: warning: domain %s is %s: its disks are read as they "
              "are at this moment, which may not be consistent", dom.name, dom.state);
  domain_drive_name (n - 1, last, sizeof last);
  if (o->root) {
    if (domain_root (o->root, n, &only, want, sizeof want) == -1) {
      np_error_set (&err, NP_EXIT_RUNTIME, "domain %s: --root %s: the domain's %zu disk%s "
                    "%s /dev/sda%s%s", dom.name, o->root, n, n == 1 ? "" : "s",
                    n == 1 ? "is" : "are", n == 1 ? "" : " to /dev/", n == 1 ? "" : last);
      goto failed;
    }
    want_root = want;
  }
  if (be->open_batch && be->max_disks && n > (size_t) be->max_disks ()) {
    np_error_set (&err, NP_EXIT_RUNTIME, "domain %s: %zu disks, more than one appliance "
                  "takes (%d)", dom.name, n, be->max_disks ());
    goto failed;
  }
  jobs = calloc (n, sizeof *jobs);
  outs = calloc (n, sizeof *outs);
  reqs = calloc (n, sizeof *reqs);
  disks = calloc (n, sizeof *disks);
  errs = calloc (n, sizeof *errs);
  if (!jobs || !outs || !reqs || !disks || !errs) {
    np_error_set (&err, NP_EXIT_RUNTIME, "out of memory");
    goto failed;
  }

  /* Every disk through an image's checks (format, the files it names,
   * preflight) before qemu opens any: the files the XML names are the
   * domain's owner's choice, what those files name must be beside them
   * (or --allow-external). */
  for (; prepared < n; prepared++) {
    const struct domain_disk *dk = &dom.disks[prepared];
    if (image_prepare (o, &jobs[prepared], dk->path, dk->format, &outs[prepared],
                       dk->readonly) == -1) {
      np_error_set (&err, outs[prepared].exit_code, "domain %s: %s", dom.name,
                    outs[prepared].message);
      prepared++;
      goto failed;
    }
    reqs[prepared] = jobs[prepared].req;
  }
  if (o->verbose && !o->quiet)
    esc_line (stderr, "netvsc-patch: domain %s: opening %zu disk%s (%s backend)", dom.name, n,
              n == 1 ? "" : "s", be->name);
  if (be->open_batch) {
    if ((b = be->open_batch (reqs, n, disks, errs)) == NULL) {
      np_error_set (&err, errs[0].code, "domain %s: %s", dom.name, errs[0].msg);
      goto failed;
    }
  }
  else
    for (size_t i = 0; i < n; i++)
      if ((disks[i] = be->open (&reqs[i], &errs[i])) == NULL)
        break;
  for (size_t i = 0; i < n; i++)
    if (disks[i] == NULL) {
      np_error_set (&err, errs[i].code, "domain %s: %s", dom.name, errs[i].msg);
      goto failed;
    }

  /* The Windows system volume, across every disk (or the one --root
   * names). */
  for (size_t i = 0; i < n; i++) {
    char root[64];
    if (only != (size_t) -1 && i != only)
      continue;
    if (be->find_windows (disks[i], want_root, &errs[i]) == -1) {
      drive_rename (errs[i].msg, sizeof errs[i].msg, dom.disks[i].path, i);
      continue;
    }
    snprintf (root, sizeof root, "%s", be->root (disks[i]));
    drive_rename (root, sizeof root, "", i);
    snprintf (list + strlen (list), sizeof list - strlen (list), "%s%s in %s",
              n_found ? ", " : "", root, dom.disks[i].path);
    if (n_found++ == 0)
      found = i;
  }
  if (n_found > 1) {
    np_error_set (&err, NP_EXIT_RUNTIME, "domain %s: %zu Windows installations (%s): choose "
                  "one with --root DEVICE", dom.name, n_found, list);
    goto failed;
  }
  for (size_t i = 0; i < n; i++)
    if ((only == (size_t) -1 || i == only) && (n_found == 0 || i != found) &&
        (only != (size_t) -1 || !no_windows_here (errs[i].msg))) {
      np_error_set (&err, errs[i].code, "domain %s: %s", dom.name, errs[i].msg);
      goto failed;
    }
  if (n_found == 0) {
    char why[900] = "";
    for (size_t i = 0; i < n; i++)
      snprintf (why + strlen (why), sizeof why - strlen (why), "%s%s", i ? "; " : "",
                errs[i].msg);
    np_error_set (&err, NP_EXIT_RUNTIME, "domain %s: no Windows system volume on any of its "
                  "%zu disk%s: %s", dom.name, n, n == 1 ? "" : "s", why);
    goto failed;
  }
  if (dom.disks[found].readonly && o->mode == RUN_PATCH) {
    np_error_set (&err, NP_EXIT_RUNTIME, "domain %s: Windows is on disk %s (%s), which the "
                  "domain marks read-only; nothing was written", dom.name,
                  dom.disks[found].target, dom.disks[found].path);
    goto failed;
  }

  jobs[found].windows_found = 1;
  worked = 1;
  r = image_work (o, be, disks[found], &jobs[found]);
  drive_rename (outs[found].root, sizeof outs[found].root, "", found);
  for (size_t i = 0; i < n; i++) {
    if (i == found && r == -1 && !jobs[i].deferred)
      be->abort (disks[i]);
    else if (be->close (disks[i], &err) == -1 && i == found)
      close_failed (&jobs[i], &err);
    disks[i] = NULL;
  }
  if (b && be->close_batch (b, &err) == -1) {
    struct np_error e2;
    np_error_set (&e2, err.code, "%s: %s", dom.disks[found].path, err.msg);
    close_failed (&jobs[found], &e2);
  }
  b = NULL;
  goto done;

 failed:
  fail (out, &err);
 done:
  for (size_t i = 0; disks && i < n; i++)
    if (disks[i])
      be->abort (disks[i]);
  if (b)
    be->abort_batch (b);
  for (size_t i = 0; i < prepared; i++)
    image_finish (&jobs[i]);
  /* the Windows disk's outcome is the domain's */
  if (worked) {
    *out = outs[found];
    memset (&outs[found], 0, sizeof outs[found]);
    out->target = name;
    if (out->message[0]) {
      /* np_error_set cuts a message too long for the record */
      struct np_error e;
      np_error_set (&e, out->exit_code, "domain %s: %s", dom.name, out->message);
      memcpy (out->message, e.msg, sizeof out->message);
    }
  }
  for (size_t i = 0; i < prepared; i++)
    outcome_free (&outs[i]);
  free (jobs);
  free (outs);
  free (reqs);
  free (disks);
  free (errs);
  domain_free (&dom);
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
