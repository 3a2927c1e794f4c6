/* netvsc-patch: a hive's transaction logs on the host, found without
 * regard to case (see include/logfind.h). */
#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "logfind.h"

static const char *const suffix[REPLAY_NLOGS] = { ".LOG1", ".LOG2", ".LOG" };

void
host_logs_find (const char *hive, struct host_logs *logs)
{
  const char *slash = strrchr (hive, '/');
  const char *base = slash ? slash + 1 : hive;
  int dirlen = slash ? (int) (slash - hive) : 0;
  char dir[PATH_MAX], want[NAME_MAX + 8], first[REPLAY_NLOGS][NAME_MAX + 1];
  DIR *d;
  struct dirent *e;

  memset (logs, 0, sizeof *logs);
  for (int i = 0; i < REPLAY_NLOGS; i++)
    snprintf (logs->path[i], sizeof logs->path[i], "%s%s", hive, suffix[i]);
  snprintf (dir, sizeof dir, "%.*s", slash ? (dirlen ? dirlen : 1) : 1, slash ? hive : ".");
  d = opendir (dir);
  if (d == NULL) {
    /* cannot list it: only the usual spelling can be found */
    for (int i = 0; i < REPLAY_NLOGS; i++)
      logs->found[i] = access (logs->path[i], F_OK) == 0;
    return;
  }
  while ((e = readdir (d)) != NULL)
    for (int i = 0; i < REPLAY_NLOGS; i++) {
      snprintf (want, sizeof want, "%s%s", base, suffix[i]);
      if (strcasecmp (e->d_name, want) != 0)
        continue;
      if (logs->found[i]) {
        if (!logs->ambiguous[0])
          snprintf (logs->ambiguous, sizeof logs->ambiguous, "%.255s and %.255s both exist beside it",
                    first[i], e->d_name);
        continue;
      }
      logs->found[i] = 1;
      snprintf (first[i], sizeof first[i], "%s", e->d_name);
      snprintf (logs->path[i], sizeof logs->path[i], "%.*s%s%s", dirlen, hive,
                slash ? "/" : "", e->d_name);
    }
  closedir (d);
}

void
host_logs_describe (const struct host_logs *logs, char *buf, size_t len)
{
  const char *names[REPLAY_NLOGS];
  int n = 0;
  size_t used;

  for (int i = 0; i < REPLAY_NLOGS; i++)
    if (logs->found[i]) {
      const char *s = strrchr (logs->path[i], '/');
      names[n++] = s ? s + 1 : logs->path[i];
    }
  if (n == 0) {
    snprintf (buf, len, "no .LOG1, .LOG2 or .LOG file beside it");
    return;
  }
  buf[0] = '\0';
  for (int i = 0; i < n; i++) {
    used = strlen (buf);
    snprintf (buf + used, len - used, "%s%s", i == 0 ? "" : i == n - 1 ? " and " : ", ",
              names[i]);
  }
  used = strlen (buf);
  snprintf (buf + used, len - used, " exist%s beside it", n == 1 ? "s" : "");
}
