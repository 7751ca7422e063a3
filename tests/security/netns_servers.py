#!/usr/bin/env python3
"""tests/security/netns_servers.py — the test servers of the security suite.

Runs INSIDE the servers' network namespace (started by sec_harness.py with nsenter), so the
addresses it listens on exist only on the test's private veth link: nothing here is reachable
from the machine's own network, and the sandbox (an empty network namespace) can reach it only
through nexusd's egress proxy.

Standard library only. Listens on every address of the namespace (dual-stack "::"):
  * 443  HTTPS (certificate for allowed.test / allowed6.test signed by the test CA)
  * 80   plain HTTP
         both serve GET /hello.txt ("hello-from-allowed\n") and a git repository over the smart
         HTTP protocol (git http-backend as a CGI: /repo.git/..., /evil.git/...), which also
         answers dumb-protocol requests for the static files of the bare repositories;
  * 7, 22  TCP echo (22 stands for "a port the allowlist does not grant");
  * 53   UDP echo (what a DNS query from the sandbox would hit if it could get out).
Every accepted connection, HTTP request and datagram is appended as one JSON line to the
events file, so a test can prove that an attack never reached a server.
Prints "READY" on stdout once every socket listens; exits on SIGTERM.

Usage: netns_servers.py EVENTS_FILE CERT KEY GIT_PROJECT_ROOT
"""
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

EVENTS = None
_lock = threading.Lock()


def event(**kw):
    kw["t"] = time.time()
    line = json.dumps(kw) + "\n"
    with _lock:
        with open(EVENTS, "a") as f:
            f.write(line)


class DualServer(ThreadingHTTPServer):
    address_family = socket.AF_INET6
    daemon_threads = True
    allow_reuse_address = True

    def server_bind(self):
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


class Handler(BaseHTTPRequestHandler):
    server_version = "nxsec-test/1"
    protocol_version = "HTTP/1.0"

    def log_message(self, *a):
        pass

    def _serve(self):
        srv = self.server
        path, _, query = self.path.partition("?")
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n > 0 else b""
        event(kind="http", port=srv.port_no, peer=self.client_address[0], method=self.command,
              path=self.path, host=self.headers.get("Host", ""))
        if path == "/hello.txt":
            payload = b"hello-from-allowed\n"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return
        if ".git" not in path:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        env = {"PATH": "/usr/bin:/bin", "GIT_PROJECT_ROOT": srv.git_root,
               "GIT_HTTP_EXPORT_ALL": "1", "GIT_CONFIG_NOSYSTEM": "1",
               "GIT_CONFIG_GLOBAL": "/dev/null", "HOME": "/nonexistent",
               "REQUEST_METHOD": self.command, "PATH_INFO": path, "QUERY_STRING": query,
               "CONTENT_TYPE": self.headers.get("Content-Type", ""),
               "CONTENT_LENGTH": str(len(body)), "REMOTE_ADDR": self.client_address[0],
               "SERVER_PROTOCOL": "HTTP/1.0", "GATEWAY_INTERFACE": "CGI/1.1"}
        for h, k in (("Content-Encoding", "HTTP_CONTENT_ENCODING"),
                     ("Git-Protocol", "GIT_PROTOCOL")):
            if self.headers.get(h):
                env[k] = self.headers[h]
        p = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True,
                           timeout=60)
        out = p.stdout
        i, sep = out.find(b"\r\n\r\n"), 4
        if i < 0:
            i, sep = out.find(b"\n\n"), 2
        if i < 0:
            self.send_response(500)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        head, payload = out[:i].decode("latin-1"), out[i + sep:]
        status, headers = 200, []
        for line in head.splitlines():
            k, _, v = line.partition(":")
            if k.lower() == "status":
                status = int(v.strip().split()[0])
            else:
                headers.append((k.strip(), v.strip()))
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = _serve
    do_POST = _serve


def http_server(port, git_root, tls=None):
    srv = DualServer(("::", port), Handler)
    srv.port_no = port
    srv.git_root = git_root
    if tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(tls[0], tls[1])
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def tcp_echo(port):
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind(("::", port))
    s.listen(64)

    def conn(c, peer):
        event(kind="tcp", port=port, peer=peer[0])
        try:
            c.settimeout(60)
            while True:
                b = c.recv(65536)
                if not b:
                    break
                c.sendall(b)
        except OSError:
            pass
        finally:
            c.close()

    def loop():
        while True:
            c, peer = s.accept()
            threading.Thread(target=conn, args=(c, peer), daemon=True).start()
    threading.Thread(target=loop, daemon=True).start()
    return s


def udp_echo(port):
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind(("::", port))

    def loop():
        while True:
            data, peer = s.recvfrom(65536)
            event(kind="udp", port=port, peer=peer[0], size=len(data))
            s.sendto(data, peer)
    threading.Thread(target=loop, daemon=True).start()
    return s


def main():
    global EVENTS
    EVENTS, cert, key, git_root = sys.argv[1:5]
    signal.signal(signal.SIGTERM, lambda *a: os._exit(0))
    keep = [http_server(443, git_root, (cert, key)), http_server(80, git_root),
            tcp_echo(7), tcp_echo(22), udp_echo(53)]
    print("READY", flush=True)
    while keep:
        time.sleep(3600)


if __name__ == "__main__":
    main()
