#!/usr/bin/env python3
"""tests/integration/harness.py — shared machinery of the mothership integration tests.

Standard library only. Provides:
  * Server: starts a real `mothership serve --listen 127.0.0.1:0 --data-dir <tmp>
    --territory-auth either`, reads its {"listening": "host:port"} line, stops it with SIGTERM
    (exit status must be 0) or kills it with SIGKILL; runs `mothership admin ...` commands on the
    same data dir; a tiny HTTP/1.1 client (`request`) that returns (status, headers, body) where
    body is the decoded JSON for JSON responses and the raw bytes otherwise.
  * World: one account (admin bootstrap) plus helpers for its territories, facilities and
    directives, so every test can build its own fixtures cheaply.
  * run_tap(): the TAP reporter. Every test function is one case; failures print their
    traceback as "# ..." lines; skips print "# SKIP-REASON <name>: <reason>" then
    "ok N # SKIP <name>" (the name after SKIP is what tests/run_tests.py looks the reason up
    by, as it does for cmocka). The process always exits 0: the runner counts cases.

Rate limits (spec mothership §3.1.4) shape the fixtures: enrollment is limited to 10 per hour
per client IP, so every enrollment goes out from a fresh loopback source address
(127.0.x.y — Linux routes all of 127/8 to lo); polls, territory heartbeats and directive
reports are limited per territory, so tests use fresh territories.
"""
import base64
import hashlib
import hmac
import http.client
import inspect
import json
import os
import select
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid

HTTP_TIMEOUT = 30.0
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
ADMIN_TIMEOUT = 120.0

# ---------------------------------------------------------------------------------------------
# assertions


class Skip(Exception):
    """Raised by a test to report itself as skipped (never a pass)."""


def skip(reason):
    raise Skip(reason)


class Failure(AssertionError):
    pass


def fail(msg):
    raise Failure(msg)


def check(cond, msg):
    if not cond:
        raise Failure(msg)


def eq(actual, expected, what):
    if actual != expected:
        raise Failure(f"{what}: expected {expected!r}, got {actual!r}")


def short(v, n=600):
    s = v if isinstance(v, str) else repr(v)
    return s if len(s) <= n else s[:n] + f"... ({len(s)} chars)"


def expect_status(resp, status, what=""):
    """resp.status must be status (an int or a tuple of ints)."""
    ok = resp.status in status if isinstance(status, tuple) else resp.status == status
    if not ok:
        raise Failure(f"{what + ': ' if what else ''}{resp.method} {resp.path} -> "
                      f"expected HTTP {status}, got {resp.status} {short(resp.body)}")
    return resp


def expect_error(resp, status, code=None, what=""):
    """A JSON error envelope {"error": ...} with the given status (and error code)."""
    expect_status(resp, status, what)
    check(isinstance(resp.body, dict) and "error" in resp.body,
          f"{what + ': ' if what else ''}{resp.method} {resp.path} -> {resp.status} body is not "
          f"a JSON object with \"error\": {short(resp.body)} (content-type "
          f"{resp.headers.get('content-type')!r})")
    if code is not None:
        eq(resp.body.get("error"), code, f"{resp.method} {resp.path} error code")
    return resp


def expect_json_error_4xx(resp, what=""):
    """Any 4xx with a JSON body carrying "error" — the contract for every rejected input."""
    check(400 <= resp.status < 500,
          f"{what + ': ' if what else ''}{resp.method} {resp.path} -> expected a 4xx, got "
          f"{resp.status} {short(resp.body)}")
    return expect_error(resp, resp.status, None, what)


def expect_no_5xx(resp, what=""):
    """Accepted or refused, never a server error; a refusal must be a JSON error."""
    check(resp.status < 500, f"{what + ': ' if what else ''}{resp.method} {resp.path} -> server "
          f"error {resp.status} {short(resp.body)}")
    if resp.status >= 400:
        expect_error(resp, resp.status, None, what)
    return resp


def is_uuid(s):
    if not isinstance(s, str) or len(s) != 36:
        return False
    try:
        return str(uuid.UUID(s)) == s
    except ValueError:
        return False


def b64(data):
    return base64.b64encode(data).decode("ascii")


# ---------------------------------------------------------------------------------------------
# HTTP


class Response:
    """(status, headers, body) — iterable as that triple. headers keys are lower-case;
    body is the parsed JSON when the response is JSON (raw bytes if it does not parse) and
    the raw bytes otherwise. .raw always holds the bytes."""

    def __init__(self, method, path, status, headers, raw):
        self.method, self.path = method, path
        self.status, self.headers, self.raw = status, headers, raw
        ctype = headers.get("content-type", "")
        self.body = raw
        if "json" in ctype:
            try:
                self.body = json.loads(raw.decode("utf-8"))
            except (ValueError, UnicodeDecodeError):
                self.body = raw

    def __iter__(self):
        return iter((self.status, self.headers, self.body))

    def __repr__(self):
        return f"<{self.method} {self.path} -> {self.status} {short(self.body, 200)}>"


class HttpError(Exception):
    pass


def _read_until_close(sock, deadline):
    chunks = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise HttpError("timed out reading the response")
        sock.settimeout(left)
        try:
            b = sock.recv(65536)
        except ConnectionResetError:
            break
        except socket.timeout:
            raise HttpError("timed out reading the response")
        if not b:
            break
        chunks.append(b)
        data = b"".join(chunks)
        if _response_complete(data):
            return data
    return b"".join(chunks)


def _split_head(data):
    i = data.find(b"\r\n\r\n")
    if i < 0:
        return None, None
    return data[:i].decode("latin-1"), data[i + 4:]


def _parse_headers(head):
    lines = head.split("\r\n")
    parts = lines[0].split(" ", 2)
    status = int(parts[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            k = k.strip().lower()
            v = v.strip()
            headers[k] = headers[k] + ", " + v if k in headers else v
    return status, headers


def _dechunk(body):
    """Returns the decoded body, or None while incomplete."""
    out, i = [], 0
    while True:
        j = body.find(b"\r\n", i)
        if j < 0:
            return None
        size = int(body[i:j].split(b";")[0].strip() or b"0", 16)
        if size == 0:
            return b"".join(out)
        if len(body) < j + 2 + size + 2:
            return None
        out.append(body[j + 2:j + 2 + size])
        i = j + 2 + size + 2


def _response_complete(data):
    head, rest = _split_head(data)
    if head is None:
        return False
    status, headers = _parse_headers(head)
    if status in (204, 304) or 100 <= status < 200:
        return True
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return _dechunk(rest) is not None
    if "content-length" in headers:
        return len(rest) >= int(headers["content-length"])
    return False


def http_request(host, port, method, path, body=None, raw=None, headers=None, source=None,
                 timeout=HTTP_TIMEOUT, content_length=None, chunked=False):
    """One request on a fresh connection (Connection: close).

    body: a JSON value to send; raw: bytes to send as is. content_length overrides the
    declared length (to declare a huge body without sending it). chunked sends raw with
    Transfer-Encoding: chunked. The body is sent while watching the socket: when the server
    answers (e.g. 413) before taking the whole body, sending stops and the answer is read."""
    hdrs = {"Host": f"{host}:{port}", "Connection": "close", "User-Agent": "mothership-itest"}
    data = b""
    if body is not None:
        data = json.dumps(body).encode("utf-8")
        hdrs["Content-Type"] = "application/json"
    elif raw is not None:
        data = raw if isinstance(raw, bytes) else raw.encode("utf-8")
        hdrs["Content-Type"] = "application/json"
    for k, v in (headers or {}).items():
        # a header given as None is removed (e.g. to drop Content-Type)
        for existing in [e for e in hdrs if e.lower() == k.lower()]:
            del hdrs[existing]
        if v is not None:
            hdrs[k] = v
    if chunked:
        hdrs["Transfer-Encoding"] = "chunked"
        payload = b""
        for i in range(0, len(data), 65536):
            piece = data[i:i + 65536]
            payload += f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
        payload += b"0\r\n\r\n"
        data = payload
    elif method not in ("GET", "HEAD", "DELETE") or data or content_length is not None:
        hdrs["Content-Length"] = str(content_length if content_length is not None else len(data))
    head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs.items())
    head = (head + "\r\n").encode("latin-1")
    deadline = time.monotonic() + timeout
    sock = socket.create_connection((host, port), timeout=timeout,
                                    source_address=(source, 0) if source else None)
    try:
        sock.sendall(head)
        off = 0
        answered_early = False
        while off < len(data):
            left = deadline - time.monotonic()
            if left <= 0:
                raise HttpError("timed out sending the body")
            r, w, _ = select.select([sock], [sock], [], left)
            if r:
                answered_early = True
                break
            if w:
                try:
                    off += sock.send(data[off:off + 262144])
                except (BrokenPipeError, ConnectionResetError):
                    answered_early = True
                    break
        resp = _read_until_close(sock, deadline)
    finally:
        sock.close()
    h, rest = _split_head(resp)
    if h is None:
        raise HttpError(f"{method} {path}: no HTTP response (got {len(resp)} bytes"
                        f"{', body not fully sent' if answered_early else ''})")
    status, rheaders = _parse_headers(h)
    if "chunked" in rheaders.get("transfer-encoding", "").lower():
        rest = _dechunk(rest) or b""
    elif "content-length" in rheaders:
        rest = rest[:int(rheaders["content-length"])]
    return Response(method, path, status, rheaders, rest)


# ---------------------------------------------------------------------------------------------
# server process

_source_lock = threading.Lock()
_source_counter = [256]


def fresh_source_ip():
    """A loopback address never used before by this process (127.0.1.0 upwards)."""
    with _source_lock:
        _source_counter[0] += 1
        while _source_counter[0] & 255 in (0, 255):
            _source_counter[0] += 1
        n = _source_counter[0]
    return f"127.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


class AdminError(Exception):
    def __init__(self, args, rc, out, err):
        super().__init__(f"mothership admin {' '.join(args)} exited {rc}: {err.strip()[-800:]}"
                         f" stdout={out.strip()[-300:]!r}")
        self.rc, self.out, self.err = rc, out, err


class Server:
    def __init__(self, binary, data_dir=None, auth="either", extra_args=(), env=None):
        self.binary = os.path.abspath(binary)
        self.own_dir = data_dir is None
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="ms-itest-")
        self.log_dir = tempfile.mkdtemp(prefix="ms-itest-log-")
        self.auth = auth
        self.extra_args = list(extra_args)
        self.env = dict(os.environ)
        # A leak report would make the clean shutdown fail; that is wanted (ASan builds).
        self.env.update(env or {})
        self.proc = None
        self.host, self.port = None, None
        self.starts = 0
        self.stdout_lines = []
        self.server_errors = []

    # -- lifecycle
    def start(self):
        self.starts += 1
        self.log_path = os.path.join(self.log_dir, f"stderr.{self.starts}.log")
        cmd = [self.binary, "serve", "--listen", "127.0.0.1:0", "--data-dir", self.data_dir]
        if self.auth:
            cmd += ["--territory-auth", self.auth]
        cmd += self.extra_args
        with open(self.log_path, "wb") as errf:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                         stderr=errf, env=self.env)
        line = self._read_line(START_TIMEOUT)
        if line is None:
            rc = self.proc.poll()
            if rc is None:
                self.proc.kill()
                self.proc.wait()
            raise Failure(f"server did not print its listening line within {START_TIMEOUT}s "
                          f"(exit {rc}); stderr tail:\n{self.stderr_tail()}")
        try:
            addr = json.loads(line)["listening"]
            host, port = addr.rsplit(":", 1)
            self.host, self.port = host.strip("[]"), int(port)
        except (ValueError, KeyError, TypeError) as e:
            self.proc.kill()
            self.proc.wait()
            raise Failure(f"bad listening line {line!r}: {e}")
        # keep draining stdout so that a chatty server never blocks on a full pipe
        t = threading.Thread(target=self._drain, daemon=True)
        t.start()
        return self

    def _read_line(self, timeout):
        fd = self.proc.stdout.fileno()
        buf = b""
        deadline = time.monotonic() + timeout
        while b"\n" not in buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            r, _, _ = select.select([fd], [], [], min(left, 0.5))
            if r:
                b = os.read(fd, 4096)
                if not b:
                    return None
                buf += b
            elif self.proc.poll() is not None:
                return None
        line, rest = buf.split(b"\n", 1)
        if rest:
            self.stdout_lines.append(rest.decode("utf-8", "replace"))
        return line.decode("utf-8", "replace")

    def _drain(self):
        proc = self.proc
        try:
            for line in proc.stdout:
                self.stdout_lines.append(line.decode("utf-8", "replace"))
        except (ValueError, OSError):
            pass

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        """SIGTERM; the server must exit 0 within STOP_TIMEOUT. Returns the exit status."""
        if self.proc is None:
            return 0
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise Failure(f"server did not exit within {STOP_TIMEOUT}s of SIGTERM; stderr "
                          f"tail:\n{self.stderr_tail()}")
        if rc != 0:
            raise Failure(f"server exited with status {rc} after SIGTERM (expected 0); "
                          f"stderr tail:\n{self.stderr_tail()}")
        return rc

    def kill9(self):
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        try:
            os.kill(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()

    def restart(self):
        self.stop()
        return self.start()

    def cleanup(self):
        if self.proc is not None:
            self.kill9()
        if self.own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)
        shutil.rmtree(self.log_dir, ignore_errors=True)

    def stderr_tail(self, n=30):
        try:
            with open(self.log_path, "rb") as f:
                lines = f.read().decode("utf-8", "replace").splitlines()
        except OSError:
            return "(no stderr log)"
        return "\n".join(lines[-n:])

    # -- admin CLI
    def admin_raw(self, *args, timeout=ADMIN_TIMEOUT):
        cmd = [self.binary, "admin", "--data-dir", self.data_dir] + [str(a) for a in args]
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, env=self.env,
                           timeout=timeout)
        return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8",
                                                                                    "replace")

    def admin(self, *args, timeout=ADMIN_TIMEOUT):
        """Runs an admin command; returns its JSON object; raises AdminError on failure."""
        rc, out, err = self.admin_raw(*args, timeout=timeout)
        if rc != 0:
            raise AdminError([str(a) for a in args], rc, out, err)
        try:
            v = json.loads(out)
        except ValueError:
            raise AdminError([str(a) for a in args], rc, out, "stdout is not one JSON object")
        if not isinstance(v, dict):
            raise AdminError([str(a) for a in args], rc, out, "stdout is not a JSON object")
        return v

    # -- HTTP
    def request(self, method, path, body=None, **kw):
        if self.port is None:
            raise HttpError("server not started")
        r = http_request(self.host, self.port, method, path, body=body, **kw)
        if r.status >= 500:
            # every 5xx is remembered: a file may end with a case asserting there was none
            with _source_lock:
                self.server_errors.append(f"{method} {path} -> {r.status} {short(r.body, 300)}")
        return r

    # -- direct database access, only for time-travel fixtures (spec §1.14 "forced timestamps"):
    # the admin CLI has no way to age a row, so the retention vectors move created_at back.
    # Done with the server stopped (see age()), so no assumption about its locking is made.
    def age_where(self, table, where, params, days, column="created_at", expect_rows=1):
        db = sqlite3.connect(os.path.join(self.data_dir, "mothership.sqlite3"), timeout=30)
        try:
            with db:
                cur = db.execute(
                    f"UPDATE {table} SET {column} = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?) "
                    f"WHERE {where}", (f"-{float(days)} days",) + tuple(params))
                if expect_rows is not None and cur.rowcount != expect_rows:
                    raise Failure(f"age: {cur.rowcount} {table} rows matched {where} {params}, "
                                  f"expected {expect_rows}")
        finally:
            db.close()

    def age(self, changes):
        """changes: [(table, where, params, days)]. Stops the server (it must exit 0), moves
        the timestamps back, starts it again."""
        was_running = self.proc is not None
        if was_running:
            self.stop()
        for table, where, params, days in changes:
            self.age_where(table, where, params, days)
        if was_running:
            self.start()


# ---------------------------------------------------------------------------------------------
# fixtures


class Lease:
    def __init__(self, tid, fid, did, token, spec, lease):
        self.tid, self.fid, self.did = tid, fid, did
        self.token, self.spec, self.lease = token, spec, lease


class World:
    """One account (admin bootstrap: account, user, API token, one enrollment token) and
    shortcuts for everything the directive track needs."""

    def __init__(self, srv):
        self.srv = srv
        b = srv.admin("bootstrap")
        for k in ("account_id", "user_id", "api_token", "enroll_token"):
            check(isinstance(b.get(k), str) and b[k], f"admin bootstrap: missing {k} in {b}")
        self.account_id, self.user_id = b["account_id"], b["user_id"]
        self.api_token, self.first_enroll_token = b["api_token"], b["enroll_token"]

    # -- users
    def other_user(self, name="approver"):
        """Another user of the same account with its own API token: (user_id, api_token)."""
        u = self.srv.admin("user", "create", "--account", self.account_id, "--name", name)
        t = self.srv.admin("token", "create", "--user", u["user_id"])
        return u["user_id"], t["api_token"]

    def api(self, method, path, body=None, token=None, headers=None, **kw):
        h = {"Authorization": "Bearer " + (token or self.api_token)}
        h.update(headers or {})
        return self.srv.request(method, "/mothership/api/v1" + path, body=body, headers=h, **kw)

    # -- enrollment
    def new_enroll_token(self, labels=None, ttl=None):
        args = ["enroll-token", "create", "--account", self.account_id, "--user", self.user_id]
        if ttl is not None:
            args += ["--ttl", str(ttl)]
        if labels is not None:
            args += ["--labels", json.dumps(labels)]
        t = self.srv.admin(*args)
        check(t.get("enroll_token") and t.get("id"), f"enroll-token create returned {t}")
        return t

    def enroll(self, token, source=None, **fields):
        body = dict(fields)
        body["enroll_token"] = token
        return self.srv.request("POST", "/conduits/v1/territories/enroll", body=body,
                                source=source or fresh_source_ip())

    def territory(self, capacity=None, name=None, **fields):
        """Enrolls a new territory (fresh token, fresh source IP) and returns its id. With
        capacity, it is sent both at enrollment and by a heartbeat."""
        tok = self.new_enroll_token()["enroll_token"]
        if capacity is not None:
            fields["metadata"] = {"capacity": capacity}
        if name:
            fields["name"] = name
        r = self.enroll(tok, **fields)
        expect_status(r, 201, "enroll")
        tid = r.body.get("territory_id")
        check(is_uuid(tid), f"enroll: territory_id {tid!r} is not a UUID")
        if capacity is not None:
            expect_status(self.t_heartbeat(tid, capacity=capacity,
                                           runtime_status={"running_directives": 0}), 200,
                          "territory heartbeat with capacity")
        return tid

    def facility(self, tid, kind="repo", repo_url="https://git.example.com/acme/app.git"):
        args = ["facility", "create", "--account", self.account_id, "--owner", self.user_id,
                "--territory", tid, "--kind", kind]
        if repo_url:
            args += ["--repo-url", repo_url]
        f = self.srv.admin(*args)
        check(is_uuid(f.get("facility_id")), f"facility create returned {f}")
        return f["facility_id"]

    # -- territory requests
    def t(self, tid, method, path, body=None, token=None, headers=None, **kw):
        h = {}
        if tid is not None:
            h["X-Nexus-Territory-Id"] = tid
        if token is not None:
            h["Authorization"] = "Bearer " + token
        h.update(headers or {})
        return self.srv.request(method, "/conduits/v1" + path, body=body, headers=h, **kw)

    def t_heartbeat(self, tid, **body):
        return self.t(tid, "POST", "/territories/heartbeat", body)

    def poll(self, tid, profiles=("untrusted",), max_claim=None, **extra):
        body = dict(extra)
        if profiles is not None:
            body["supported_sandbox_profiles"] = (profiles if isinstance(profiles, str)
                                                  else list(profiles))
        if max_claim is not None:
            body["max_directives_to_claim"] = max_claim
        return self.t(tid, "POST", "/polls", body)

    # -- directives
    def create_directive(self, fid, command="echo hello", token=None, **fields):
        body = {"command": command}
        body.update(fields)
        return self.api("POST", f"/facilities/{fid}/directives", body, token=token)

    def directive(self, fid, command="echo hello", **fields):
        r = self.create_directive(fid, command, **fields)
        expect_status(r, 201, "create directive")
        check(is_uuid(r.body.get("directive_id")), f"create directive: bad body {r.body}")
        return r.body["directive_id"]

    def lease(self, tid=None, fid=None, profiles=("untrusted",), **fields):
        """Creates a directive (fresh territory/facility unless given), polls it and returns the
        Lease. Asserts the poll returned exactly that directive."""
        if tid is None:
            tid = self.territory()
        if fid is None:
            fid = self.facility(tid)
        did = self.directive(fid, **fields)
        r = expect_status(self.poll(tid, profiles=profiles), 200, "poll")
        ds = r.body.get("directives")
        check(isinstance(ds, list) and len(ds) == 1,
              f"poll: expected exactly 1 lease, got {short(r.body)}")
        eq(ds[0].get("directive_id"), did, "leased directive id")
        return Lease(tid, fid, did, ds[0].get("directive_token"), ds[0].get("spec"), ds[0])

    def running(self, **kw):
        """A leased directive already reported started."""
        ls = self.lease(**kw)
        expect_status(self.started(ls), 200, "started")
        return ls

    def started(self, ls, token=None, tid=None, **body):
        return self.t(tid or ls.tid, "POST", f"/directives/{ls.did}/started", body,
                      token=token or ls.token)

    def heartbeat(self, ls, token=None, tid=None, **body):
        return self.t(tid or ls.tid, "POST", f"/directives/{ls.did}/heartbeat", body,
                      token=token or ls.token)

    def chunk(self, ls, stream, seq, data, token=None, tid=None, **extra):
        body = {"stream": stream, "seq": seq,
                "bytes": b64(data) if isinstance(data, bytes) else data}
        body.update(extra)
        return self.t(tid or ls.tid, "POST", f"/directives/{ls.did}/log_chunks", body,
                      token=token or ls.token)

    def finished(self, ls, status="succeeded", token=None, tid=None, **body):
        b = {"status": status}
        b.update(body)
        return self.t(tid or ls.tid, "POST", f"/directives/{ls.did}/finished", b,
                      token=token or ls.token)

    def log_page(self, fid, did, **query):
        q = "&".join(f"{k}={v}" for k, v in query.items())
        return self.api("GET", f"/facilities/{fid}/directives/{did}/log_chunks" +
                        (("?" + q) if q else ""))

    # -- admin views
    def d(self, did):
        return self.srv.admin("directive", "show", did)

    def f(self, fid):
        return self.srv.admin("facility", "show", fid)

    def terr(self, tid):
        return self.srv.admin("territory", "show", tid)


# ---------------------------------------------------------------------------------------------
# directive tokens (JWT, spec §4)


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def jwt_claims(token):
    return json.loads(b64url_decode(token.split(".")[1]))


def jwt_sign(claims, key, header=None):
    h = b64url(json.dumps(header or {"alg": "HS256"}, separators=(",", ":")).encode())
    p = b64url(json.dumps(claims, separators=(",", ":")).encode())
    sig = hmac.new(key, f"{h}.{p}".encode(), hashlib.sha256).digest()
    return f"{h}.{p}.{b64url(sig)}"


def server_jwt_key(srv):
    """The HMAC key of a server started without SECRET_KEY_BASE: <data_dir>/secret.key (an
    implementation detail; tests that forge tokens first check a forged valid token works)."""
    try:
        with open(os.path.join(srv.data_dir, "secret.key"), "rb") as f:
            return f.read()
    except OSError:
        return None


# ---------------------------------------------------------------------------------------------
# TAP reporter


def _tests_of(module_globals):
    fns = [v for k, v in module_globals.items()
           if k.startswith("test_") and inspect.isfunction(v)
           and v.__module__ == module_globals.get("__name__")]
    # definition order (dict order is insertion order; functions keep it)
    return fns


def _emit_failure(lines):
    for line in lines:
        for sub in str(line).splitlines() or [""]:
            print("# " + sub)


def run_tap(module_globals, setup=None, teardown=None, teardown_name=None):
    """Runs every test_* function of the module in definition order as one TAP case each.

    setup(binary) -> ctx is called once; each test is called as test(ctx). teardown(ctx) is
    reported as one more case (normally: the server stops on SIGTERM with status 0). After a
    test, a ctx with a .srv whose process died is reported in that test's failure and the
    server is restarted on the same data dir so later cases still run."""
    if len(sys.argv) < 2:
        print("usage: TEST_FILE.py <path to mothership binary>", file=sys.stderr)
        print("1..0 # SKIP no mothership binary given")
        sys.exit(0)
    binary = sys.argv[1]
    tests = _tests_of(module_globals)
    only = os.environ.get("ITEST_ONLY")
    if only:
        tests = [t for t in tests if any(o in t.__name__ for o in only.split(","))]
    n = len(tests) + (1 if teardown else 0)
    print(f"1..{n}", flush=True)
    ctx, setup_error = None, None
    if not os.access(binary, os.X_OK):
        setup_error = f"mothership binary {binary!r} is missing or not executable"
    elif setup:
        try:
            ctx = setup(binary)
        except Exception:
            setup_error = "setup failed:\n" + traceback.format_exc()
    num = 0
    for t in tests:
        num += 1
        name = t.__name__
        if setup_error:
            print(f"not ok {num} - {name}")
            _emit_failure([setup_error])
            sys.stdout.flush()
            continue
        t0 = time.monotonic()
        err = None
        try:
            t(ctx)
        except Skip as s:
            print(f"# SKIP-REASON {name}: {s}")
            print(f"ok {num} # SKIP {name}", flush=True)
            continue
        except Exception:
            err = traceback.format_exc()
        srv = getattr(ctx, "srv", None)
        if isinstance(srv, Server) and srv.proc is not None and not srv.alive():
            rc = srv.proc.returncode
            tail = srv.stderr_tail()
            err = (err or "") + f"\nSERVER DIED during this test (exit status {rc}); " \
                                f"stderr tail:\n{tail}"
            srv.proc = None
            try:
                srv.start()
            except Exception:
                err += "\n(restart failed: " + traceback.format_exc() + ")"
        dt = time.monotonic() - t0
        if err:
            print(f"not ok {num} - {name}")
            _emit_failure([err.rstrip()])
        else:
            print(f"ok {num} - {name}")
        print(f"# ({dt:.2f}s)", flush=True)
    if teardown:
        num += 1
        name = teardown_name or "server_exits_0_on_sigterm"
        if setup_error:
            print(f"not ok {num} - {name}")
            _emit_failure([setup_error])
        else:
            try:
                teardown(ctx)
                print(f"ok {num} - {name}")
            except Exception:
                print(f"not ok {num} - {name}")
                _emit_failure([traceback.format_exc().rstrip()])
    sys.stdout.flush()
    sys.exit(0)


class Ctx:
    """Default per-file context: one server (and one World made lazily per test)."""

    def __init__(self, srv):
        self.srv = srv

    def world(self):
        return World(self.srv)


def default_setup(binary, **server_kw):
    srv = Server(binary, **server_kw)
    srv.start()
    return Ctx(srv)


def default_teardown(ctx):
    try:
        ctx.srv.stop()
    finally:
        ctx.srv.cleanup()


# ---------------------------------------------------------------------------------------------
# reading admin `... show` rows (all columns; JSON columns may come back as JSON text)


def jcol(v):
    """A JSON column of an admin row: parsed when it arrives as JSON text."""
    if isinstance(v, str):
        try:
            return json.loads(v)
        except ValueError:
            return v
    return v


def col_true(v):
    return v is True or v == 1


def col_false(v):
    return v is False or v == 0
