/* netvsc-patch: watching an appliance launch.
 *
 * guestfs_launch blocks until the appliance is up, for as long as
 * libguestfs's own timeout (20 minutes).  On some nested-virtualisation
 * hosts qemu starts under KVM but the guest never boots; and a signal
 * that arrives during a launch is only looked at after it.  A watch
 * runs beside the launch, in a thread: it ends the launch (kills the
 * hypervisor, so guestfs_launch returns an error) when the appliance
 * has shown no progress for a bound, or when SIGINT/SIGTERM came in.
 *
 * Progress is any libguestfs event of the launch (console output of
 * the BIOS, kernel and appliance, library messages, launch done): a
 * slow launch that keeps printing is never ended, however slow. */
#ifndef NETVSC_PATCH_LAUNCHWATCH_H
#define NETVSC_PATCH_LAUNCHWATCH_H

#include <guestfs.h>

/* Seconds a launch that may use KVM can go without progress.  A KVM
 * launch takes 1-3 s in all.  Only where qemu falls back to TCG on its
 * own would a watched launch be slow: on a 2-core host, verbose TCG
 * launches went up to 17 s without console output (three at once, load
 * 8) and 40 s (three at once, load 12): kernel decompression.  An
 * ended launch is retried under TCG, so a bound too short costs time,
 * not the run. */
#define LAUNCH_TIMEOUT_DEFAULT 60
#define LAUNCH_TIMEOUT_ENV "NETVSC_PATCH_LAUNCH_TIMEOUT"

enum launch_end {
  LAUNCH_RAN,                   /* not ended by the watch */
  LAUNCH_HUNG,                  /* no progress for the bound: killed */
  LAUNCH_INTERRUPTED,           /* SIGINT/SIGTERM: killed */
};

struct launch_watch;

/* Does a launch of G (drives added, not launched) possibly use KVM:
 * the direct backend, /dev/kvm usable, force_tcg not set? */
int launch_may_use_kvm (guestfs_h *g);

/* Start watching the launch of G that the calling thread is about to
 * make.  BOUND: seconds without progress before the launch is ended (0:
 * never, only signals end it).  With a bound, G is made verbose for the
 * launch, so that the kernel's boot messages count as progress; the
 * messages are swallowed (printed if VERBOSE: netvsc-patch -vv).
 * Returns NULL if the watch cannot run (the launch is then unwatched). */
struct launch_watch *launch_watch_start (guestfs_h *g, int bound, int verbose);

/* After guestfs_launch (G) returned: stop watching, put G's verbosity
 * back.  Returns how the launch ended; *LONGEST (if not NULL) is the
 * longest the launch went without progress (-1: not measured). */
enum launch_end launch_watch_stop (struct launch_watch *w, double *longest);

/* What this run learnt about KVM.  It is a property of the host, the
 * same for every appliance, so later launches (in any worker thread)
 * skip KVM instead of paying for it again.  Thread-safe. */
int launch_kvm_unusable (void);
void launch_set_kvm_unusable (void);
/* 1 for the first caller in the process, then 0: one warning a run. */
int launch_first_fallback (void);

#endif
