/* netvsc-patch: the direct backend's qemu-nbd process: found in $PATH,
 * started by socket activation under a babysitter, reaped and its
 * messages kept. */

#include "direct-internal.h"

#include <poll.h>
#include <sys/syscall.h>

/* --- open ------------------------------------------------------------ *
 *
 * qemu-nbd is started by systemd-style socket activation, done here
 * rather than by libnbd's nbd_connect_systemd_socket_activation, which
 * (libnbd 1.14) binds a named socket under /tmp that a killed client
 * leaves behind, lets qemu-nbd wait forever on that socket (holding
 * qemu's lock on the image) if the client dies before connecting, runs
 * it in our process group (a Ctrl-C on the terminal would stop it in
 * the middle of the swap, whose signals job.c defers) with our stderr,
 * and throws its exit status away.  Here:
 *  - the listening socket is in the abstract namespace (autobound):
 *    nothing on any filesystem, ever;
 *  - we connect before forking, so qemu-nbd always has its client;
 *  - a babysitter process (below) in its own session starts qemu-nbd,
 *    stops it if we die, at whatever moment, and passes its exit status
 *    on; qemu-nbd gets a file of ours with no name as stderr (its
 *    messages end up in our one-line error, or nowhere) and nothing
 *    else of ours;
 *  - we wait for it when closing and check how it exited.
 * After fork the children only make async-signal-safe calls (other
 * worker threads may hold locks). */

/* Where PROG is in $PATH (malloc'd), or NULL. */
char *
find_in_path (const char *prog)
{
  const char *path = getenv ("PATH");
  char *dirs, *save = NULL, *full = NULL;

  dirs = strdup (path && *path ? path : "/usr/local/bin:/usr/bin:/bin");
  if (dirs == NULL)
    return NULL;
  for (char *dir = strtok_r (dirs, ":", &save); dir; dir = strtok_r (NULL, ":", &save)) {
    if (asprintf (&full, "%s/%s", *dir ? dir : ".", prog) == -1) {
      full = NULL;
      break;
    }
    if (access (full, X_OK) == 0)
      break;
    free (full);
    full = NULL;
  }
  free (dirs);
  return full;
}

/* qemu-nbd itself, between fork and exec. */
static void __attribute__((noreturn))
exec_qemu_nbd (int listen_fd, int log_fd, const char *prog, char **argv, char **envp,
               char *pid_slot)
{
  sigset_t none;
  pid_t me = getpid ();
  char digits[24];
  int n = 0;

  sigemptyset (&none);
  sigprocmask (SIG_SETMASK, &none, NULL);
  if (log_fd >= 0)
    dup2 (log_fd, 2);
  /* systemd's protocol: the listening socket is fd 3, LISTEN_PID us. */
  if (listen_fd == 3)
    fcntl (3, F_SETFD, 0);
  else if (dup2 (listen_fd, 3) == -1)
    _exit (127);
  close_range (4, ~0u, 0);
  do
    digits[n++] = (char) ('0' + me % 10);
  while ((me /= 10) > 0);
  while (n > 0)
    *pid_slot++ = digits[--n];
  *pid_slot = '\0';
  execve (prog, argv, envp);
  _exit (127);
}

/* Between us and qemu-nbd: a process of our own (forked, never exec'd:
 * async-signal-safe calls only) in its own session, which starts
 * qemu-nbd, exits with its status, and, if we die, sends it SIGTERM
 * until it is gone.  Needed because qemu-nbd does not exit when a
 * client drops before finishing the NBD handshake (it waits for the
 * next), and a SIGTERM that arrives while it is starting is forgotten:
 * either can leave it running forever, holding the image's lock. */
static void __attribute__((noreturn))
babysit_qemu_nbd (pid_t parent, int listen_fd, int log_fd, const char *prog, char **argv,
                  char **envp, char *pid_slot)
{
  struct timespec tick = { 0, 20 * 1000 * 1000 };
  pid_t q;
  int status, qfd;

  setsid ();
  q = fork ();
  if (q == -1)
    _exit (127);
  if (q == 0)
    exec_qemu_nbd (listen_fd, log_fd, prog, argv, envp, pid_slot);
  /* Nothing of ours stays open here: our end of the connection above
   * all, whose closing is how qemu-nbd learns we are done. */
  close_range (0, ~0u, 0);
  /* Woken the moment qemu-nbd exits (a pidfd is readable then), so that
   * closing an image does not wait for the next tick. */
  qfd = (int) syscall (SYS_pidfd_open, q, 0);
  for (;;) {
    pid_t r = waitpid (q, &status, WNOHANG);
    if (r == q)
      _exit (WIFEXITED (status) ? WEXITSTATUS (status) : 128 + WTERMSIG (status));
    if (r == -1 && errno != EINTR)
      _exit (127);
    if (getppid () != parent)
      kill (q, SIGTERM);               /* again at each tick: one may be lost */
    if (qfd < 0 || poll (&(struct pollfd) { qfd, POLLIN, 0 }, 1, 20) == -1)
      nanosleep (&tick, NULL);
  }
}

/* Start qemu-nbd with ARGV serving the image; *SOCK is our end of the
 * connection.  -1 with errno. */
int
spawn_qemu_nbd (struct direct *d, const char *prog, char **argv, int *sock)
{
  extern char **environ;
  struct sockaddr_un addr;
  socklen_t alen = sizeof (sa_family_t);
  size_t n = 0, k = 0;
  char **envp = NULL, fds[] = "LISTEN_FDS=1", pid_var[40] = "LISTEN_PID=";
  int lfd = -1, cfd = -1, e;
  pid_t pid, self = getpid ();

  while (environ[n])
    n++;
  envp = calloc (n + 3, sizeof *envp);
  if (envp == NULL)
    return -1;
  for (size_t i = 0; i < n; i++)
    if (strncmp (environ[i], "LISTEN_", 7) != 0)
      envp[k++] = environ[i];
  envp[k++] = fds;
  envp[k++] = pid_var;

  memset (&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  lfd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  /* Binding just the family autobinds an abstract address. */
  if (lfd == -1 || bind (lfd, (struct sockaddr *) &addr, alen) == -1 ||
      listen (lfd, 1) == -1 ||
      (alen = sizeof addr, getsockname (lfd, (struct sockaddr *) &addr, &alen)) == -1)
    goto fail;
  /* Connected before qemu-nbd even exists: the connection waits in the
   * backlog, and if we die at any moment from here, qemu-nbd accepts it,
   * reads end-of-file and exits.  (Its SIGTERM handler cannot be relied
   * on for that: a signal that comes while it is still starting is
   * lost, and it would wait for a client forever, holding the image.) */
  cfd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (cfd == -1 || connect (cfd, (struct sockaddr *) &addr, alen) == -1)
    goto fail;
  pid = fork ();
  if (pid == -1)
    goto fail;
  if (pid == 0)
    babysit_qemu_nbd (self, lfd, d->qemu_log, prog, argv, envp, pid_var + 11);
  d->child = pid;
  close (lfd);
  free (envp);
  *sock = cfd;
  return 0;

 fail:
  e = errno;
  if (cfd >= 0)
    close (cfd);
  if (lfd >= 0)
    close (lfd);
  free (envp);
  errno = e;
  return -1;
}

/* Wait for qemu-nbd to exit (it does once we disconnect), no more than
 * TIMEOUT_MS, then make it.  Returns its wait status, or -1. */
int
reap_qemu_nbd (struct direct *d, int timeout_ms)
{
  int status, waited = 0, cfd;

  if (d->child <= 0)
    return -1;
  /* A pidfd wakes us when the babysitter exits; without one, 2 ms naps. */
  cfd = (int) syscall (SYS_pidfd_open, d->child, 0);
  for (;;) {
    pid_t r = waitpid (d->child, &status, WNOHANG);
    if (r == d->child)
      break;
    if (r == -1 && errno != EINTR) {
      if (cfd >= 0)
        close (cfd);
      d->child = 0;
      return -1;
    }
    /* The babysitter's process group holds qemu-nbd too. */
    if (waited == timeout_ms)
      kill (-d->child, SIGTERM);       /* qemu-nbd closes the image cleanly */
    else if (waited == timeout_ms + 5000)
      kill (-d->child, SIGKILL);
    if (cfd < 0 || poll (&(struct pollfd) { cfd, POLLIN, 0 }, 1, 2) == -1)
      usleep (2000);
    waited += 2;
  }
  if (cfd >= 0)
    close (cfd);
  d->child = 0;
  return status;
}

/* Put what qemu-nbd printed into BUF, one line. */
void
qemu_nbd_message (const struct direct *d, char *buf, size_t len)
{
  ssize_t n = d->qemu_log >= 0 ? pread (d->qemu_log, buf, len - 1, 0) : -1;
  char *p;

  buf[n > 0 ? n : 0] = '\0';
  np_one_line (buf);
  while ((p = strstr (buf, "qemu-nbd: ")) != NULL)
    memmove (p, p + 10, strlen (p + 10) + 1);
}
