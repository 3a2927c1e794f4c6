/* Unit tests: image URIs (uri.c): what is a URI, how each part is read
 * (as libguestfs and libnbd read them), and what is refused. */
#include <string.h>

#include "unit.h"
#include "uri.h"

static const struct {
  const char *in;
  int looks;
} looks[] = {
  { "nbd://h/e", 1 }, { "nbd+unix:///?socket=/s", 1 }, { "NBD://h", 1 }, { "ftp://x", 1 },
  { "x-y.z+w://a", 1 }, { "./nbd://h", 0 }, { "/srv/nbd://h", 0 }, { "nbd:/h", 0 },
  { "nbd:unix:/s", 0 }, { "1nbd://h", 0 }, { "://h", 0 }, { "win.qcow2", 0 },
  { "dir/a://b", 0 }, { "", 0 },
};

START_TEST (test_looks_like)
{
  ck_assert_msg (uri_looks_like (looks[_i].in) == looks[_i].looks, "'%s'", looks[_i].in);
}
END_TEST

static const struct {
  const char *in;
  enum uri_scheme scheme;
  const char *protocol, *host, *socket, *user, *path, *server;
  int port, read_only;
} good[] = {
  { "nbd://example.com", URI_NBD, "nbd", "example.com", "", "", "", "tcp:example.com:10809",
    0, 0 },
  { "nbd://example.com:10810/", URI_NBD, "nbd", "example.com", "", "", "",
    "tcp:example.com:10810", 10810, 0 },
  { "nbd://10.0.0.1/win%20disk", URI_NBD, "nbd", "10.0.0.1", "", "", "win disk",
    "tcp:10.0.0.1:10809", 0, 0 },
  { "nbd://[::1]:99/e/x", URI_NBD, "nbd", "::1", "", "", "e/x", "tcp:[::1]:99", 99, 0 },
  { "nbd+unix:///?socket=/run/nbd.sock", URI_NBD_UNIX, "nbd", "", "/run/nbd.sock", "", "",
    "unix:/run/nbd.sock", 0, 0 },
  { "nbd+unix:///exp?socket=/tmp/a%3Fb", URI_NBD_UNIX, "nbd", "", "/tmp/a?b", "", "exp",
    "unix:/tmp/a?b", 0, 0 },
  { "NBD+UNIX:///?socket=s", URI_NBD_UNIX, "nbd", "", "s", "", "", "unix:s", 0, 0 },
  { "ssh://host/var/lib/win.img", URI_SSH, "ssh", "host", "", "", "/var/lib/win.img",
    "host", 0, 0 },
  { "ssh://root@host:2222/win.img", URI_SSH, "ssh", "host", "", "root", "/win.img",
    "host:2222", 2222, 0 },
  { "http://www.example.org/disk.img", URI_HTTP, "http", "www.example.org", "", "",
    "/disk.img", "www.example.org", 0, 1 },
  { "https://[2001:db8::1]:8443/d.img", URI_HTTPS, "https", "2001:db8::1", "", "", "/d.img",
    "[2001:db8::1]:8443", 8443, 1 },
};

START_TEST (test_good_uris)
{
  struct image_uri u;
  struct np_error err = { 0, "" };

  ck_assert_msg (uri_parse (good[_i].in, &u, &err) == 0, "'%s': %s", good[_i].in, err.msg);
  ck_assert_int_eq (u.scheme, good[_i].scheme);
  ck_assert_str_eq (u.protocol, good[_i].protocol);
  ck_assert_str_eq (u.host, good[_i].host);
  ck_assert_str_eq (u.socket, good[_i].socket);
  ck_assert_str_eq (u.username, good[_i].user);
  ck_assert_str_eq (u.path, good[_i].path);
  ck_assert_str_eq (u.server, good[_i].server);
  ck_assert_int_eq (u.port, good[_i].port);
  ck_assert_int_eq (u.read_only, good[_i].read_only);
}
END_TEST

static const struct {
  const char *in, *why;
} bad[] = {
  { "ftp://h/x", "unknown URI scheme 'ftp'" },
  { "nbds://h/x", "unknown URI scheme 'nbds'" },
  { "nbd://", "no host" },
  { "nbd://h:0/", "bad port" },
  { "nbd://h:65536/", "bad port" },
  { "nbd://h:/", "empty port" },
  { "nbd://h:1x/", "bad port" },
  { "nbd://u@h/", "a user name goes with ssh:// only" },
  { "ssh://u:pw@h/x", "a password in the URI is not accepted" },
  { "ssh://h", "no path to the image on the server" },
  { "ssh://h/", "no path to the image on the server" },
  { "http://h/x?sig=1", "query parameters are not passed on" },
  { "http://h/x#frag", "a fragment" },
  { "nbd://h/a b", "spaces and control characters" },
  { "nbd://h/a\tb", "spaces and control characters" },
  { "nbd://h/a%00b", "bad export name" },
  { "nbd://h/a%4", "bad export name" },
  { "nbd://h/a%zz", "bad export name" },
  { "nbd://h_/?x", "query parameters" },
  { "nbd://ho$t/", "bad host name" },
  { "nbd://[::1/", "bad IPv6 address" },
  { "nbd://[::1]x/", "bad IPv6 address" },
  { "nbd://[::1,x]/", "bad IPv6 address" },
  { "nbd+unix:///", "needs ?socket=PATH" },
  { "nbd+unix://h/?socket=/s", "takes no host" },
  { "nbd+unix:///?socket=", "bad socket path" },
  { "nbd+unix:///?socket=/s&tls=on", "the only query parameter is socket=PATH" },
  { "nbd+unix:///?tls=on", "the only query parameter is socket=PATH" },
};

START_TEST (test_bad_uris)
{
  struct image_uri u;
  struct np_error err = { 0, "" };

  ck_assert_msg (uri_parse (bad[_i].in, &u, &err) == -1, "'%s' accepted", bad[_i].in);
  ck_assert_int_eq (err.code, NP_EXIT_USAGE);
  ck_assert_msg (strstr (err.msg, bad[_i].why) != NULL, "'%s': %s", bad[_i].in, err.msg);
  /* the message names the URI and says how to reach a local file */
  ck_assert_msg (strncmp (err.msg, bad[_i].in, strlen (bad[_i].in)) == 0 ||
                 strchr (bad[_i].in, '\t'), "%s", err.msg);
  ck_assert_msg (strstr (err.msg, "(a local file named like this: ./") != NULL, "%s", err.msg);
}
END_TEST

START_TEST (test_allowed)
{
  struct options o;
  struct np_error err = { 0, "" };

  memset (&o, 0, sizeof o);
  o.mode = RUN_PATCH;
  ck_assert_int_eq (uri_allowed (&o, "nbd://h/e", NULL, &err), 0);
  /* ssh: written, with a warning (qemu locks nothing on the server) */
  ck_assert_int_eq (uri_allowed (&o, "ssh://h/x.img", "raw", &err), 0);
  ck_assert_ptr_nonnull (strstr (uri_write_warning (&o, "ssh://h/x.img"), "no lock"));
  ck_assert_ptr_null (uri_write_warning (&o, "nbd://h/e"));
  ck_assert_ptr_null (uri_write_warning (&o, "nbd+unix:///e?socket=/s"));
  ck_assert_ptr_null (uri_write_warning (&o, "/images/x.img"));
  ck_assert_int_eq (uri_allowed (&o, "http://h/x.img", NULL, &err), -1);
  ck_assert_int_eq (err.code, NP_EXIT_USAGE);
  ck_assert_ptr_nonnull (strstr (err.msg, "http:// images are read-only"));
  /* a non-raw format over NBD: read-only, the export cannot grow */
  ck_assert_int_eq (uri_allowed (&o, "nbd://h/e", "qcow2", &err), -1);
  ck_assert_ptr_nonnull (strstr (err.msg, "--format qcow2 over nbd:// is read-only here"));
  o.mode = RUN_LIST;
  ck_assert_int_eq (uri_allowed (&o, "http://h/x.img", NULL, &err), 0);
  ck_assert_int_eq (uri_allowed (&o, "ssh://u@h:2222/x.img", NULL, &err), 0);
  ck_assert_ptr_null (uri_write_warning (&o, "ssh://u@h:2222/x.img"));
  ck_assert_int_eq (uri_allowed (&o, "nbd://h/e", "qcow2", &err), 0);
  ck_assert_int_eq (uri_allowed (&o, "https://h/x.img", "qcow2", &err), -1);
  ck_assert_ptr_nonnull (strstr (err.msg, "--format qcow2 over https:// is refused"));
  o.direct = 1;
  ck_assert_int_eq (uri_allowed (&o, "nbd+unix:///?socket=/s", NULL, &err), 0);
  ck_assert_int_eq (uri_allowed (&o, "ssh://h/x.img", NULL, &err), -1);
  ck_assert_ptr_nonnull (strstr (err.msg, "--direct takes nbd:// and nbd+unix:// URIs only"));
}
END_TEST

Suite *
uri_suite (void)
{
  Suite *s = suite_create ("uri");
  TCase *tc = tcase_create ("parse");

  tcase_add_loop_test (tc, test_looks_like, 0, sizeof looks / sizeof looks[0]);
  tcase_add_loop_test (tc, test_good_uris, 0, sizeof good / sizeof good[0]);
  tcase_add_loop_test (tc, test_bad_uris, 0, sizeof bad / sizeof bad[0]);
  tcase_add_test (tc, test_allowed);
  suite_add_tcase (s, tc);
  return s;
}
