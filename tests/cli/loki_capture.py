#!/usr/bin/env python3
"""A stand-in for Loki's push endpoint, for tests (loopback only).

Usage: loki_capture.py PORT_FILE OUT_FILE [STATUS,STATUS,...]

Listens on 127.0.0.1 on a free port (written to PORT_FILE), takes POST
/loki/api/v1/push, un-gzips the body when Content-Encoding says gzip, and
appends one line per request to OUT_FILE: {"status": S, "encoding": E,
"content_type": T, "body": <the JSON body>}. Answers each request with the
next status of the list (then 204).
"""
import gzip
import http.server
import json
import sys

port_file, out_file = sys.argv[1], sys.argv[2]
statuses = [int(s) for s in sys.argv[3].split(",")] if len(sys.argv) > 3 and sys.argv[3] else []


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        data = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        encoding = self.headers.get("Content-Encoding", "")
        if encoding == "gzip":
            data = gzip.decompress(data)
        status = statuses.pop(0) if statuses else 204
        if self.path != "/loki/api/v1/push":
            status = 404
        with open(out_file, "a") as f:
            f.write(json.dumps({"status": status, "path": self.path, "encoding": encoding,
                                "content_type": self.headers.get("Content-Type", ""),
                                "body": json.loads(data or b"null")}) + "\n")
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(port_file + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
import os
os.rename(port_file + ".tmp", port_file)
server.serve_forever()
