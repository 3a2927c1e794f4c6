/* netvsc-patch: qemu-img preflight, shared by both backends. */
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "disk.h"

extern char **environ;

/* Run ARGV with stdout discarded, capturing its stderr into BUF. */
static int
run_capture (char *const argv[], char *buf, size_t len)
{
  int pipefd[2], status;
  posix_spawn_file_actions_t fa;
  pid_t pid;
  size_t used = 0;
  ssize_t n;

  buf[0] = '\0';
  if (pipe2 (pipefd, O_CLOEXEC) == -1)
    return -1;
  posix_spawn_file_actions_init (&fa);
  posix_spawn_file_actions_adddup2 (&fa, pipefd[1], 2);
  posix_spawn_file_actions_addopen (&fa, 1, "/dev/null", O_WRONLY, 0);
  if (posix_spawnp (&pid, argv[0], &fa, NULL, argv, environ) != 0) {
    posix_spawn_file_actions_destroy (&fa);
    close (pipefd[0]);
    close (pipefd[1]);
    snprintf (buf, len, "cannot run %s", argv[0]);
    return -1;
  }
  posix_spawn_file_actions_destroy (&fa);
  close (pipefd[1]);
  while (used < len - 1 && (n = read (pipefd[0], buf + used, len - 1 - used)) > 0)
    used += (size_t) n;
  buf[used] = '\0';
  close (pipefd[0]);
  if (waitpid (pid, &status, 0) == -1)
    return -1;
  return WIFEXITED (status) && WEXITSTATUS (status) == 0 ? 0 : -1;
}

/* Does qemu's message say it could not open a file other than PATH
 * (the parent of a differencing image)? */
static int
names_other_file (const char *msg, const char *path, char *named, size_t len)
{
  const char *p = strstr (msg, "Could not open '"), *end;
  char *real = realpath (path, NULL);
  int other = 0;

  if (p && real) {
    p += 16;
    end = strchr (p, '\'');
    if (end && (size_t) (end - p) < len) {
      memcpy (named, p, (size_t) (end - p));
      named[end - p] = '\0';
      char *named_real = realpath (named, NULL);
      other = strcmp (named, path) != 0 && strcmp (named, real) != 0 &&
        !(strncmp (named, "./", 2) == 0 && strcmp (named + 2, path) == 0) &&
        (named_real == NULL || strcmp (named_real, real) != 0);
      free (named_real);
    }
  }
  free (real);
  return other;
}

int
disk_preflight (const char *path, const char *format, struct np_error *err)
{
  char out[4096], parent[4096] = "", arg[4096];
  /* "./" keeps qemu from reading a relative name like "nbd:x" as a
   * protocol. */
  snprintf (arg, sizeof arg, "%s%s", path[0] == '/' ? "" : "./", path);
  char *argv[] = {
    "qemu-img", "info", "--backing-chain", "-f", (char *) format, "--output=json",
    arg, NULL
  };
  const char *msg;

  /* --backing-chain: a differencing image is only usable with its
   * parents, so open them too. */
  if (run_capture (argv, out, sizeof out) == 0)
    return 0;
  /* qemu-img prints "qemu-img: Could not open 'X': reason". */
  np_one_line (out);
  msg = strstr (out, "qemu-img: ");
  msg = msg ? msg + 10 : out;
  /* Drop "Could not open 'PATH': " (nested): we name the file ourselves. */
  while (strncmp (msg, "Could not open '", 16) == 0 && strstr (msg, "': "))
    msg = strstr (msg, "': ") + 3;
  if (strstr (out, "Failed to get") && strstr (out, "lock"))
    return np_error_set (err, NP_EXIT_RUNTIME,
                         "%s: the image is in use by another process (is the VM running?): %s",
                         path, msg);
  if (names_other_file (out, path, parent, sizeof parent))
    return np_error_set (err, NP_EXIT_RUNTIME,
                         "%s: cannot open the parent of this differencing image (%s): %s",
                         path, parent, msg);
  if (strstr (out, "backing") || strstr (out, "parent"))
    return np_error_set (err, NP_EXIT_RUNTIME,
                         "%s: cannot open the parent of this differencing image: %s",
                         path, msg);
  return np_error_set (err, NP_EXIT_RUNTIME, "%s: qemu cannot open the image as %s: %s",
                       path, format, *msg ? msg : "qemu-img info failed");
}
