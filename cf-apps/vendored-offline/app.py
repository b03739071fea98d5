"""Runs on a foundation with no internet: every conda package comes from vendor/."""
import os
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

import numpy as np


def report():
    return "offline app: numpy %s, total %s" % (np.__version__, np.array([1, 2, 3]).sum())


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = report().encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


if __name__ == "__main__":
    print(report(), flush=True)
    if "--once" not in sys.argv:
        HTTPServer(("0.0.0.0", int(os.environ.get("PORT", "8080"))), Handler).serve_forever()
