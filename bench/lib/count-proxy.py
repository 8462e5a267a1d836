#!/usr/bin/env python3
"""A tiny counting HTTP forward proxy for the benchmark (plain http:// only).

Both tools are run with HTTP_PROXY=http://127.0.0.1:PORT, so every byte either of them
fetches from the archive passes through here and is counted the same way. One line per
request is appended to LOGFILE:

    <status> <body-bytes> <method> <url>

The benchmark notes the log's line count before a command and sums the lines added by it.
Keep-alive is supported on both sides (one upstream connection per client connection and
host), so the proxy does not change how many TCP/HTTP connections a tool opens upstream.
Each host name is resolved once for the whole run (both tools share the answer): the
resolver on the benchmark machine stalls 5 s on some of many simultaneous lookups, which
would otherwise land on whichever tool opens more connections.

Usage: count-proxy.py PORTFILE LOGFILE    (binds 127.0.0.1 on a free port, writes it to PORTFILE)
"""
import http.client
import http.server
import os
import socket
import sys
import threading
import urllib.parse

HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-connection", "proxy-authorization",
    "proxy-authenticate", "te", "trailer", "trailers", "transfer-encoding", "upgrade",
}
CHUNK = 256 * 1024
LOG_LOCK = threading.Lock()
LOG = None
RESOLVED = {}  # (host, port) -> address, resolved once
RESOLVE_LOCK = threading.Lock()


def resolve(host, port):
    with RESOLVE_LOCK:
        if (host, port) not in RESOLVED:
            family, _, _, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
            RESOLVED[(host, port)] = addr[0]
        return RESOLVED[(host, port)]


def log(line):
    with LOG_LOCK:
        LOG.write(line + "\n")
        LOG.flush()


class Proxy(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        self.upstreams = {}  # (host, port) -> HTTPConnection, reused across keep-alive requests

    def finish(self):
        for conn in self.upstreams.values():
            conn.close()
        super().finish()

    def log_message(self, fmt, *args):  # quiet: the count log is the only output
        pass

    def _upstream(self, host, port, fresh=False):
        key = (host, port)
        if fresh and key in self.upstreams:
            self.upstreams.pop(key).close()
        if key not in self.upstreams:
            # Connect to the address resolved once; the Host header still names the host.
            self.upstreams[key] = http.client.HTTPConnection(resolve(host, port), port, timeout=120)
        return self.upstreams[key]

    def _forward(self):
        url = urllib.parse.urlsplit(self.path)
        if url.scheme != "http" or not url.hostname:
            self.send_error(400, "count-proxy: only absolute http:// URLs")
            return
        port = url.port or 80
        target = url.path or "/"
        if url.query:
            target += "?" + url.query
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP | {"host"}}
        headers["Host"] = url.netloc
        body = None
        if "Content-Length" in self.headers:
            body = self.rfile.read(int(self.headers["Content-Length"]))
        # A reused upstream connection may have been closed by the server: retry once, fresh.
        for attempt in (0, 1):
            conn = self._upstream(url.hostname, port, fresh=attempt == 1)
            try:
                conn.request(self.command, target, body=body, headers=headers)
                resp = conn.getresponse()
                break
            except (http.client.HTTPException, OSError):
                if attempt == 1:
                    self.upstreams.pop((url.hostname, port), None)
                    self.send_error(502, "count-proxy: upstream failed")
                    log(f"502 0 {self.command} {self.path}")
                    return
        self.send_response(resp.status, resp.reason)
        for k, v in resp.getheaders():
            if k.lower() not in HOP_BY_HOP and k.lower() != "content-length":
                self.send_header(k, v)
        sent = 0
        length = resp.getheader("Content-Length")
        if self.command == "HEAD" or resp.status in (204, 304):
            if length is not None:
                self.send_header("Content-Length", length)
            self.end_headers()
            resp.read()
        elif length is not None:
            self.send_header("Content-Length", length)
            self.end_headers()
            while True:
                chunk = resp.read(CHUNK)
                if not chunk:
                    break
                self.wfile.write(chunk)
                sent += len(chunk)
        else:  # chunked or close-delimited upstream: buffer, then send with a length
            data = resp.read()
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            sent = len(data)
        if resp.will_close:
            self.upstreams.pop((url.hostname, port)).close()
        log(f"{resp.status} {sent} {self.command} {self.path}")

    do_GET = _forward
    do_HEAD = _forward


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64


def main():
    global LOG
    portfile, logfile = sys.argv[1], sys.argv[2]
    LOG = open(logfile, "a", buffering=1)
    srv = Server(("127.0.0.1", 0), Proxy)
    srv.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    tmp = portfile + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(tmp, portfile)
    srv.serve_forever()


if __name__ == "__main__":
    main()
