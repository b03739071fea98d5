"""A Python 2.7 web app (it runs on Python 3 too) serving numpy statistics."""
from __future__ import print_function

import os
import sys

import numpy
import six

try:
    from BaseHTTPServer import BaseHTTPRequestHandler, HTTPServer
except ImportError:
    from http.server import BaseHTTPRequestHandler, HTTPServer


def report():
    return "legacy app: numpy %s, six %s, mean %s" % (
        numpy.__version__, six.__version__, numpy.array([2, 4, 6]).mean())


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = report().encode("utf-8")
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


if __name__ == "__main__":
    print(report())
    sys.stdout.flush()
    if "--once" not in sys.argv:
        HTTPServer(("0.0.0.0", int(os.environ.get("PORT", "8080"))), Handler).serve_forever()
