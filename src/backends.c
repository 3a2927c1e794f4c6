/* netvsc-patch: loading the image backends (backends.h). */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "backends.h"

/* Defined only where the image objects are linked into the program
 * (unit tests, sanitizer and fuzz builds): then no module is loaded.
 * The program itself has them undefined (null) and loads the module. */
#pragma weak netvsc_patch_image_module
extern const struct image_module netvsc_patch_image_module;

/* Process-wide because loading is once per process and the handle is
 * never closed: set under pthread_once (batch.c's worker threads may
 * ask), read-only after. */
static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static const struct image_module *module;
static struct np_error load_err;

/* PATH (PATH_MAX) is the module's name in DIR, where DIR is the
 * directory of the running executable plus SUB. */
static int
module_path (const char *exe_dir, const char *sub, char *path)
{
  int n = snprintf (path, PATH_MAX, "%s%s/%s", exe_dir, sub, IMAGE_MODULE_NAME);
  return n < 0 || n >= PATH_MAX ? -1 : 0;
}

static void
load (void)
{
  char exe[PATH_MAX], beside[PATH_MAX], installed[PATH_MAX];
  const char *tried[2] = { installed, beside };
  ssize_t n;
  void *h = NULL;
  char *slash;

  if (&netvsc_patch_image_module != NULL) {
    module = &netvsc_patch_image_module;
    return;
  }
  n = readlink ("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) {
    np_error_set (&load_err, NP_EXIT_RUNTIME, "cannot load the image backends: "
                  "/proc/self/exe: %s", n == 0 ? "empty" : strerror (errno));
    return;
  }
  exe[n] = '\0';
  slash = strrchr (exe, '/');
  if (slash)
    *slash = '\0';
  /* make install puts it in $(PREFIX)/lib/netvsc-patch, the build tree
   * beside the program */
  if (module_path (exe, "/../lib/netvsc-patch", installed) == -1 ||
      module_path (exe, "", beside) == -1) {
    np_error_set (&load_err, NP_EXIT_RUNTIME, "cannot load the image backends: "
                  "%s: path too long", exe);
    return;
  }
  for (int i = 0; i < 2 && h == NULL; i++) {
    if (access (tried[i], F_OK) == -1)
      continue;
    /* RTLD_NOW: a symbol missing from the program is an error here,
     * not a crash in the middle of writing an image */
    h = dlopen (tried[i], RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
      const char *why = dlerror ();
      np_error_set (&load_err, NP_EXIT_RUNTIME, "cannot load the image backends: %s",
                    why ? why : tried[i]);
      np_one_line (load_err.msg);
      return;
    }
  }
  if (h == NULL) {
    np_error_set (&load_err, NP_EXIT_RUNTIME, "cannot load the image backends: %s is "
                  "neither in %s/../lib/netvsc-patch nor in %s (is netvsc-patch installed "
                  "whole? --hive does not need it)", IMAGE_MODULE_NAME, exe, exe);
    return;
  }
  const struct image_module *m = dlsym (h, IMAGE_MODULE_SYMBOL);
  const char *path = tried[access (installed, F_OK) == 0 ? 0 : 1];
  if (m == NULL || strcmp (m->version, NETVSC_PATCH_VERSION) != 0 ||
      m->backend_size != sizeof (struct disk_backend) || !m->appliance || !m->direct ||
      !m->uri_check_header || !m->domain_lookup || !m->direct_file_serves) {
    np_error_set (&load_err, NP_EXIT_RUNTIME, "cannot load the image backends: %s is "
                  "not from this build of netvsc-patch %s%s%s", path, NETVSC_PATCH_VERSION,
                  m ? " (it is " : "", m ? m->version : "");
    if (m)
      np_error_append (&load_err, ")");
    dlclose (h);
    return;
  }
  module = m;
}

int
backends_load (struct np_error *err)
{
  pthread_once (&load_once, load);
  if (module)
    return 0;
  *err = load_err;
  return -1;
}

const struct disk_backend *
backends_get (int direct)
{
  if (module == NULL)
    return NULL;
  return direct ? module->direct : module->appliance;
}

int
backends_uri_check_header (const char *target, const char *format, struct np_error *err)
{
  if (backends_load (err) == -1)
    return -1;
  return module->uri_check_header (target, format, err);
}

int
backends_domain_lookup (const char *uri, const char *name, struct domain *out,
                        struct np_error *err)
{
  if (backends_load (err) == -1)
    return -1;
  return module->domain_lookup (uri, name, out, err);
}

int
backends_direct_file_serves (const char *path, const char *format, const char *qemu_spec)
{
  struct np_error err;

  if (backends_load (&err) == -1)
    return 0;
  return module->direct_file_serves (path, format, qemu_spec);
}
