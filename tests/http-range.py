#!/usr/bin/env python3
"""http-range.py DIR [CERT KEY]: serve DIR over HTTP (HTTPS with CERT and
KEY) on 127.0.0.1 with byte ranges (qemu's curl driver needs them;
Python's own server has none).  Prints the port it listens on, then
serves until killed.  Test use only."""
import http.server
import os
import re
import ssl
import sys


class Handler(http.server.SimpleHTTPRequestHandler):
    def send_head(self):
        path = self.translate_path(self.path)
        if not os.path.isfile(path):
            self.send_error(404)
            return None
        size = os.path.getsize(path)
        f = open(path, "rb")
        m = re.match(r"bytes=(\d+)-(\d*)$", self.headers.get("Range", ""))
        if m:
            first = int(m.group(1))
            last = min(int(m.group(2)) if m.group(2) else size - 1, size - 1)
            f.seek(first)
            self.send_response(206)
            self.send_header("Content-Range", "bytes %d-%d/%d" % (first, last, size))
            self.left = last - first + 1
        else:
            self.send_response(200)
            self.left = size
        self.send_header("Content-Length", str(self.left))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        return f

    def copyfile(self, src, dst):
        while self.left > 0:
            buf = src.read(min(65536, self.left))
            if not buf:
                break
            dst.write(buf)
            self.left -= len(buf)

    def log_message(self, *args):
        pass


CERT, KEY = (os.path.abspath(a) for a in (sys.argv[2:4] if len(sys.argv) > 3 else ("", "")))
os.chdir(sys.argv[1])
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
if len(sys.argv) > 3:
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(CERT, KEY)
    server.socket = tls.wrap_socket(server.socket, server_side=True)
print(server.server_address[1], flush=True)
server.serve_forever()
