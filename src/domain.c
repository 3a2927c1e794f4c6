/* netvsc-patch: a libvirt domain's state and disks (see domain.h). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xpath.h>

#include "domain.h"
#include "format.h"

/* PROP of the first child element of NODE called CHILD (malloc'd), or
 * NULL. */
static char *
child_prop (xmlNodePtr node, const char *child, const char *prop)
{
  for (xmlNodePtr c = node->children; c; c = c->next)
    if (c->type == XML_ELEMENT_NODE && xmlStrcmp (c->name, BAD_CAST child) == 0)
      return (char *) xmlGetProp (c, BAD_CAST prop);
  return NULL;
}

static int
has_child (xmlNodePtr node, const char *child)
{
  for (xmlNodePtr c = node->children; c; c = c->next)
    if (c->type == XML_ELEMENT_NODE && xmlStrcmp (c->name, BAD_CAST child) == 0)
      return 1;
  return 0;
}

/* One <disk>: 1 added, 0 skipped (a CD-ROM or floppy drive with no
 * medium, as libguestfs skips it), -1 with *err. */
static int
add_disk (const char *name, xmlNodePtr node, struct domain *out, struct np_error *err)
{
  char *type = (char *) xmlGetProp (node, BAD_CAST "type");
  char *device = (char *) xmlGetProp (node, BAD_CAST "device");
  char *target = child_prop (node, "target", "dev");
  char *source = NULL, *format = NULL;
  struct domain_disk *dk = &out->disks[out->n];
  int r = -1;

  memset (dk, 0, sizeof *dk);
  snprintf (dk->target, sizeof dk->target, "%s", target ? target : "?");
  if (type == NULL || strcmp (type, "file") == 0)
    source = child_prop (node, "source", "file");
  else if (strcmp (type, "block") == 0)
    source = child_prop (node, "source", "dev");
  else {
    /* network (rbd, iscsi, nbd...), volume, nvme...: nothing local
     * whose bytes can be checked before qemu opens them */
    np_error_set (err, NP_EXIT_RUNTIME, "domain %s: disk %s is a '%s' disk: only local "
                  "files and block devices can be opened", name, dk->target, type);
    goto out;
  }
  if (source == NULL || *source == '\0') {
    if (device && (strcmp (device, "cdrom") == 0 || strcmp (device, "floppy") == 0)) {
      r = 0;
      goto out;
    }
    np_error_set (err, NP_EXIT_RUNTIME, "domain %s: disk %s names no source file", name,
                  dk->target);
    goto out;
  }
  format = child_prop (node, "driver", "type");
  if (format && *format && (dk->format = format_canonical (format)) == NULL) {
    np_error_set (err, NP_EXIT_RUNTIME, "domain %s: disk %s (%s): format '%s' is not one "
                  "netvsc-patch opens (raw, vpc, vhdx, qcow2, vmdk)", name, dk->target,
                  source, format);
    goto out;
  }
  dk->readonly = has_child (node, "readonly") || (device && strcmp (device, "cdrom") == 0);
  dk->path = source;
  source = NULL;
  out->n++;
  r = 1;
 out:
  xmlFree (type);
  xmlFree (device);
  xmlFree (target);
  xmlFree (source);
  xmlFree (format);
  return r;
}

int
domain_parse_xml (const char *name, const char *xml, size_t len, struct domain *out,
                  struct np_error *err)
{
  xmlDocPtr doc;
  xmlXPathContextPtr ctx = NULL;
  xmlXPathObjectPtr disks = NULL;
  int r = -1;

  out->n = 0;
  out->disks = NULL;
  if (len > (size_t) 1 << 30)
    return np_error_set (err, NP_EXIT_RUNTIME, "domain %s: its XML is too large", name);
  /* no network, no entity expansion: libvirt's XML needs neither */
  doc = xmlReadMemory (xml, (int) len, NULL, NULL, XML_PARSE_NONET | XML_PARSE_NOERROR |
                       XML_PARSE_NOWARNING);
  if (doc == NULL)
    return np_error_set (err, NP_EXIT_RUNTIME, "domain %s: libvirt's XML for it cannot be "
                         "parsed", name);
  if ((ctx = xmlXPathNewContext (doc)) == NULL ||
      (disks = xmlXPathEvalExpression (BAD_CAST "/domain/devices/disk", ctx)) == NULL) {
    np_error_set (err, NP_EXIT_RUNTIME, "out of memory");
    goto out;
  }
  if (disks->nodesetval && disks->nodesetval->nodeNr > 0) {
    size_t n = (size_t) disks->nodesetval->nodeNr;
    if ((out->disks = calloc (n, sizeof *out->disks)) == NULL) {
      np_error_set (err, NP_EXIT_RUNTIME, "out of memory");
      goto out;
    }
    for (size_t i = 0; i < n; i++)
      if (add_disk (name, disks->nodesetval->nodeTab[i], out, err) == -1)
        goto out;
  }
  if (out->n == 0) {
    np_error_set (err, NP_EXIT_RUNTIME, "domain %s: the domain has no disks", name);
    goto out;
  }
  r = 0;
 out:
  if (r == -1) {
    for (size_t i = 0; i < out->n; i++)
      free (out->disks[i].path);
    free (out->disks);
    out->disks = NULL;
    out->n = 0;
  }
  xmlXPathFreeObject (disks);
  xmlXPathFreeContext (ctx);
  xmlFreeDoc (doc);
  return r;
}

/* libvirt prints every error on stderr unless told otherwise; errors
 * are reported here, as one line.  The handler is process-wide in
 * libvirt: set once (pthread_once), as batch.c's workers may look up
 * domains at the same time. */
static void
no_print (void *data, virErrorPtr e)
{
  (void) data; (void) e;
}

/* libxml2's own messages (libvirt's test driver parses a file with it):
 * its handler is per thread, so set before each lookup. */
static void
no_print_xml (void *data, const char *fmt, ...)
{
  (void) data; (void) fmt;
}

static void
quiet_libvirt (void)
{
  virSetErrorFunc (NULL, no_print);
}

static const char *
state_name (int state)
{
  switch (state) {
  case VIR_DOMAIN_RUNNING: return "running";
  case VIR_DOMAIN_BLOCKED: return "blocked";
  case VIR_DOMAIN_PAUSED: return "paused";
  case VIR_DOMAIN_SHUTDOWN: return "shutting down";
  case VIR_DOMAIN_SHUTOFF: return "shut off";
  case VIR_DOMAIN_CRASHED: return "crashed";
  case VIR_DOMAIN_PMSUSPENDED: return "suspended";
  default: return "in an unknown state";
  }
}

static int
libvirt_error (struct np_error *err, const char *fmt, const char *a, const char *b)
{
  char why[512];
  const char *e = virGetLastErrorMessage ();

  snprintf (why, sizeof why, "%s", e ? e : "unknown libvirt error");
  np_one_line (why);
  np_error_set (err, NP_EXIT_RUNTIME, fmt, a, b, why);
  return -1;
}

int
domain_lookup (const char *uri, const char *name, struct domain *out, struct np_error *err)
{
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  virConnectPtr conn;
  virDomainPtr dom = NULL;
  char *xml = NULL;
  int state = VIR_DOMAIN_NOSTATE, reason, active, r = -1;

  memset (out, 0, sizeof *out);
  pthread_once (&once, quiet_libvirt);
  xmlSetGenericErrorFunc (NULL, no_print_xml);
  /* read-only: the state and the XML are all that is needed */
  conn = virConnectOpenReadOnly (uri);
  if (conn == NULL)
    return libvirt_error (err, "domain %s: cannot connect to libvirt at %s: %s", name,
                          uri ? uri : "its default URI");
  dom = virDomainLookupByName (conn, name);
  if (dom == NULL && strlen (name) == 36)
    dom = virDomainLookupByUUIDString (conn, name);
  if (dom == NULL) {
    char *where = virConnectGetURI (conn);
    np_error_set (err, NP_EXIT_RUNTIME, "domain %s: no such domain at %s", name,
                  where ? where : uri ? uri : "libvirt's default URI");
    free (where);
    goto out;
  }
  if ((active = virDomainIsActive (dom)) == -1 ||
      virDomainGetState (dom, &state, &reason, 0) == -1) {
    libvirt_error (err, "domain %s: cannot read its state%s: %s", name, "");
    goto out;
  }
  out->active = active;
  out->state = state_name (state);
  if ((out->name = strdup (virDomainGetName (dom) ? virDomainGetName (dom) : name)) == NULL) {
    np_error_set (err, NP_EXIT_RUNTIME, "out of memory");
    goto out;
  }
  /* the live XML of a running domain: the disks it has now */
  if ((xml = virDomainGetXMLDesc (dom, 0)) == NULL) {
    libvirt_error (err, "domain %s: cannot read its XML%s: %s", name, "");
    goto out;
  }
  r = domain_parse_xml (out->name, xml, strlen (xml), out, err);
 out:
  free (xml);
  if (dom)
    virDomainFree (dom);
  virConnectClose (conn);
  if (r == -1)
    domain_free (out);
  return r;
}
