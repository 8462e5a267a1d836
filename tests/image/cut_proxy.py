#!/usr/bin/env python3
"""A TCP forwarder on 127.0.0.1 that cuts every connection once LIMIT bytes went upstream in
total, and then accepts no more: an upload interrupted mid-blob, for the resumable-push test.

    cut_proxy.py PORT_FILE UPSTREAM_PORT LIMIT_BYTES
Exits by itself after 300 s.
"""
import socket
import sys
import threading
import time

port_file, upstream_port, limit = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
sent = 0
lock = threading.Lock()
cut = threading.Event()
conns = []

srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(16)
with open(port_file + ".tmp", "w") as f:
    f.write(str(srv.getsockname()[1]))
import os
os.rename(port_file + ".tmp", port_file)


def pump(a, b, upstream):
    global sent
    try:
        while not cut.is_set():
            data = a.recv(65536)
            if not data:
                break
            if upstream:
                with lock:
                    sent += len(data)
                    over = sent > limit
                if over:
                    cut.set()
                    break
            b.sendall(data)
    except OSError:
        pass
    finally:
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()


def serve():
    while not cut.is_set():
        try:
            c, _ = srv.accept()
        except OSError:
            return
        if cut.is_set():
            c.close()
            return
        u = socket.create_connection(("127.0.0.1", upstream_port))
        conns.extend([c, u])
        threading.Thread(target=pump, args=(c, u, True), daemon=True).start()
        threading.Thread(target=pump, args=(u, c, False), daemon=True).start()


threading.Thread(target=serve, daemon=True).start()
deadline = time.time() + 300
while time.time() < deadline and not cut.is_set():
    time.sleep(0.05)
srv.close()
for s in conns:
    try:
        s.shutdown(socket.SHUT_RDWR)
        s.close()
    except OSError:
        pass
time.sleep(0.5)
