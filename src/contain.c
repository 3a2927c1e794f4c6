/* netvsc-patch: a target's parsing in a forked child.
 *
 * The child runs the whole job and renders its report into memory; it
 * sends over a pipe, in order: the name of each file it creates beside
 * a target ('T'), that the write of the target begins ('W'), and then
 * the report and exit code ('R').  The parent prints the report as the
 * job would have, so the output is the same byte for byte.  If the
 * child dies first (a parser's abort, any signal), the parent makes
 * the outcome itself: exit 1, one line naming the target and saying
 * whether it was left as it was, the announced files removed, and the
 * child's private TMPDIR (a directory the parent made) removed.
 *
 * Cost: one fork, a pipe and a directory per target, about a
 * millisecond; measured in README (Benchmark). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/lsan_interface.h>
#endif

#include "contain.h"
#include "hostfile.h"
#include "interrupt.h"
#include "job.h"
#include "report.h"

/* The child's end of the pipe, -1 in the parent.  Process-wide because
 * job.c's notes come from deep in the pipeline; it is set once in the
 * child right after fork, where no other thread exists, and never
 * changes after. */
static int note_fd = -1;

int
contain_active (void)
{
  return note_fd != -1;
}

static void
write_all (int fd, const void *buf, size_t len)
{
  const char *p = buf;

  while (len > 0) {
    ssize_t w = write (fd, p, len);
    if (w == -1) {
      if (errno == EINTR)
        continue;
      _exit (125);              /* the parent is gone */
    }
    p += w;
    len -= (size_t) w;
  }
}

void
contain_note_temp (const char *path)
{
  uint32_t len;

  if (note_fd == -1 || path == NULL)
    return;
  len = (uint32_t) strlen (path);
  write_all (note_fd, "T", 1);
  write_all (note_fd, &len, sizeof len);
  write_all (note_fd, path, len);
}

void
contain_note_write (void)
{
  if (note_fd != -1)
    write_all (note_fd, "W", 1);
}

/* The target was patched: the parent says so if the report is lost. */
static void
note_patched (void)
{
  if (note_fd != -1)
    write_all (note_fd, "P", 1);
}

/* What a child does for its target: run the job, render the report
 * into OUT and ERR, return the exit code. */
typedef int (*contain_body) (void *arg, FILE *out, FILE *err);

/* How a child ended. */
struct ending {
  int complete;                /* a whole 'R' message came, and exit 0 */
  int wrote;                   /* 'W' came */
  int sig;                     /* killed by this signal, or 0 */
  int status;                  /* else its exit status */
};

static void __attribute__((noreturn))
child_main (int fd, int errfd, pid_t parent, int from_main, const char *tmpdir,
            contain_body body, void *arg)
{
  char *ob = NULL, *eb = NULL;
  size_t ol = 0, el = 0;
  FILE *out, *err;
  int32_t code;
  uint64_t lens[2];

  /* Killed with the parent: a SIGKILLed run stops at once, as before. */
  prctl (PR_SET_PDEATHSIG, SIGKILL);
  if (getppid () != parent)
    _exit (125);
  note_fd = fd;
  if (errfd != -1 && dup2 (errfd, 2) == -1)
    _exit (125);
  if (tmpdir && setenv ("TMPDIR", tmpdir, 1) == -1)
    _exit (125);
  out = open_memstream (&ob, &ol);
  err = open_memstream (&eb, &el);
  if (out == NULL || err == NULL)
    _exit (125);
  code = body (arg, out, err);
  if (fclose (out) == EOF || fclose (err) == EOF)
    _exit (125);
  lens[0] = ol;
  lens[1] = el;
  write_all (fd, "R", 1);
  write_all (fd, &code, sizeof code);
  write_all (fd, lens, sizeof lens);
  write_all (fd, ob, ol);
  write_all (fd, eb, el);
  free (ob);
  free (eb);
  fflush (stdout);
#ifdef __SANITIZE_ADDRESS__
  /* _exit skips LeakSanitizer's check at exit: run it here (its exit
   * status then makes the parent see no result).  Not in the child of a
   * worker thread: the other threads' stacks, which hold the parent's
   * pointers, are not there to be scanned. */
  if (from_main)
    __lsan_do_leak_check ();
#else
  (void) from_main;
#endif
  _exit (0);
}

/* Take the parent's side of the pipe: the child's messages, in C and
 * E; forward SIGINT/SIGTERM/SIGHUP that reached only us. */
static void
collect (pid_t pid, int fd, struct contained *c, struct ending *e, char ***temps,
         size_t *n_temps)
{
  char *buf = NULL;
  size_t len = 0, cap = 0, at = 0;
  int forwarded = 0, st;

  for (;;) {
    struct pollfd p = { fd, POLLIN, 0 };
    int sig = interrupt_pending ();
    ssize_t n;

    if (sig && !forwarded) {
      kill (pid, sig);
      forwarded = 1;
    }
    /* A signal that comes just before poll is seen at the next tick. */
    if (poll (&p, 1, 100) <= 0)
      continue;
    if (len + 65536 > cap) {
      char *grown = realloc (buf, cap = cap ? cap * 2 : 131072);
      if (grown == NULL)
        break;                  /* treated as a child with no result */
      buf = grown;
    }
    n = read (fd, buf + len, cap - len);
    if (n == -1 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    len += (size_t) n;
  }
  while (waitpid (pid, &st, 0) == -1 && errno == EINTR)
    ;
  e->sig = WIFSIGNALED (st) ? WTERMSIG (st) : 0;
  e->status = WIFEXITED (st) ? WEXITSTATUS (st) : -1;

  while (at < len) {
    if (buf[at] == 'W') {
      e->wrote = 1;
      at++;
    }
    else if (buf[at] == 'P') {
      c->patched = 1;
      at++;
    }
    else if (buf[at] == 'T') {
      uint32_t l;
      char **grown;
      if (len - at < 1 + sizeof l)
        break;
      memcpy (&l, buf + at + 1, sizeof l);
      if (len - at - 1 - sizeof l < l)
        break;
      grown = realloc (*temps, (*n_temps + 1) * sizeof **temps);
      if (grown == NULL)
        break;
      *temps = grown;
      if (((*temps)[*n_temps] = strndup (buf + at + 1 + sizeof l, l)) != NULL)
        (*n_temps)++;
      at += 1 + sizeof l + l;
    }
    else if (buf[at] == 'R') {
      int32_t code;
      uint64_t lens[2];
      if (len - at < 1 + sizeof code + sizeof lens)
        break;
      memcpy (&code, buf + at + 1, sizeof code);
      memcpy (lens, buf + at + 1 + sizeof code, sizeof lens);
      at += 1 + sizeof code + sizeof lens;
      if (len - at < lens[0] || len - at - lens[0] < lens[1])
        break;
      c->out = malloc (lens[0] + 1);
      c->err = malloc (lens[1] + 1);
      if (c->out == NULL || c->err == NULL)
        break;
      memcpy (c->out, buf + at, lens[0]);
      memcpy (c->err, buf + at + lens[0], lens[1]);
      c->out_len = lens[0];
      c->err_len = lens[1];
      c->exit_code = code;
      e->complete = e->sig == 0 && e->status == 0;
      break;
    }
    else
      break;
  }
  free (buf);
}

/* What the child wrote on its stderr (warnings, -v, a library's last
 * words), kept in a file with no name so that a crash's own message can
 * be folded into the target's one line.  Malloc'd; NULL if none. */
static char *
captured (int fd, size_t *len)
{
  off_t end = lseek (fd, 0, SEEK_END);
  char *buf;
  ssize_t n;

  *len = 0;
  if (end <= 0 || (buf = malloc ((size_t) end + 1)) == NULL)
    return NULL;
  n = pread (fd, buf, (size_t) end, 0);
  if (n <= 0) {
    free (buf);
    return NULL;
  }
  buf[n] = '\0';
  *len = (size_t) n;
  return buf;
}

/* How a child died, as "SIGABRT", or with an abort's message (hivex's
 * failed assertion: the last line of its stderr ERRS) as "SIGABRT:
 * MESSAGE".  *ERRS_LEN is cut to the lines before the one taken. */
static const char *
death (int sig, char *errs, size_t *errs_len, char *how, size_t len)
{
  char name[32];
  const char *last = NULL;

  snprintf (name, sizeof name, "%s", sigabbrev_np (sig) ? sigabbrev_np (sig) : "");
  if (errs && sig == SIGABRT) {
    char *nl;
    while (*errs_len > 0 && errs[*errs_len - 1] == '\n')
      errs[--*errs_len] = '\0';
    nl = strrchr (errs, '\n');
    last = nl ? nl + 1 : errs;
    *errs_len = (size_t) (last - errs);
    if (strncmp (last, "netvsc-patch: ", 14) == 0)
      last += 14;
  }
  if (name[0] && last && *last)
    snprintf (how, len, "SIG%s: %.500s", name, last);
  else if (name[0])
    snprintf (how, len, "SIG%s", name);
  else
    snprintf (how, len, "signal %d", sig);
  return how;
}

/* C->err = PREFIX then C->err. */
static void
prepend_err (struct contained *c, const char *prefix, size_t len)
{
  char *both;

  if (len == 0 || (both = malloc (len + c->err_len + 1)) == NULL)
    return;
  memcpy (both, prefix, len);
  if (c->err_len)
    memcpy (both + len, c->err, c->err_len);
  free (c->err);
  c->err = both;
  c->err_len += len;
}

/* The outcome of a child that left no result, rendered like any other:
 * exit 1, one line naming TARGET (WHAT: the thing parsed).  An abort's
 * message (hivex's failed assertion), the last line of the child's
 * stderr ERRS, goes into that line. */
static void
crashed (const struct options *o, const char *target, int is_image, const char *what,
         const struct ending *e, char *errs, size_t errs_len, struct contained *c)
{
  struct outcome out;
  char how[600];
  FILE *fo, *fe;

  free (c->out);
  free (c->err);
  memset (c, 0, sizeof *c);
  memset (&out, 0, sizeof out);
  out.target = target;
  out.is_image = is_image;
  out.status = ST_ERROR;
  out.exit_code = c->exit_code = NP_EXIT_RUNTIME;
  if (e->sig)
    death (e->sig, errs, &errs_len, how, sizeof how);
  else
    snprintf (how, sizeof how, "it ended with no result, exit status %d", e->status);
  if (!e->wrote)
    snprintf (out.message, sizeof out.message, "%s: %s crashed the parser (%s); %s was "
              "left as it was", target, what, how, is_image ? "the image" : "it");
  else
    snprintf (out.message, sizeof out.message, "%s: %s crashed the parser (%s) while %s "
              "was being written: it holds the original or the patched hive (see "
              "--check)", target, what, how, is_image ? "the image" : "it");
  fo = open_memstream (&c->out, &c->out_len);
  fe = open_memstream (&c->err, &c->err_len);
  if (fo && fe)
    report_outcome_to (fo, fe, o, &out);
  if (fo)
    fclose (fo);
  if (fe)
    fclose (fe);
  prepend_err (c, errs, errs_len);
}

/* Run BODY(ARG) in a child and fill C with the report it rendered, or
 * with the crash outcome.  -1 if no child could be started (the caller
 * runs the job in this process, uncontained, as before). */
static int
run_contained (const struct options *o, const char *target, int is_image, const char *what,
               contain_body body, void *arg, pthread_mutex_t *lock, struct contained *c)
{
  const char *tmpenv = hostfile_tmpdir ();
  char tmpdir[PATH_MAX];
  int fds[2], have_tmpdir = 0, errfd, tmpdir_lock = -1;
  struct np_error ignored;
  char *errs;
  size_t errs_len = 0;
  char **temps = NULL;
  size_t n_temps = 0;
  struct ending e = { 0, 0, 0, 0 };
  pid_t pid, parent = getpid ();
  int from_main = gettid () == parent;

  memset (c, 0, sizeof *c);
  /* A private TMPDIR for everything the job stages there; if it cannot
   * be made, the job meets (and reports) the same problem itself. */
  /* A staging directory like job.c's (0700, its .lock held while in
   * use): a run killed with its child leaves one that the next run
   * removes, whatever it holds. */
  hostfile_clean_stale_stages (tmpenv, o->verbose && !o->quiet);
  have_tmpdir = hostfile_stage_dir (tmpenv, tmpdir, sizeof tmpdir, &tmpdir_lock,
                                    &ignored) == 0;
  /* -v shows each step as it happens (tests aim SIGKILLs by it): the
   * child writes to our stderr then, and an abort's own message is a
   * line of its own before the target's. */
  errfd = o->verbose ? -1 : memfd_create ("netvsc-patch-stderr", MFD_CLOEXEC);
  if (pipe2 (fds, O_CLOEXEC) == -1)
    goto no_child;
  if (lock)
    pthread_mutex_lock (lock);
  fflush (stdout);
  pid = fork ();
  if (pid == 0) {
    close (fds[0]);
    child_main (fds[1], errfd, parent, from_main, have_tmpdir ? tmpdir : NULL, body, arg);
  }
  if (lock)
    pthread_mutex_unlock (lock);
  close (fds[1]);
  if (pid == -1) {
    close (fds[0]);
    goto no_child;
  }
  collect (pid, fds[0], c, &e, &temps, &n_temps);
  close (fds[0]);
  errs = errfd != -1 ? captured (errfd, &errs_len) : NULL;
  if (errfd != -1)
    close (errfd);
  if (!e.complete) {
    for (size_t i = 0; i < n_temps; i++)
      unlink (temps[i]);
    crashed (o, target, is_image, what, &e, errs, errs_len, c);
  }
  else if (errs)
    prepend_err (c, errs, errs_len);
  free (errs);
  for (size_t i = 0; i < n_temps; i++)
    free (temps[i]);
  free (temps);
  if (have_tmpdir)
    hostfile_stage_remove (tmpdir, tmpdir_lock);
  return 0;

 no_child:
  if (errfd != -1)
    close (errfd);
  if (have_tmpdir)
    hostfile_stage_remove (tmpdir, tmpdir_lock);
  return -1;
}

void
contain_print (struct contained *c)
{
  if (c->err_len)
    fwrite (c->err, 1, c->err_len, stderr);
  if (c->out_len)
    fwrite (c->out, 1, c->out_len, stdout);
  fflush (stdout);
  free (c->out);
  free (c->err);
  c->out = c->err = NULL;
  c->out_len = c->err_len = 0;
}

/* --- hive mode ------------------------------------------------------ */

static int
hive_body (void *arg, FILE *out, FILE *err)
{
  const struct options *o = arg;
  struct outcome res;

  job_run_hive (o, o->hive, &res);
  report_outcome_to (out, err, o, &res);
  if (res.status == ST_PATCHED)
    note_patched ();
  outcome_free (&res);
  return res.exit_code;
}

int
contain_hive (const struct options *o, int *patched)
{
  struct contained c;
  struct outcome res;

  if (run_contained (o, o->hive, 0, "the hive", hive_body, (void *) o, NULL, &c) == 0) {
    *patched = c.patched;
    contain_print (&c);
    return c.exit_code;
  }
  job_run_hive (o, o->hive, &res);
  report_outcome (stdout, o, &res);
  *patched = res.status == ST_PATCHED;
  outcome_free (&res);
  return res.exit_code;
}

/* --- images --------------------------------------------------------- */

struct image_arg {
  const struct options *o;
  const char *path, *format;
};

static int
image_body (void *arg, FILE *out, FILE *err)
{
  struct image_arg *a = arg;
  struct outcome res;

  job_run_image (a->o, a->path, a->format, &res);
  report_outcome_to (out, err, a->o, &res);
  if (res.status == ST_PATCHED)
    note_patched ();
  outcome_free (&res);
  return res.exit_code;
}

/* No child could be had: the outcome of a job run in this process,
 * rendered into C as a child's report would be (and RES freed). */
static void
render_in_process (const struct options *o, struct outcome *res, struct contained *c)
{
  FILE *fo = open_memstream (&c->out, &c->out_len);
  FILE *fe = open_memstream (&c->err, &c->err_len);

  if (fo && fe)
    report_outcome_to (fo, fe, o, res);
  if (fo)
    fclose (fo);
  if (fe)
    fclose (fe);
  c->exit_code = res->exit_code;
  c->patched = res->status == ST_PATCHED;
  outcome_free (res);
}

void
contain_image (const struct options *o, const char *path, const char *format,
               pthread_mutex_t *lock, struct contained *c)
{
  struct image_arg a = { o, path, format };
  struct outcome res;

  if (run_contained (o, path, 1, "its NTFS volume or SYSTEM hive", image_body, &a, lock,
                     c) == 0)
    return;
  /* no child: in this process, rendered the same way */
  job_run_image (o, path, format, &res);
  render_in_process (o, &res, c);
}

/* A libvirt domain (--direct): the same, its disks parsed in the child. */
struct domain_arg {
  const struct options *o;
  const char *name;
};

static int
domain_body (void *arg, FILE *out, FILE *err)
{
  struct domain_arg *a = arg;
  struct outcome res;

  job_run_domain (a->o, a->name, &res);
  report_outcome_to (out, err, a->o, &res);
  if (res.status == ST_PATCHED)
    note_patched ();
  outcome_free (&res);
  return res.exit_code;
}

void
contain_domain (const struct options *o, const char *name, pthread_mutex_t *lock,
                struct contained *c)
{
  struct domain_arg a = { o, name };
  struct outcome res;

  if (run_contained (o, name, 1, "the NTFS volume or SYSTEM hive of one of its disks",
                     domain_body, &a, lock, c) == 0)
    return;
  job_run_domain (o, name, &res);
  render_in_process (o, &res, c);
}

/* --- the appliance backend's rehearsal ------------------------------ */

int
contain_rehearse (const char *image, int (*fn) (void *), void *arg, struct np_error *err)
{
  pid_t parent = getpid (), pid;
  int st, errfd = memfd_create ("netvsc-patch-stderr", MFD_CLOEXEC);
  char how[600], *errs;
  size_t errs_len = 0;

  pid = fork ();
  if (pid == -1) {
    if (errfd != -1)
      close (errfd);
    return 0;                   /* no rehearsal: the real run goes on as before */
  }
  if (pid == 0) {
    prctl (PR_SET_PDEATHSIG, SIGKILL);
    if (getppid () != parent || (errfd != -1 && dup2 (errfd, 2) == -1))
      _exit (125);
    /* Nothing of the parent's (its libguestfs handle above all) is
     * touched here, and _exit runs none of its atexit handlers. */
    _exit (fn (arg) == 0 ? 0 : 1);
  }
  while (waitpid (pid, &st, 0) == -1 && errno == EINTR)
    ;
  /* what it said is said again by the real run, or folded in here */
  errs = errfd != -1 ? captured (errfd, &errs_len) : NULL;
  if (errfd != -1)
    close (errfd);
  if (WIFSIGNALED (st))
    np_error_set (err, NP_EXIT_RUNTIME, "%s: the SYSTEM hive crashed the parser (%s); "
                  "the image was left as it was", image,
                  death (WTERMSIG (st), errs, &errs_len, how, sizeof how));
  free (errs);
  return WIFSIGNALED (st) ? -1 : 0;
}
