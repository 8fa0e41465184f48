#!/usr/bin/env python3
"""A stand-in for systemd's notification socket, for tests.

    notify_listen.py DIR NAME...

Binds the datagram socket DIR/NAME.notify for every NAME (what a daemon
started with NOTIFY_SOCKET=DIR/NAME.notify sends sd_notify messages to) and
appends each message to DIR/NAME.notify.log, one a line, its newlines shown
as ' '. Exits on SIGTERM, or after 300 s at most.
"""
import os
import select
import signal
import socket
import sys
import time

def main() -> int:
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    directory, names = sys.argv[1], sys.argv[2:]
    socks = {}
    for name in names:
        path = os.path.join(directory, name + ".notify")
        if os.path.exists(path):
            os.unlink(path)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.bind(path)
        socks[s.fileno()] = (s, open(os.path.join(directory, name + ".notify.log"), "a", buffering=1))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        ready, _, _ = select.select(list(socks), [], [], 1.0)
        for fd in ready:
            s, log = socks[fd]
            msg = s.recv(4096)
            log.write(msg.decode("utf-8", "replace").replace("\n", " ") + "\n")
    return 0

if __name__ == "__main__":
    sys.exit(main())
