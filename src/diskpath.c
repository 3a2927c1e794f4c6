/* netvsc-patch: guest paths, as both backends take them. */
#include <stdlib.h>
#include <string.h>

#include "disk.h"

int
disk_path_split (const char *image, const char *path, char **buf, char ***comps, size_t *n,
                 struct np_error *err)
{
  char *save = NULL, **v;
  size_t cap = 1;

  *buf = NULL;
  *comps = NULL;
  *n = 0;
  for (const char *p = path; *p; p++)
    cap += *p == '/';
  if (path[0] != '/' || path[1] == '\0' || path[strlen (path) - 1] == '/')
    return np_error_set (err, NP_EXIT_RUNTIME, "%s: %s: not the absolute path of a file",
                         image, path);
  *buf = strdup (path);
  v = calloc (cap, sizeof *v);
  if (*buf == NULL || v == NULL) {
    free (*buf);
    *buf = NULL;
    free (v);
    return np_error_set (err, NP_EXIT_RUNTIME, "out of memory");
  }
  for (char *c = strtok_r (*buf, "/", &save); c; c = strtok_r (NULL, "/", &save)) {
    if (strcmp (c, ".") == 0 || strcmp (c, "..") == 0 || strlen (c) > 255) {
      np_error_set (err, NP_EXIT_RUNTIME, "%s: %s: bad path component \"%.255s\"",
                    image, path, c);
      free (*buf);
      *buf = NULL;
      free (v);
      return -1;
    }
    v[(*n)++] = c;
  }
  if (*n == 0) {                /* "///" */
    free (*buf);
    *buf = NULL;
    free (v);
    return np_error_set (err, NP_EXIT_RUNTIME, "%s: %s: not the absolute path of a file",
                         image, path);
  }
  *comps = v;
  return 0;
}
