"""Runs on a foundation with no internet: every conda package comes from vendor/, and every
pip package from vendor/pip."""
import os
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

import humanize
import numpy as np


def report():
    total = np.array([1, 2, 3]).sum()
    return "offline app: numpy %s, total %s, %s" % (
        np.__version__,
        total,
        humanize.naturalsize(int(total) * 1_000_000),
    )


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
