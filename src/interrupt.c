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

/* SIGPIPE: nothing to do here.  A write to a closed pipe then fails
 * with EPIPE, which the caller sees and reports, instead of the process
 * dying silently with images left undone.  A handler, not SIG_IGN: a
 * handler is reset by exec, so the programs we run keep the default. */
static void
on_sigpipe (int sig)
{
  (void) sig;
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
  sa.sa_handler = on_sigpipe;
  sa.sa_flags = SA_RESTART;
  sigaction (SIGPIPE, &sa, NULL);
}

void
interrupt_note (int sig)
{
  if (received == 0)
    received = sig;
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
