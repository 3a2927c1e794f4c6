/* netvsc-patch: safe file replacement on the host. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hostfile.h"

static char *
dir_of (const char *path)
{
  char *copy = strdup (path), *d;

  if (copy == NULL)
    return NULL;
  d = strdup (dirname (copy));
  free (copy);
  return d;
}

int
hostfile_temp_beside (const char *target, char **tmp, struct np_error *err)
{
  char *dir = dir_of (target), *base, *copy = strdup (target);
  int fd;

  *tmp = NULL;
  if (dir == NULL || copy == NULL)
    goto oom;
  base = basename (copy);
  if (asprintf (tmp, "%s/.%s.netvsc-patch.XXXXXX", dir, base) == -1) {
    *tmp = NULL;
    goto oom;
  }
  fd = mkstemp (*tmp);
  if (fd == -1) {
    np_error_set (err, NP_EXIT_RUNTIME, "%s: cannot create a temporary file in %s: %s",
                  target, dir, strerror (errno));
    free (*tmp);
    *tmp = NULL;
    free (dir);
    free (copy);
    return -1;
  }
  close (fd);
  free (dir);
  free (copy);
  return 0;

 oom:
  free (dir);
  free (copy);
  return np_error_set (err, NP_EXIT_RUNTIME, "out of memory");
}

static int
fsync_path (const char *path, int flags)
{
  int fd = open (path, flags | O_CLOEXEC);
  int r;

  if (fd == -1)
    return -1;
  r = fsync (fd);
  if (close (fd) == -1)
    r = -1;
  return r;
}

int
hostfile_replace (const char *tmp, const char *target, const char *like,
                  struct np_error *err)
{
  struct stat st;
  char *dir;

  if (like && stat (like, &st) == 0) {
    if (chmod (tmp, st.st_mode & 07777) == -1)
      return np_error_set (err, NP_EXIT_RUNTIME, "%s: cannot set permissions: %s",
                           tmp, strerror (errno));
    /* Keep the owner when we can (root editing a user's image). */
    if (chown (tmp, st.st_uid, st.st_gid) == -1 && errno != EPERM)
      return np_error_set (err, NP_EXIT_RUNTIME, "%s: cannot set owner: %s",
                           tmp, strerror (errno));
  }
  if (fsync_path (tmp, O_RDONLY) == -1)
    return np_error_set (err, NP_EXIT_RUNTIME, "%s: cannot flush to disk: %s",
                         tmp, strerror (errno));
  if (rename (tmp, target) == -1)
    return np_error_set (err, NP_EXIT_RUNTIME, "%s: cannot replace: %s",
                         target, strerror (errno));
  dir = dir_of (target);
  if (dir == NULL)
    return np_error_set (err, NP_EXIT_RUNTIME, "out of memory");
  if (fsync_path (dir, O_RDONLY | O_DIRECTORY) == -1) {
    np_error_set (err, NP_EXIT_RUNTIME, "%s: cannot flush directory: %s",
                  dir, strerror (errno));
    free (dir);
    return -1;
  }
  free (dir);
  return 0;
}

int
hostfile_copy (const char *src, const char *dst, struct np_error *err)
{
  char buf[65536];
  int in = -1, out = -1;
  ssize_t n;

  in = open (src, O_RDONLY | O_CLOEXEC);
  if (in == -1)
    return np_error_set (err, NP_EXIT_RUNTIME, "%s: cannot open: %s", src, strerror (errno));
  out = open (dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (out == -1) {
    np_error_set (err, NP_EXIT_RUNTIME, "%s: cannot create: %s", dst, strerror (errno));
    close (in);
    return -1;
  }
  while ((n = read (in, buf, sizeof buf)) > 0) {
    for (ssize_t off = 0; off < n;) {
      ssize_t w = write (out, buf + off, (size_t) (n - off));
      if (w == -1)
        goto write_error;
      off += w;
    }
  }
  if (n == -1) {
    np_error_set (err, NP_EXIT_RUNTIME, "%s: cannot read: %s", src, strerror (errno));
    goto fail;
  }
  if (fsync (out) == -1 || close (out) == -1) {
    out = -1;
    goto write_error;
  }
  close (in);
  return 0;

 write_error:
  np_error_set (err, NP_EXIT_RUNTIME, "%s: cannot write: %s", dst, strerror (errno));
 fail:
  if (out != -1)
    close (out);
  close (in);
  unlink (dst);
  return -1;
}

int
hostfile_same (const char *a, const char *b)
{
  FILE *fa = fopen (a, "rb"), *fb = fopen (b, "rb");
  char ba[65536], bb[65536];
  int r = 0;

  if (fa == NULL || fb == NULL) {
    r = -1;
    goto out;
  }
  for (;;) {
    size_t na = fread (ba, 1, sizeof ba, fa), nb = fread (bb, 1, sizeof bb, fb);
    if (na != nb || memcmp (ba, bb, na) != 0) {
      r = 1;
      break;
    }
    if (na == 0) {
      r = (ferror (fa) || ferror (fb)) ? -1 : 0;
      break;
    }
  }
 out:
  if (fa)
    fclose (fa);
  if (fb)
    fclose (fb);
  return r;
}
