/* netvsc-patch: signal handling.
 *
 * The received signal is the one piece of process-wide state besides
 * the options: a handler cannot be given anything else. */
#include <signal.h>
#include <string.h>

#include "interrupt.h"

static volatile sig_atomic_t received;

static void
on_signal (int sig)
{
  received = sig;
}

void
interrupt_install (void)
{
  struct sigaction sa;

  memset (&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset (&sa.sa_mask);
  /* No SA_RESTART: a blocking read should return so we notice sooner. */
  sigaction (SIGINT, &sa, NULL);
  sigaction (SIGTERM, &sa, NULL);
  sigaction (SIGHUP, &sa, NULL);
}

int
interrupt_pending (void)
{
  return received;
}

void
interrupt_defer (int block)
{
  sigset_t set;

  sigemptyset (&set);
  sigaddset (&set, SIGINT);
  sigaddset (&set, SIGTERM);
  sigaddset (&set, SIGHUP);
  sigprocmask (block ? SIG_BLOCK : SIG_UNBLOCK, &set, NULL);
}
