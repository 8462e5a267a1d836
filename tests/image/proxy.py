#!/usr/bin/env python3
"""A tiny forwarding HTTP proxy for tests/image/run.sh (plain http:// only, no CONNECT).

    proxy.py PORTFILE LOGFILE [USER:PASSWORD]

Listens on 127.0.0.1 (a free port, written to PORTFILE), forwards absolute-URI GET/HEAD requests,
and logs one line per request: "<status> <method> <url> auth=<ok|none|bad>". With USER:PASSWORD,
requests without the matching Proxy-Authorization get 407.
"""
import base64
import http.server
import sys
import urllib.error
import urllib.request

portfile, logfile = sys.argv[1], sys.argv[2]
creds = sys.argv[3] if len(sys.argv) > 3 else None
want = "Basic " + base64.b64encode(creds.encode()).decode() if creds else None
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
log = open(logfile, "a", buffering=1)


class Proxy(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def forward(self, head):
        got = self.headers.get("Proxy-Authorization")
        auth = "none" if got is None else ("ok" if got == want else "bad")
        if want and auth != "ok":
            log.write(f"407 {self.command} {self.path} auth={auth}\n")
            self.send_response(407)
            self.send_header("Proxy-Authenticate", 'Basic realm="test"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if not self.path.startswith("http://"):
            log.write(f"400 {self.command} {self.path} auth={auth}\n")
            self.send_error(400, "absolute http:// URI expected")
            return
        req = urllib.request.Request(self.path, method=self.command)
        for k in ("Range", "If-Modified-Since", "If-None-Match", "Accept", "User-Agent"):
            if k in self.headers:
                req.add_header(k, self.headers[k])
        try:
            resp = opener.open(req, timeout=60)
            status, headers, body = resp.status, resp.headers, resp.read()
        except urllib.error.HTTPError as e:
            status, headers, body = e.code, e.headers, e.read()
        except Exception as e:  # upstream unreachable
            log.write(f"502 {self.command} {self.path} auth={auth} {e}\n")
            self.send_error(502, str(e))
            return
        log.write(f"{status} {self.command} {self.path} auth={auth}\n")
        self.send_response(status)
        for k, v in headers.items():
            if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def do_GET(self):
        self.forward(False)

    def do_HEAD(self):
        self.forward(True)


srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
with open(portfile + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
import os  # noqa: E402

os.rename(portfile + ".tmp", portfile)
srv.serve_forever()
