/* disk-files: drive a disk backend's read_file, write_file and
 * remove_file from the command line, for tests/t-disk-files.sh.
 *
 *   disk-files BACKEND IMAGE-GROUP [+ IMAGE-GROUP]...
 *   IMAGE-GROUP: [-r] [-v] [-f FORMAT] IMAGE CMD...
 *
 * BACKEND is "direct" or "appliance".  Each image is opened (-r:
 * read-only; FORMAT defaults to what format_detect says), its Windows
 * volume found, its commands run in order, and it is closed.  Several
 * images are opened together, through one appliance launch where the
 * backend has open_batch.  Commands:
 *
 *   write GUESTPATH HOSTFILE   write_file with the bytes of HOSTFILE
 *   read GUESTPATH HOSTFILE    read_file; the bytes go to HOSTFILE
 *                              (not created if GUESTPATH is absent)
 *   remove GUESTPATH           remove_file
 *   replace NAME HOSTFILE      replace (NAME in the hive's directory)
 *
 * Every command prints one line on stdout, "IMAGE: CMD GUESTPATH: "
 * then "ok", "N bytes" (read), "absent" (read found nothing) or
 * "error N" (N the error's exit code), and an error's one-line message
 * goes to stderr as is.  A failing command does not stop the next ones.
 * Exit status: the highest error code seen (1 runtime, 4 refused), else
 * 3 if a read found nothing, else 0; 2 for bad usage. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "disk.h"
#include "format.h"

#define EXIT_ABSENT 3

struct cmd {
  const char *op, *guest, *host;
};

struct group {
  struct disk_request req;
  struct cmd *cmds;
  size_t n_cmds;
  struct disk *d;
  int failed;                  /* could not be opened or its volume found */
};

static int worst_error, absent_seen;

static void
usage (void)
{
  fprintf (stderr, "usage: disk-files direct|appliance [-r] [-v] [-f FORMAT] IMAGE CMD... "
           "[+ [-r] [-v] [-f FORMAT] IMAGE CMD...]...\n"
           "  CMD: write GUESTPATH HOSTFILE | read GUESTPATH HOSTFILE | remove GUESTPATH\n"
           "     | replace NAME HOSTFILE\n");
  exit (2);
}

static void
failed (const char *image, const struct cmd *c, const struct np_error *err)
{
  if (c)
    printf ("%s: %s %s: error %d\n", image, c->op, c->guest, err->code);
  fprintf (stderr, "%s\n", err->msg);
  if (err->code > worst_error)
    worst_error = err->code;
}

static int
slurp (const char *file, char **buf, size_t *len)
{
  FILE *f = fopen (file, "rb");
  size_t cap = 4096;

  *len = 0;
  *buf = malloc (cap);
  if (f == NULL || *buf == NULL) {
    if (f)
      fclose (f);
    return -1;
  }
  for (;;) {
    size_t n = fread (*buf + *len, 1, cap - *len, f);
    *len += n;
    if (n == 0)
      break;
    if (*len == cap) {
      char *more = realloc (*buf, cap *= 2);
      if (more == NULL) {
        fclose (f);
        return -1;
      }
      *buf = more;
    }
  }
  if (ferror (f)) {
    fclose (f);
    return -1;
  }
  fclose (f);
  return 0;
}

static int
spill (const char *file, const char *buf, size_t len)
{
  FILE *f = fopen (file, "wb");

  if (f == NULL)
    return -1;
  if (fwrite (buf, 1, len, f) != len) {
    fclose (f);
    return -1;
  }
  return fclose (f);
}

static void
run_cmd (const struct disk_backend *be, struct group *g, const struct cmd *c)
{
  struct np_error err = { 0, "" };
  const char *image = g->req.path;
  char *buf = NULL;
  size_t len = 0;
  int r;

  if (strcmp (c->op, "write") == 0) {
    if (slurp (c->host, &buf, &len) == -1) {
      np_error_set (&err, 1, "disk-files: %s: %s", c->host, strerror (errno));
      failed (image, c, &err);
    }
    else if (be->write_file (g->d, c->guest, buf, len, &err) == -1)
      failed (image, c, &err);
    else
      printf ("%s: write %s: ok\n", image, c->guest);
  }
  else if (strcmp (c->op, "read") == 0) {
    r = be->read_file (g->d, c->guest, &buf, &len, &err);
    if (r == -1)
      failed (image, c, &err);
    else if (r == 1) {
      printf ("%s: read %s: absent\n", image, c->guest);
      absent_seen = 1;
      if (buf != NULL) {
        np_error_set (&err, 1, "disk-files: read_file returned 1 with a buffer");
        failed (image, NULL, &err);
      }
    }
    else if (buf == NULL || buf[len] != '\0') {
      np_error_set (&err, 1, "disk-files: read_file's buffer is not NUL-terminated");
      failed (image, c, &err);
    }
    else if (spill (c->host, buf, len) == -1) {
      np_error_set (&err, 1, "disk-files: %s: %s", c->host, strerror (errno));
      failed (image, c, &err);
    }
    else
      printf ("%s: read %s: %zu bytes\n", image, c->guest, len);
  }
  else if (strcmp (c->op, "remove") == 0) {
    if (be->remove_file (g->d, c->guest, &err) == -1)
      failed (image, c, &err);
    else
      printf ("%s: remove %s: ok\n", image, c->guest);
  }
  else {
    const char *tmpdir = getenv ("TMPDIR");
    char scratch[4096];
    int fd;

    snprintf (scratch, sizeof scratch, "%s/disk-files.XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
    fd = mkstemp (scratch);
    if (fd == -1) {
      np_error_set (&err, 1, "disk-files: %s: %s", scratch, strerror (errno));
      failed (image, c, &err);
    }
    else {
      close (fd);
      if (be->replace (g->d, c->guest, c->host, scratch, &err) == -1)
        failed (image, c, &err);
      else
        printf ("%s: replace %s: ok\n", image, c->guest);
      unlink (scratch);
    }
  }
  fflush (stdout);
  free (buf);
}

int
main (int argc, char **argv)
{
  const struct disk_backend *be;
  struct group *groups;
  struct disk_request *reqs;
  struct disk **disks;
  struct np_error *errs;
  struct disk_batch *batch = NULL;
  size_t n = 0;
  int i = 2;

  if (argc < 3)
    usage ();
  if (strcmp (argv[1], "direct") == 0)
    be = &direct_backend;
  else if (strcmp (argv[1], "appliance") == 0)
    be = &appliance_backend;
  else
    usage ();
  if (!be->read_file || !be->write_file || !be->remove_file) {
    fprintf (stderr, "disk-files: the %s backend lacks read_file/write_file/remove_file\n",
             be->name);
    return 1;
  }
  groups = calloc ((size_t) argc, sizeof *groups);
  if (groups == NULL)
    return 1;

  /* Parse the image groups. */
  while (i < argc) {
    struct group *g = &groups[n++];
    const char *format = NULL;
    struct np_error err;

    g->cmds = calloc ((size_t) argc, sizeof *g->cmds);
    if (g->cmds == NULL)
      return 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
      if (strcmp (argv[i], "-r") == 0)
        g->req.readonly = 1;
      else if (strcmp (argv[i], "-v") == 0)
        g->req.verbose = 1;
      else if (strcmp (argv[i], "-f") == 0 && i + 1 < argc)
        format = argv[++i];
      else
        usage ();
    }
    if (i >= argc)
      usage ();
    g->req.path = argv[i++];
    if (format == NULL && (format = format_detect (g->req.path, &err)) == NULL) {
      fprintf (stderr, "%s\n", err.msg);
      return 1;
    }
    g->req.format = format;
    while (i < argc && strcmp (argv[i], "+") != 0) {
      struct cmd *c = &g->cmds[g->n_cmds++];
      c->op = argv[i];
      if ((strcmp (c->op, "write") == 0 || strcmp (c->op, "read") == 0 ||
           strcmp (c->op, "replace") == 0) && i + 2 < argc) {
        c->guest = argv[i + 1];
        c->host = argv[i + 2];
        i += 3;
      }
      else if (strcmp (c->op, "remove") == 0 && i + 1 < argc) {
        c->guest = argv[i + 1];
        i += 2;
      }
      else
        usage ();
    }
    if (i < argc)
      i++;                             /* the "+" */
  }

  /* Open them: together if the backend can. */
  reqs = calloc (n, sizeof *reqs);
  disks = calloc (n, sizeof *disks);
  errs = calloc (n, sizeof *errs);
  if (reqs == NULL || disks == NULL || errs == NULL)
    return 1;
  for (size_t k = 0; k < n; k++)
    reqs[k] = groups[k].req;
  if (be->open_batch && n > 1) {
    batch = be->open_batch (reqs, n, disks, errs);
    if (batch == NULL) {
      for (size_t k = 0; k < n; k++)
        failed (reqs[k].path, NULL, &errs[k]);
      return worst_error;
    }
  }
  else
    for (size_t k = 0; k < n; k++)
      disks[k] = be->open (&reqs[k], &errs[k]);

  for (size_t k = 0; k < n; k++) {
    struct group *g = &groups[k];
    struct np_error err = { 0, "" };

    g->d = disks[k];
    if (g->d == NULL) {
      failed (g->req.path, NULL, &errs[k]);
      g->failed = 1;
      continue;
    }
    if (be->find_windows (g->d, NULL, &err) == -1) {
      failed (g->req.path, NULL, &err);
      g->failed = 1;
      continue;
    }
    for (size_t j = 0; j < g->n_cmds; j++)
      run_cmd (be, g, &g->cmds[j]);
  }

  for (size_t k = 0; k < n; k++) {
    struct np_error err = { 0, "" };
    if (disks[k] && be->close (disks[k], &err) == -1)
      failed (groups[k].req.path, NULL, &err);
  }
  if (batch) {
    struct np_error err = { 0, "" };
    if (be->close_batch (batch, &err) == -1)
      failed ("batch", NULL, &err);
  }
  for (size_t k = 0; k < n; k++)
    free (groups[k].cmds);
  free (groups);
  free (reqs);
  free (disks);
  free (errs);
  if (worst_error)
    return worst_error;
  return absent_seen ? EXIT_ABSENT : 0;
}
