/* netvsc-patch: set the Hyper-V synthetic NIC's VMBus buffer sizes in
 * an offline Windows image or SYSTEM hive.
 *
 * This file parses the command line, runs each target through the
 * pipeline (job.c) and turns the outcomes into an exit status. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "batch.h"
#include "bitlocker.h"
#include "escape.h"
#include "contain.h"
#include "format.h"
#include "interrupt.h"
#include "job.h"
#include "launchwatch.h"
#include "report.h"
#include "size.h"
#include "uri.h"

/* The version has one source, the Makefile's VERSION (-D). */
#ifndef NETVSC_PATCH_VERSION
#error "NETVSC_PATCH_VERSION is not defined: build with make (VERSION in the Makefile)"
#endif

static void
usage (FILE *fp)
{
  fputs (
"Usage: netvsc-patch [OPTIONS] IMAGE...\n"
"       netvsc-patch [OPTIONS] -d DOMAIN [-c URI]\n"
"       netvsc-patch [OPTIONS] --from LIST\n"
"       netvsc-patch [OPTIONS] --hive FILE\n"
"Set ReceiveBufferSize/SendBufferSize of the Hyper-V network adapter (netvsc)\n"
"in the SYSTEM hive of offline Windows disk images, or of a hive file.\n"
"\n"
"Values (at least one, unless --list or --remove):\n"
"  -r, --receive-buffer SIZE  receive buffer; a bare number is KB (0x800 = 2 MB),\n"
"                             or with K/KB/KiB or M/MB/MiB (1024-based): 4M\n"
"  -s, --send-buffer SIZE     send buffer, same syntax\n"
"      --remove               delete both values (back to the driver's defaults)\n"
"      --set NAME=VALUE       any advanced property of the adapter, e.g.\n"
"                             --set '*JumboPacket=9014' (repeatable); checked\n"
"                             against the driver's Ndi\\Params\n"
"      --type NAME=TYPE       write NAME as dword or sz (default: REG_DWORD for\n"
"                             the buffer sizes, else the type it has, else sz)\n"
"      --force                write values the driver's Ndi\\Params refuses, and\n"
"                             a hive or image with no write permission bits\n"
"      --defer[=WHEN]         also install a boot-time action in the image that\n"
"                             sets the values on matching adapters Windows\n"
"                             creates later (a sysprepped or foreign template\n"
"                             has no Hyper-V adapter yet); WHEN: always (the\n"
"                             default: every boot), once (until a boot that\n"
"                             succeeds), setup (from SetupComplete.cmd, for\n"
"                             generalized images); --remove removes it\n"
"\n"
"What to work on:\n"
"      --hive FILE            a SYSTEM hive file on this host (no image, no appliance)\n"
"  -o, --output FILE          with --hive: write the result to FILE, not in place\n"
"      --format FMT           image format: raw, vpc (vhd), vhdx, qcow2, vmdk,\n"
"                             vdi, qed (default: detected from the file's magic\n"
"                             bytes; raw for a URI); one for every image:\n"
"                             per image, use --from\n"
"      --root DEVICE          the Windows volume, if an image holds several\n"
"      --blocksize 512|4096   the disk's logical sector size (default: 4096 if\n"
"                             its GPT header is at byte 4096, else 512)\n"
"      --key DEVICE:key:KEY   open BitLocker volume DEVICE (/dev/sda2) with its\n"
"      --key DEVICE:file:FILE recovery key or password, given or in FILE's\n"
"                             first line (appliance only; KEY is visible in\n"
"                             ps: prefer file: or --keys-from-stdin)\n"
"      --keys-from-stdin      keys for any BitLocker volume, one a line\n"
"      --from LIST            images to patch, one per line (- for stdin),\n"
"                             optionally followed by a tab and the format\n"
"  -0, --null                 --from LIST's names end at NUL bytes (as from\n"
"                             find -print0), each a path exactly\n"
"      --control-set SET      current, default, all or a number (default: the\n"
"                             sets Select\\Current and Select\\Default name)\n"
"      --match SPEC           which adapters: netvsc (default), service:NAME,\n"
"                             desc:TEXT, or a device id glob (pci\\ven_8086*)\n"
"  -d, --domain NAME          a libvirt domain (name or UUID): all its disks,\n"
"                             Windows searched across them (repeatable); a\n"
"                             running domain is only read (-n, --check, --list)\n"
"  -c, --connect URI          libvirt connection URI for -d (default: libvirt's)\n"
"  An IMAGE may be a URI (REMOTE IMAGES in netvsc-patch(1)); ./nbd://... is a file:\n"
"    nbd://HOST[:PORT][/EXPORT]     nbd+unix:///[EXPORT]?socket=PATH\n"
"    ssh://[USER@]HOST[:PORT]/PATH  (not with --direct)\n"
"    http[s]://HOST[:PORT]/PATH     (not with --direct; --dry-run, --check, --list)\n"
"\n"
"How:\n"
"  -n, --dry-run              show what would change, write nothing\n"
"      --check                exit 0 if the values are already set, 5 if not\n"
"      --list                 list the network adapters and their values\n"
"      --backup DIR           save each original hive in DIR before writing\n"
"      --lock-timeout SECONDS with --hive: how long to wait for another run's\n"
"                             lock on the file (default 60; 0: do not wait)\n"
"      --no-replay            refuse a dirty hive instead of recovering it from\n"
"                             its transaction logs (FILE.LOG1/LOG2, or XP's FILE.LOG)\n"
"      --replay-only          with --hive and -o: write the hive recovered from\n"
"                             its logs to OUT, set nothing\n"
"  -j, --jobs N               appliances run in parallel (default: by cores\n"
"                             and memory); each takes many images\n"
"      --isolate              one appliance per image (a hostile image then\n"
"                             cannot affect the others)\n"
"      --direct               no appliance: serve the image with qemu-nbd and\n"
"                             read NTFS in this process (fast; for images you\n"
"                             built or trust)\n"
"      --allow-external FILE  an image may name FILE although it is not beside\n"
"                             it (a VMDK extent, a backing or data file);\n"
"                             repeatable.  Otherwise only files in the\n"
"                             image's own directory are ever opened\n"
"      --launch-timeout SECONDS  end a launch under KVM that shows no progress\n"
"                             for that long and retry it under software\n"
"                             emulation (default 60, or $NETVSC_PATCH_LAUNCH_TIMEOUT;\n"
"                             0: never)\n"
"      --json                 one JSON object per target on stdout, always\n"
"                             the same keys (netvsc-patch(1), JSON OUTPUT)\n"
"  -v, --verbose              say more (twice: libguestfs debug output)\n"
"  -x                         trace on stderr: the steps taken, and with the\n"
"                             appliance every libguestfs API call\n"
"  -q, --quiet                print only errors, and what was asked for:\n"
"                             --list, --dry-run and --json still print\n"
"  -V, --version              print the version\n"
"  -h, --help                 this help\n"
"      --long-options         list the long options, one a line (for completion)\n"
"      --short-options        list the short options, one a line\n"
"\n"
"Exit status: 0 patched or nothing to do; 1 runtime error; 2 usage error,\n"
"or a value the driver's Ndi\\Params does not allow; 3 no matching adapter\n"
"(see --defer); 4 refused as unsafe (dirty hive whose logs cannot be\n"
"replayed, hibernated Windows); 5 --check found values not as requested;\n"
"6 the Windows volume is BitLocker-encrypted and no key opened it.\n"
"With several images, the highest number (6 > 5 > 4 > 3 > 2 > 1 > 0).\n"
"Never run it on the image of a running VM.  See netvsc-patch(1).\n",
         fp);
}

static int
usage_error (const char *fmt, const char *arg, const char *why)
{
  char shown[1024];

  fprintf (stderr, "netvsc-patch: ");
  fprintf (stderr, fmt, esc_str (shown, sizeof shown, arg, ESC_TEXT), why);
  fprintf (stderr, "\nTry 'netvsc-patch --help' for more information.\n");
  return NP_EXIT_USAGE;
}

enum {
  OPT_FORMAT = 256, OPT_CONTROL_SET, OPT_MATCH, OPT_LIST, OPT_JSON, OPT_HIVE,
  OPT_ROOT, OPT_CHECK, OPT_REMOVE, OPT_BACKUP, OPT_FROM, OPT_ISOLATE, OPT_DIRECT,
  OPT_NO_REPLAY, OPT_REPLAY_ONLY, OPT_SET, OPT_TYPE, OPT_FORCE, OPT_DEFER,
  OPT_ALLOW_EXTERNAL,
  OPT_LOCK_TIMEOUT,
  OPT_LAUNCH_TIMEOUT,
  OPT_LONG_OPTIONS,
  OPT_SHORT_OPTIONS,
  OPT_BLOCKSIZE, OPT_KEY, OPT_KEYS_FROM_STDIN,
};

static const struct option long_options[] = {
  { "receive-buffer", required_argument, NULL, 'r' },
  { "send-buffer", required_argument, NULL, 's' },
  { "remove", no_argument, NULL, OPT_REMOVE },
  { "set", required_argument, NULL, OPT_SET },
  { "type", required_argument, NULL, OPT_TYPE },
  { "force", no_argument, NULL, OPT_FORCE },
  { "defer", optional_argument, NULL, OPT_DEFER },
  { "hive", required_argument, NULL, OPT_HIVE },
  { "output", required_argument, NULL, 'o' },
  { "format", required_argument, NULL, OPT_FORMAT },
  { "root", required_argument, NULL, OPT_ROOT },
  { "control-set", required_argument, NULL, OPT_CONTROL_SET },
  { "match", required_argument, NULL, OPT_MATCH },
  { "dry-run", no_argument, NULL, 'n' },
  { "check", no_argument, NULL, OPT_CHECK },
  { "list", no_argument, NULL, OPT_LIST },
  { "backup", required_argument, NULL, OPT_BACKUP },
  { "lock-timeout", required_argument, NULL, OPT_LOCK_TIMEOUT },
  { "from", required_argument, NULL, OPT_FROM },
  { "null", no_argument, NULL, '0' },
  { "jobs", required_argument, NULL, 'j' },
  { "isolate", no_argument, NULL, OPT_ISOLATE },
  { "direct", no_argument, NULL, OPT_DIRECT },
  { "allow-external", required_argument, NULL, OPT_ALLOW_EXTERNAL },
  { "no-replay", no_argument, NULL, OPT_NO_REPLAY },
  { "replay-only", no_argument, NULL, OPT_REPLAY_ONLY },
  { "json", no_argument, NULL, OPT_JSON },
  { "launch-timeout", required_argument, NULL, OPT_LAUNCH_TIMEOUT },
  { "verbose", no_argument, NULL, 'v' },
  { "quiet", no_argument, NULL, 'q' },
  { "version", no_argument, NULL, 'V' },
  { "help", no_argument, NULL, 'h' },
  { "domain", required_argument, NULL, 'd' },
  { "connect", required_argument, NULL, 'c' },
  { "long-options", no_argument, NULL, OPT_LONG_OPTIONS },
  { "short-options", no_argument, NULL, OPT_SHORT_OPTIONS },
  { "blocksize", required_argument, NULL, OPT_BLOCKSIZE },
  { "key", required_argument, NULL, OPT_KEY },
  { "keys-from-stdin", no_argument, NULL, OPT_KEYS_FROM_STDIN },
  { NULL, 0, NULL, 0 },
};

/* getopt's short options: --short-options lists them from here. */
static const char short_options[] = "r:s:o:j:nvqxVh0d:c:";

/* --long-options, --short-options: one a line, as the virt tools print
 * them for bash completion (bash-completion/netvsc-patch), read off the
 * tables getopt uses, so that completion cannot miss one. */
static void
list_options (int long_ones)
{
  if (long_ones)
    for (const struct option *p = long_options; p->name; p++)
      printf ("--%s\n", p->name);
  else
    for (const char *p = short_options; *p; p++)
      if (*p != ':')
        printf ("-%c\n", *p);
}

/* SECONDS as disk_request.launch_timeout has it: 0 (never) is -1. */
static int
parse_launch_timeout (const char *text, int *out)
{
  char *end;
  long s = strtol (text, &end, 10);

  if (*text < '0' || *text > '9' || *end || s < 0 || s > 86400)
    return -1;
  *out = s == 0 ? -1 : (int) s;
  return 0;
}

static struct request_value *
request_find (struct request *req, const char *name)
{
  for (size_t i = 0; i < req->n; i++)
    if (strcasecmp (req->v[i].name, name) == 0)
      return &req->v[i];
  return NULL;
}

/* Add NAME to the request; returns NULL (with *WHY) if it is there
 * already or the request is full. */
static struct request_value *
request_add (struct request *req, const char *name, const char **why)
{
  if (request_find (req, name)) {
    *why = "given twice";
    return NULL;
  }
  if (req->n == REQUEST_MAX) {
    *why = "too many values";
    return NULL;
  }
  struct request_value *v = &req->v[req->n++];
  memset (v, 0, sizeof *v);
  v->name = name;
  return v;
}

/* NAME=VALUE (modifies ARG: NAME ends at the first '=').  Names and
 * values are registry strings: no control characters. */
static int
split_assignment (char *arg, const char **name, const char **value, const char **why)
{
  char *eq = strchr (arg, '=');

  if (eq == NULL || eq == arg) {
    *why = "expected NAME=VALUE";
    return -1;
  }
  *eq = '\0';
  *name = arg;
  *value = eq + 1;
  for (const unsigned char *p = (const unsigned char *) arg; *p; p++)
    if (*p < 0x20 || *p == 0x7f) {
      *eq = '=';
      *why = "control characters are not allowed in names";
      return -1;
    }
  for (const unsigned char *p = (const unsigned char *) *value; *p; p++)
    if (*p < 0x20 || *p == 0x7f) {
      *eq = '=';
      *why = "control characters are not allowed in values";
      return -1;
    }
  return 0;
}

static int
set_value (struct request *req, char *arg)
{
  const char *name, *value, *why;
  struct request_value *v;

  if (split_assignment (arg, &name, &value, &why) == -1 ||
      (v = request_add (req, name, &why)) == NULL)
    return usage_error ("--set '%s': %s", arg, why);
  v->text = value;
  if (request_is_buffer_size (name)) {
    if (size_parse_kb (value, &v->kb, &why) == -1)
      return usage_error ("--set '%s': %s", arg, why);
    v->is_size = 1;
  }
  return -1;
}

/* Returns -1 to go on, or an exit status. */
static int
parse_options (int argc, char **argv, struct options *o)
{
  uint32_t receive_kb = 0, send_kb = 0;
  int have_receive = 0, have_send = 0, modes = 0, c, r, keys_from_stdin = 0;
  struct np_error kerr;
  const char *why, *env;
  struct { const char *name; enum want_type type; } types[REQUEST_MAX];
  size_t n_types = 0;

  memset (o, 0, sizeof *o);
  o->control_set.mode = CS_SELECTED;
  o->match.kind = MATCH_NETVSC;
  o->lock_timeout = 60;

  while ((c = getopt_long (argc, argv, short_options, long_options, NULL)) != -1) {
    switch (c) {
    case 'r':
      if (size_parse_kb (optarg, &receive_kb, &why) == -1)
        return usage_error ("--receive-buffer '%s': %s", optarg, why);
      have_receive = 1;
      break;
    case 's':
      if (size_parse_kb (optarg, &send_kb, &why) == -1)
        return usage_error ("--send-buffer '%s': %s", optarg, why);
      have_send = 1;
      break;
    case OPT_REMOVE: o->remove = 1; break;
    case OPT_SET:
      if ((r = set_value (&o->request, optarg)) != -1)
        return r;
      break;
    case OPT_TYPE: {
      const char *name, *type;
      if (split_assignment (optarg, &name, &type, &why) == -1)
        return usage_error ("--type '%s': %s", optarg, "expected NAME=dword or NAME=sz");
      if (n_types == REQUEST_MAX)
        return usage_error ("--type '%s': %s", optarg, "too many");
      if (strcasecmp (type, "dword") == 0 || strcasecmp (type, "reg_dword") == 0)
        types[n_types].type = WANT_DWORD;
      else if (strcasecmp (type, "sz") == 0 || strcasecmp (type, "reg_sz") == 0)
        types[n_types].type = WANT_SZ;
      else
        return usage_error ("--type '%s': %s", type, "expected dword or sz");
      types[n_types++].name = name;
      break;
    }
    case OPT_FORCE: o->request.force = 1; break;
    case OPT_DEFER:
      o->defer = 1;
      if (optarg && strcmp (optarg, "once") == 0)
        o->defer_spec.mode = DEFER_ONCE;
      else if (optarg && strcmp (optarg, "setup") == 0)
        o->defer_spec.mode = DEFER_SETUP;
      else if (optarg && strcmp (optarg, "always") != 0)
        return usage_error ("--defer=%s: %s", optarg, "expected always, once or setup");
      break;
    case OPT_HIVE: o->hive = optarg; break;
    case 'o': o->output = optarg; break;
    case OPT_FORMAT:
      o->format = format_canonical (optarg);
      if (o->format == NULL)
        return usage_error ("--format '%s': %s", optarg,
                            "expected raw, vpc (or vhd), vhdx, qcow2, vmdk, vdi or qed");
      break;
    case OPT_ROOT: o->root = optarg; break;
    case OPT_CONTROL_SET:
      if (cs_request_parse (optarg, &o->control_set) == -1)
        return usage_error ("--control-set '%s': %s", optarg,
                            "expected current, default, all or a number from 1 to 999");
      break;
    case OPT_MATCH:
      if (match_parse (optarg, &o->match, &why) == -1)
        return usage_error ("--match '%s': %s", optarg, why);
      break;
    case 'n': o->mode = RUN_DRY; modes++; break;
    case OPT_CHECK: o->mode = RUN_CHECK; modes++; break;
    case OPT_LIST: o->mode = RUN_LIST; modes++; break;
    case OPT_BACKUP: o->backup_dir = optarg; break;
    case OPT_LOCK_TIMEOUT: {
      char *end;
      long t = strtol (optarg, &end, 10);
      if (*optarg == '\0' || *end || t < 0 || t > 86400)
        return usage_error ("--lock-timeout '%s': %s", optarg,
                            "expected seconds, from 0 to 86400");
      o->lock_timeout = (int) t;
      break;
    }
    case OPT_FROM: o->from = optarg; break;
    case '0': o->from_nul = 1; break;
    case 'j': {
      char *end;
      long j = strtol (optarg, &end, 10);
      if (*optarg == '\0' || *end || j < 1 || j > 256)
        return usage_error ("--jobs '%s': %s", optarg, "expected a number from 1 to 256");
      o->jobs = (int) j;
      break;
    }
    case OPT_ISOLATE: o->isolate = 1; break;
    case OPT_DIRECT: o->direct = 1; break;
    case OPT_ALLOW_EXTERNAL: {
      /* by real path: what the image names is compared once resolved */
      char *buf;
      struct stat st;
      if (o->n_allow_external == 16)
        return usage_error ("--allow-external %s: %s", optarg, "at most 16 files");
      buf = o->allow_external_buf[o->n_allow_external];
      if (realpath (optarg, buf) == NULL)
        return usage_error ("--allow-external %s: %s", optarg, strerror (errno));
      if (stat (buf, &st) == -1 || !S_ISREG (st.st_mode))
        return usage_error ("--allow-external %s: %s", optarg, "not a regular file");
      o->allow_external[o->n_allow_external++] = buf;
      break;
    }
    case OPT_NO_REPLAY: o->no_replay = 1; break;
    case OPT_REPLAY_ONLY: o->replay_only = 1; break;
    case OPT_JSON: o->json = 1; break;
    case OPT_LAUNCH_TIMEOUT:
      if (parse_launch_timeout (optarg, &o->launch_timeout) == -1)
        return usage_error ("--launch-timeout '%s': %s", optarg,
                            "expected a number of seconds from 0 (never) to 86400");
      break;
    case OPT_BLOCKSIZE:
      if (strcmp (optarg, "512") != 0 && strcmp (optarg, "4096") != 0)
        return usage_error ("--blocksize '%s': %s", optarg, "expected 512 or 4096");
      o->blocksize = (unsigned) atoi (optarg);
      break;
    case OPT_KEY:
      /* the message names the device and file only: never the key */
      if (keystore_add_selector (&o->keys, optarg, &kerr) == -1) {
        esc_line (stderr, "netvsc-patch: %s", kerr.msg);
        fprintf (stderr, "Try 'netvsc-patch --help' for more information.\n");
        return kerr.code;
      }
      break;
    case OPT_KEYS_FROM_STDIN: keys_from_stdin = 1; break;
    case 'v': o->verbose++; break;
    case 'q': o->quiet = 1; break;
    case 'x': o->trace = 1; break;
    case OPT_LONG_OPTIONS:
    case OPT_SHORT_OPTIONS:
      list_options (c == OPT_LONG_OPTIONS);
      return NP_EXIT_OK;
    case 'V':
      printf ("netvsc-patch %s\n", NETVSC_PATCH_VERSION);
      return NP_EXIT_OK;
    case 'h':
      usage (stdout);
      return NP_EXIT_OK;
    case 'd':
      if (o->n_domains == (int) (sizeof o->domains / sizeof o->domains[0]))
        return usage_error ("-d %s: %s", optarg, "at most 256 domains in one run");
      o->domains[o->n_domains++] = optarg;
      break;
    case 'c': o->connect = optarg; break;
    default:
      fprintf (stderr, "Try 'netvsc-patch --help' for more information.\n");
      return NP_EXIT_USAGE;
    }
  }
  o->images = argv + optind;
  o->n_images = argc - optind;
  if (o->launch_timeout == 0 && (env = getenv (LAUNCH_TIMEOUT_ENV)) != NULL && *env &&
      parse_launch_timeout (env, &o->launch_timeout) == -1)
    return usage_error (LAUNCH_TIMEOUT_ENV "='%s': %s", env,
                        "expected a number of seconds from 0 (never) to 86400");

  if (modes > 1)
    return usage_error ("%s%s", "--dry-run, --check and --list exclude each other", "");
  if (o->remove && (have_receive || have_send || o->request.n))
    return usage_error ("%s%s", "--remove cannot be combined with -r/-s/--set", "");
  if (o->replay_only) {
    if (!o->hive || !o->output)
      return usage_error ("%s%s", "--replay-only needs --hive FILE and -o OUT", "");
    if (have_receive || have_send || o->request.n || o->remove || modes || o->no_replay)
      return usage_error ("%s%s", "--replay-only sets nothing: no -r, -s, --remove, "
                          "--dry-run, --check, --list or --no-replay", "");
  }
  else if (o->mode != RUN_LIST && !o->remove && !have_receive && !have_send &&
           o->request.n == 0)
    return usage_error ("%s%s", "nothing to do: give -r/--receive-buffer, "
                        "-s/--send-buffer or --set NAME=VALUE (or --list, --remove)", "");
  if (o->mode == RUN_LIST && (have_receive || have_send || o->request.n || o->remove))
    return usage_error ("%s%s", "--list shows values, it sets none: no -r, -s, --set or --remove", "");
  if (o->hive && (o->n_images > 0 || o->from))
    return usage_error ("%s%s", "--hive takes no image arguments", "");
  if (!o->hive && o->n_images == 0 && !o->from && o->n_domains == 0)
    return usage_error ("%s%s", "no image given (or use --from LIST, -d DOMAIN or --hive "
                        "FILE)", "");
  if (o->hive && o->n_domains)
    return usage_error ("%s%s", "--hive and -d/--domain exclude each other", "");
  if (o->connect && o->n_domains == 0)
    return usage_error ("%s%s", "-c/--connect goes with -d/--domain", "");
  /* a domain's disks have their formats in its XML */
  if (o->format && o->n_domains && o->n_images == 0 && !o->from)
    return usage_error ("%s%s", "--format is for images: a domain's disk formats are in its "
                        "XML", "");
  if (o->from_nul && !o->from)
    return usage_error ("%s%s", "-0/--null goes with --from LIST", "");
  if (o->output && !o->hive)
    return usage_error ("%s%s", "-o/--output goes with --hive", "");
  /* host file handling (locks, temp files beside it, rename) needs a
   * host file: a remote image is an IMAGE argument (uri.h) */
  if (o->hive && uri_looks_like (o->hive))
    return usage_error ("--hive %s: %s", o->hive, "a hive is a local file, not a URI (a "
                        "remote image is an IMAGE argument; a local file named like a URI: "
                        "./NAME)");
  if (o->output && uri_looks_like (o->output))
    return usage_error ("-o %s: %s", o->output, "the output is a local file, not a URI (a "
                        "local file named like a URI: ./NAME)");
  if (o->output && o->n_images > 1)
    return usage_error ("%s%s", "-o/--output takes one hive", "");
  if (o->defer && (o->hive || o->mode == RUN_LIST || o->remove || o->replay_only))
    return usage_error ("%s%s", "--defer installs a boot-time action in an image: not with "
                        "--hive, --list or --remove (--remove takes it out)", "");
  if (o->hive && (o->format || o->root || o->direct || o->jobs || o->isolate ||
                  o->blocksize || o->keys.n || keys_from_stdin))
    return usage_error ("%s%s", "--format, --root, --jobs, --isolate, --direct, --blocksize, "
                        "--key and --keys-from-stdin are for images, not --hive", "");
  if (o->direct && (o->keys.n || keys_from_stdin))
    return usage_error ("%s%s", "--direct cannot decrypt BitLocker volumes: --key and "
                        "--keys-from-stdin go with the appliance (without --direct)", "");
  if (keys_from_stdin && o->from && strcmp (o->from, "-") == 0)
    return usage_error ("%s%s", "--keys-from-stdin and --from - both read standard input", "");
  /* read now, once: batches and workers only look them up */
  if (keys_from_stdin && keystore_add_stream (&o->keys, 0, &kerr) == -1)
    return usage_error ("%s%s", kerr.msg, "");

  /* -r and -s are --set for the two buffer sizes; they come first. */
  if (o->remove || have_receive || have_send) {
    struct request given = o->request;
    o->request.n = 0;
    for (int i = 0; i < 2; i++) {
      const char *name = i ? VALUE_SEND : VALUE_RECEIVE;
      if (!o->remove && !(i ? have_send : have_receive))
        continue;
      struct request_value *v = request_add (&o->request, name, &why);
      v->remove = o->remove;
      v->is_size = 1;
      v->kb = i ? send_kb : receive_kb;
    }
    for (size_t i = 0; i < given.n; i++) {
      struct request_value *v = request_add (&o->request, given.v[i].name, &why);
      if (v == NULL)
        return usage_error ("--set %s: %s (-r and -s set the buffer sizes)",
                            given.v[i].name, why);
      *v = given.v[i];
    }
  }
  for (size_t i = 0; i < n_types; i++) {
    struct request_value *v = request_find (&o->request, types[i].name);
    uint32_t ignored;
    if (v == NULL)
      return usage_error ("--type %s: %s", types[i].name,
                         "no such value is set (--type goes with -r, -s or --set NAME)");
    v->type = types[i].type;
    if (v->type == WANT_DWORD && !v->is_size &&
        request_text_to_dword (v->text, &ignored) == -1)
      return usage_error ("--set %s: %s", v->name,
                          "a dword must be a number (decimal or 0x hex, 32 bits)");
  }
  /* The boot-time action sets the same values, checked at boot against
   * the driver's Ndi\Params unless --force.  Without an adapter to look
   * at, REG_SZ unless told: what the Advanced page writes. */
  o->defer_spec.match = o->match;
  o->defer_spec.values = o->defer_values;
  for (size_t i = 0; o->defer && i < o->request.n; i++) {
    const struct request_value *v = &o->request.v[i];
    struct defer_value *dv = &o->defer_values[o->defer_spec.n++];
    dv->name = v->name;
    dv->is_dword = v->type == WANT_DWORD || (v->is_size && v->type != WANT_SZ);
    if (v->is_size)
      dv->dword = v->kb;
    else if (dv->is_dword)
      request_text_to_dword (v->text, &dv->dword);
    if (v->is_size && !dv->is_dword) {
      snprintf (o->defer_size_text[i], sizeof o->defer_size_text[i], "%" PRIu32, v->kb);
      dv->text = o->defer_size_text[i];
    }
    else
      dv->text = v->text;
    dv->check = !o->request.force;
  }
  return -1;
}

/* The same image file named twice (directly, by another path, or in
 * --from) would be opened by two workers at once, and qemu's lock would
 * fail one of them halfway: each file is worked on once, the repeat
 * noted on stderr.  Returns the new count. */
static size_t
drop_repeated_images (const struct options *o, struct target *all, size_t n)
{
  struct stat *st = calloc (n ? n : 1, sizeof *st);
  size_t kept = 0;

  if (st == NULL)
    return n;                   /* then qemu's lock says it, as before */
  for (size_t i = 0; i < n; i++) {
    int repeat = 0;
    if (!all[i].domain && !uri_looks_like (all[i].path) &&
        stat (all[i].path, &st[kept]) == 0 && S_ISREG (st[kept].st_mode))
      for (size_t j = 0; j < kept && !repeat; j++)
        repeat = !all[j].domain && st[j].st_dev == st[kept].st_dev &&
                 st[j].st_ino == st[kept].st_ino && st[j].st_ino != 0;
    else
      st[kept].st_ino = 0;      /* not a local file: never a repeat */
    if (repeat) {
      if (!o->quiet)
        esc_line (stderr, "netvsc-patch: %s: named again in this run: worked on once",
                  all[i].path);
      continue;
    }
    all[kept++] = all[i];
  }
  free (st);
  return kept;
}

int
main (int argc, char **argv)
{
  struct options o;
  int r = parse_options (argc, argv, &o), worst = NP_EXIT_OK;

  if (r != -1)
    return r;
  interrupt_install ();

  /* The hive is parsed in a child that a parser's crash cannot take
   * down with the run (contain.c). */
  if (o.hive) {
    char why[128];
    int patched, rc = contain_hive (&o, &patched);
    if (report_flush (stdout, why, sizeof why) == -1) {
      esc_line (stderr, "netvsc-patch: %s: %s: the report was lost%s", o.hive, why,
                patched ? " (the hive was patched)" : "");
      return rc > NP_EXIT_RUNTIME ? rc : NP_EXIT_RUNTIME;
    }
    return rc;
  }
  {
    struct target *targets = NULL;
    char *from_buf = NULL;
    size_t n_from = 0, n = 0;
    struct np_error err;

    if (o.from && targets_read (o.from, o.from_nul, &targets, &n_from, &from_buf, &err) == -1) {
      esc_line (stderr, "netvsc-patch: %s", err.msg);
      free (targets);
      free (from_buf);
      return err.code;
    }
    struct target *all = calloc ((size_t) o.n_images + (size_t) o.n_domains + n_from + 1,
                                 sizeof *all);
    if (all == NULL) {
      fprintf (stderr, "netvsc-patch: out of memory\n");
      return NP_EXIT_RUNTIME;
    }
    for (int i = 0; i < o.n_images; i++)
      all[n++] = (struct target) { o.images[i], NULL, 0 };
    for (size_t i = 0; i < n_from; i++)
      all[n++] = targets[i];
    for (int i = 0; i < o.n_domains; i++)
      all[n++] = (struct target) { o.domains[i], NULL, 1 };
    /* URIs are checked before anything is opened: a usage error stops
     * the run, as a bad option does. */
    for (size_t i = 0; i < n && worst == NP_EXIT_OK; i++) {
      const char *warning;
      if (all[i].domain || !uri_looks_like (all[i].path))
        continue;
      if (uri_allowed (&o, all[i].path, all[i].format ? all[i].format : o.format, &err) == -1) {
        esc_line (stderr, "netvsc-patch: %s", err.msg);
        fprintf (stderr, "Try 'netvsc-patch --help' for more information.\n");
        worst = err.code;
      }
      else if ((warning = uri_write_warning (&o, all[i].path)) != NULL && !o.quiet)
        esc_line (stderr, "netvsc-patch: %s: warning: %s", all[i].path, warning);
    }
    if (worst == NP_EXIT_OK)
      n = drop_repeated_images (&o, all, n);
    if (worst != NP_EXIT_OK)
      ;
    else if (n == 0) {
      esc_line (stderr, "netvsc-patch: --from %s lists no images", o.from);
      worst = NP_EXIT_USAGE;
    }
    else
      worst = batch_run (&o, all, n);
    free (all);
    free (targets);
    free (from_buf);
  }
  return worst;
}
