#!/usr/bin/env python3
"""tests/integration/nexus_harness.py — machinery of the nexusd end-to-end tests.

Builds on harness.py (imported, never edited): the mothership Server, World fixtures, the
HTTP client and run_tap(). Adds, standard library only:
  * Nexus: one real `nexusd run -c FILE` process with its own temp work_dir and config (YAML
    written from a dict), JSON logs on stderr kept in a file, the per-directive summary lines
    of stdout collected by a thread; stop (SIGTERM), kill -9, RSS, WAL size, log searching.
  * GitHttpServer: a bare repository served over git's SMART HTTP protocol (git http-backend
    as a CGI, run by an in-process http.server on 127.0.0.1). nexusd clones with
    `git clone --depth 1` (spec nexus §5.4 step 6) and git refuses shallow clones over the
    dumb protocol, so `python3 -m http.server` + update-server-info is not enough.
  * process helpers: find processes whose command line holds a unique marker (to prove a
    process tree is gone), kill them by pid when a test fails.
  * wait helpers for directive states.

Every process and temp dir is owned by an object with cleanup(); tests run them inside
contextlib.ExitStack so that a failing assertion still cleans up.
"""
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402

TERMINAL = ("succeeded", "failed", "canceled", "timed_out")
NEXUS_START_TIMEOUT = 30.0


def free_port():
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def unique(prefix="nx"):
    return f"{prefix}{os.getpid()}{random.randrange(10**9):09d}"


def wait_until(cond, timeout, interval=0.1, what="condition"):
    """Polls cond() until it returns a truthy value (returned) or the timeout passes
    (raises Failure naming what)."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            v = cond()
            if v:
                return v
        except (H.HttpError, OSError) as e:
            last_exc = e
        if time.monotonic() >= deadline:
            H.fail(f"timed out after {timeout:.0f}s waiting for {what}"
                   + (f" (last error: {last_exc})" if last_exc else ""))
        time.sleep(interval)


# ---------------------------------------------------------------------------------------------
# YAML (block style; scalars as JSON, which YAML reads as the same value)


def to_yaml(d, indent=0):
    out = []
    pad = " " * indent
    for k, v in d.items():
        if isinstance(v, dict):
            if v:
                out.append(f"{pad}{k}:")
                out.append(to_yaml(v, indent + 2))
            else:
                out.append(f"{pad}{k}: {{}}")
        elif isinstance(v, (list, tuple)):
            out.append(f"{pad}{k}: [" + ", ".join(json.dumps(x) for x in v) + "]")
        else:
            out.append(f"{pad}{k}: {json.dumps(v)}")
    return "\n".join(x for x in out if x != "")


def merge(a, b):
    """Deep merge of b over a (new dict)."""
    out = dict(a)
    for k, v in b.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = v
    return out


# ---------------------------------------------------------------------------------------------
# processes


def _read_cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return b""


def _state(pid):
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            s = f.read()
        return s[s.rindex(b")") + 2:s.rindex(b")") + 3].decode()
    except (OSError, ValueError):
        return "?"


def pids_with_marker(marker):
    """Live (non-zombie) processes whose command line contains marker (bytes or str)."""
    m = marker.encode() if isinstance(marker, str) else marker
    me = os.getpid()
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == me:
            continue
        cl = _read_cmdline(name)
        if m in cl and _state(name) not in ("Z", "X", "?"):
            out.append((int(name), cl.replace(b"\0", b" ").decode("utf-8", "replace").strip()))
    return out


def kill_marked(marker):
    """SIGKILLs, by pid, the processes this test started (identified by its unique marker)."""
    for pid, _ in pids_with_marker(marker):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


# ---------------------------------------------------------------------------------------------
# nexusd


class Nexus:
    """One `nexusd run` process. cfg overrides are deep-merged over the test defaults."""

    def __init__(self, binary, server_url, territory_id=None, overrides=None, env=None,
                 root=None):
        self.binary = os.path.abspath(binary)
        self.dir = tempfile.mkdtemp(prefix="nx-itest-", dir=root)
        self.work_dir = os.path.join(self.dir, "work")
        self.config_path = os.path.join(self.dir, "nexus.yaml")
        self.obs_port = None
        cfg = {
            "server_url": server_url,
            "work_dir": self.work_dir,
            "supported_sandbox_profiles": ["host"],
            "poll": {"wait_seconds": 2, "retry_backoff": "1s"},
            "heartbeat": {"interval": "1s"},
            "territory_heartbeat": {"interval": "10s"},
            "shutdown_timeout": "10s",
        }
        if territory_id:
            cfg["territory_id"] = territory_id
        cfg = merge(cfg, overrides or {})
        if (cfg.get("observability") or {}).get("enabled"):
            addr = cfg["observability"].get("listen_addr")
            if not addr:
                self.obs_port = free_port()
                cfg["observability"]["listen_addr"] = f"127.0.0.1:{self.obs_port}"
            else:
                self.obs_port = int(addr.rsplit(":", 1)[1])
        self.cfg = cfg
        with open(self.config_path, "w") as f:
            f.write(to_yaml(cfg) + "\n")
        self.env = dict(os.environ)
        self.env.update(env or {})
        self.proc = None
        self.starts = 0
        self.stdout_lines = []
        self.err_paths = []
        self.last_rc = None

    # -- lifecycle
    def start(self, wait=True):
        self.starts += 1
        self.err_path = os.path.join(self.dir, f"stderr.{self.starts}.log")
        self.err_paths.append(self.err_path)
        with open(self.err_path, "wb") as errf:
            self.proc = subprocess.Popen([self.binary, "run", "-c", self.config_path],
                                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                         stderr=errf, env=self.env, cwd=self.dir)
        t = threading.Thread(target=self._drain, args=(self.proc,), daemon=True)
        t.start()
        if wait:
            wait_until(lambda: self.proc.poll() is not None or
                       "nexusd starting" in self.stderr_text(),
                       NEXUS_START_TIMEOUT, what="nexusd to log 'nexusd starting'")
            if self.proc.poll() is not None:
                H.fail(f"nexusd exited {self.proc.returncode} at start; stderr:\n"
                       f"{self.stderr_tail()}")
        return self

    def _drain(self, proc):
        try:
            for line in proc.stdout:
                self.stdout_lines.append(line.decode("utf-8", "replace").rstrip("\n"))
        except (ValueError, OSError):
            pass

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=30.0):
        """SIGTERM and wait; returns the exit status (None if it had to be killed)."""
        if self.proc is None:
            return self.last_rc
        proc = self.proc
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            rc = None
        self.proc = None
        self.last_rc = rc
        return rc

    def kill9(self):
        if self.proc is None:
            return
        try:
            os.kill(self.proc.pid, signal.SIGKILL)
        except OSError:
            pass
        self.proc.wait()
        self.last_rc = self.proc.returncode
        self.proc = None

    def cleanup(self):
        if self.proc is not None:
            self.kill9()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cleanup()
        return False

    # -- observation
    def stderr_text(self):
        out = []
        for p in self.err_paths:
            try:
                with open(p, "rb") as f:
                    out.append(f.read().decode("utf-8", "replace"))
            except OSError:
                pass
        return "".join(out)

    def stderr_tail(self, n=40):
        return "\n".join(self.stderr_text().splitlines()[-n:])

    def log_records(self):
        recs = []
        for line in self.stderr_text().splitlines():
            try:
                v = json.loads(line)
            except ValueError:
                continue
            if isinstance(v, dict):
                recs.append(v)
        return recs

    def summaries(self):
        out = []
        for line in list(self.stdout_lines):
            try:
                v = json.loads(line)
            except ValueError:
                continue
            if isinstance(v, dict) and v.get("event") == "directive_finished":
                out.append(v)
        return out

    def summary_for(self, did):
        return [s for s in self.summaries() if s.get("directive_id") == did]

    @property
    def wal_path(self):
        return os.path.join(self.work_dir, ".nexus", "finished.wal")

    def wal_size(self):
        try:
            return os.path.getsize(self.wal_path)
        except OSError:
            return 0

    def facility_path(self, fid):
        return os.path.join(self.work_dir, fid)

    def obs_get(self, path, timeout=5.0):
        return H.http_request("127.0.0.1", self.obs_port, "GET", path, timeout=timeout)

    def describe(self):
        return f"nexusd stderr tail:\n{self.stderr_tail()}\nnexusd stdout: {self.stdout_lines[-5:]}"


def run_nexusd_cmd(binary, args, timeout=30.0, env=None):
    """Runs a one-shot nexusd command (version, doctor, enroll, a bad-config run);
    returns (rc, stdout, stderr)."""
    e = dict(os.environ)
    e.update(env or {})
    p = subprocess.run([os.path.abspath(binary)] + list(args), stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=timeout, env=e)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


# ---------------------------------------------------------------------------------------------
# directives


def dstate(w, fid, did):
    r = w.api("GET", f"/facilities/{fid}/directives/{did}")
    H.expect_status(r, 200, "show directive")
    return r.body


def wait_state(w, fid, did, states=TERMINAL, timeout=60.0, nx=None):
    """Waits until the directive's state is in states; returns the directive."""
    seen = {}

    def cond():
        d = dstate(w, fid, did)
        seen["d"] = d
        return d if d.get("state") in states else None
    try:
        return wait_until(cond, timeout, interval=0.2,
                          what=f"directive {did} to reach {states}")
    except H.Failure as e:
        extra = f"; last seen: {H.short(seen.get('d'))}"
        if nx is not None:
            extra += "\n" + nx.describe()
        raise H.Failure(str(e) + extra) from None


def log_text(w, fid, did, stream):
    r = w.api("GET", f"/facilities/{fid}/directives/{did}/log?stream={stream}")
    H.expect_status(r, 200, f"GET log {stream}")
    return r.raw


def new_facility(w, tid, kind="empty", repo_url=None):
    return w.facility(tid, kind=kind, repo_url=repo_url)


# ---------------------------------------------------------------------------------------------
# git over smart HTTP


GIT_ENV = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null", "HOME": "/nonexistent",
           "GIT_AUTHOR_NAME": "itest", "GIT_AUTHOR_EMAIL": "itest@example.com",
           "GIT_COMMITTER_NAME": "itest", "GIT_COMMITTER_EMAIL": "itest@example.com",
           "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}


def git(*args, cwd=None, env=None, check_rc=True):
    e = dict(GIT_ENV)
    e.update(env or {})
    p = subprocess.run(["git"] + list(args), cwd=cwd, env=e, capture_output=True, timeout=60)
    if check_rc and p.returncode != 0:
        H.fail(f"git {' '.join(args)} exited {p.returncode}: {p.stderr.decode()[-500:]}")
    return p


class _GitCgiHandler(BaseHTTPRequestHandler):
    server_version = "itest-git/1"

    def log_message(self, *a):
        pass

    def _run(self):
        srv = self.server
        path, _, query = self.path.partition("?")
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n > 0 else b""
        env = {"PATH": "/usr/bin:/bin", "GIT_PROJECT_ROOT": srv.project_root,
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
        srv.requests.append(f"{self.command} {self.path}")
        p = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True,
                           timeout=60)
        out = p.stdout
        i = out.find(b"\r\n\r\n")
        sep = 4
        if i < 0:
            i = out.find(b"\n\n")
            sep = 2
        if i < 0:
            self.send_response(500)
            self.end_headers()
            return
        head, payload = out[:i].decode("latin-1"), out[i + sep:]
        status = 200
        headers = []
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

    do_GET = _run
    do_POST = _run


class GitHttpServer:
    """A bare repo (built from files: {relpath: text}) served at
    http://127.0.0.1:PORT/repo.git over git's smart HTTP protocol."""

    def __init__(self, files, root=None):
        self.root = tempfile.mkdtemp(prefix="nx-git-", dir=root)
        src = os.path.join(self.root, "src")
        os.makedirs(src)
        git("init", "-q", "-b", "main", src)
        for rel, text in files.items():
            p = os.path.join(src, rel)
            os.makedirs(os.path.dirname(p), exist_ok=True)
            with open(p, "w") as f:
                f.write(text)
        git("add", "-A", cwd=src)
        git("commit", "-q", "-m", "initial", cwd=src)
        self.project_root = os.path.join(self.root, "srv")
        os.makedirs(self.project_root)
        git("clone", "-q", "--bare", src, os.path.join(self.project_root, "repo.git"))
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _GitCgiHandler)
        self.httpd.daemon_threads = True
        self.httpd.project_root = self.project_root
        self.httpd.requests = []
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/repo.git"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def requests(self):
        return self.httpd.requests

    def cleanup(self):
        try:
            self.httpd.shutdown()
            self.httpd.server_close()
        except OSError:
            pass
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cleanup()
        return False


# ---------------------------------------------------------------------------------------------
# context


class NxCtx:
    """Shared per-file context: one mothership (territory auth `header`) plus the binaries.
    .srv is what run_tap() watches for a dying server."""

    def __init__(self, ms_binary, nx_binary):
        self.ms_binary = os.path.abspath(ms_binary)
        self.nx_binary = os.path.abspath(nx_binary)
        self.tmp = tempfile.mkdtemp(prefix="nx-e2e-")
        # These tests are about the daemon: the server's per-minute report limits (tested in
        # test_bad_input/test_directive_track) would make them depend on window alignment.
        self.srv = H.Server(self.ms_binary, auth="header",
                            extra_args=["--rate-limits", "off"]).start()

    @property
    def server_url(self):
        return f"http://127.0.0.1:{self.srv.port}"

    def world(self):
        return H.World(self.srv)

    def nexus(self, territory_id, overrides=None, env=None, server_url=None):
        return Nexus(self.nx_binary, server_url or self.server_url, territory_id, overrides, env,
                     root=self.tmp)

    def cleanup(self):
        shutil.rmtree(self.tmp, ignore_errors=True)


def nx_setup(ms_binary):
    if len(sys.argv) < 3:
        raise RuntimeError("usage: test_nexus_e2e.py <mothership binary> <nexusd binary>")
    nx = sys.argv[2]
    if not os.access(nx, os.X_OK):
        raise RuntimeError(f"nexusd binary {nx!r} is missing or not executable")
    return NxCtx(ms_binary, nx)


def nx_teardown(ctx):
    try:
        ctx.srv.stop()
    finally:
        ctx.srv.cleanup()
        ctx.cleanup()
