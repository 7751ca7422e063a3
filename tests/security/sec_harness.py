#!/usr/bin/env python3
"""tests/security/sec_harness.py — machinery of the attack suite (issue 6, tests/security/).

Every attack runs from inside a real sandbox: `nexusd sandbox exec ... -- CMD` (the untrusted
stack without the control plane, sandbox_contract.md) or a real `nexusd run` against a real
`mothership` (nexus_harness.py) for what involves the daemon. Standard library only.

Topology (built per test file, torn down on exit, also on failure or SIGTERM):

    netns nxsec<pid>c  (everything of the test runs here: the test process itself, mothership,
      |                  nexusd, its egress proxy; the sandbox gets its own empty netns)
      |  veth  11.22.33.1/30 + 2a0f:5a5a:1122:3300::1/64
      |  veth  11.22.33.2/30 + 2a0f:5a5a:1122:3300::2/64
    netns nxsec<pid>s  (netns_servers.py: HTTPS 443, HTTP 80 (+ git smart HTTP), TCP echo 7
                        and 22, UDP echo 53)

The two namespaces are joined only to each other: neither has a default route, so no packet of
this suite (nor of a broken proxy) can leave the machine, and the machine's own network is never
touched. 11.22.33.0/30 and 2a0f:5a5a:1122:3300::/64 are public-looking (not in any denied range
of lib/proto/addr.c), so the proxy's classifier lets them through like any Internet host.

Names are mapped by a test hosts file bind-mounted over /etc/hosts in a private mount namespace
(`unshare -m --propagation private`), which the proxy's resolver (glibc, "hosts: files dns")
reads; no test hook exists in the product:
    allowed.test → 11.22.33.2          allowed6.test → 2a0f:5a5a:1122:3300::2
    evil-loopback.test → 127.0.0.1     meta.test → 169.254.169.254     private.test → 10.0.0.1
    mapped.test → ::ffff:127.0.0.1     nat64.test → 64:ff9b::7f00:1    sixtofour.test → 2002:7f00:1::1
(evil.test is deliberately not mapped: it is only ever refused by policy.)

Process layout: the test file runs as the OUTER process (root netns): it checks the tools,
builds the topology, the test CA and certificates (openssl), the git repositories, and the
host-side secrets, then re-runs itself as the INNER process under
`nsenter --net=/run/netns/nxsec<pid>c unshare -m --propagation private sh -c 'mount --bind
HOSTS /etc/hosts && exec python3 FILE ...'`. (nsenter, not `ip netns exec`: the latter remounts
/sys, which would hide /sys/fs/cgroup from nexusd.) The inner process runs the test_* functions
and prints their TAP lines; the outer one prints the plan, relays the lines, tears everything
down and reports that teardown as the last case (netns, veth and server processes gone).

TAP conventions are those of tests/integration/harness.py (run_tests.py reads them): one case
per test_* function in definition order; a skip prints "# SKIP-REASON <name>: <reason>" then
"ok N # SKIP <name>". Skips only for a missing tool or kernel feature, named.
"""
import atexit
import contextlib
import inspect
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import harness as H  # noqa: E402
import nexus_harness as NH  # noqa: E402

PROXY = "127.0.0.1:9080"            # NX_EGRESS_PORT inside every sandbox (sandbox_contract.md)
V4_C, V4_S = "11.22.33.1", "11.22.33.2"
V6_C, V6_S = "2a0f:5a5a:1122:3300::1", "2a0f:5a5a:1122:3300::2"
HOSTS = {
    "allowed.test": V4_S,
    "allowed6.test": V6_S,
    "evil-loopback.test": "127.0.0.1",
    "meta.test": "169.254.169.254",
    "private.test": "10.0.0.1",
    "mapped.test": "::ffff:127.0.0.1",
    "nat64.test": "64:ff9b::7f00:1",
    "sixtofour.test": "2002:7f00:1::1",
}
HELLO = "hello-from-allowed\n"
SECRET = "NXSEC-HOST-SECRET-7f3a9c"       # planted in every host-side secret file
SANDBOX_TIMEOUT = 90.0

Failure = H.Failure
check, eq, fail, short, skip = H.check, H.eq, H.fail, H.short, H.skip


def log(msg):
    print("# " + str(msg).replace("\n", "\n# "), flush=True)


# ---------------------------------------------------------------------------------------------
# OUTER: topology


def _run(cmd, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=60, **kw)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {p.returncode}: {p.stderr.strip()[-600:]}")
    return p.stdout


def preflight():
    """The reason this suite cannot run here (a missing tool or privilege), or None."""
    if os.geteuid() != 0:
        return "needs root (network namespaces, cgroups)"
    for tool in ("ip", "nsenter", "unshare", "mount", "openssl", "git", "bwrap", "curl"):
        if shutil.which(tool) is None:
            return f"tool {tool!r} not found in PATH"
    if not os.path.isdir("/proc/self/ns") or not os.path.exists("/proc/self/ns/net"):
        return "kernel without network namespaces"
    return None


def remove_stale_namespaces():
    """Namespaces left by an earlier run that was SIGKILLed (its pid is gone) are deleted, so a
    killed run cannot leak them into the next one. Only names of this suite are touched."""
    import re
    try:
        out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                             timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return
    for line in out.splitlines():
        m = re.match(r"^(nxsec(\d+)[cs])\b", line.strip())
        if m and not os.path.exists(f"/proc/{m.group(2)}"):
            subprocess.run(["ip", "netns", "del", m.group(1)], capture_output=True, timeout=30)


class Topology:
    def __init__(self):
        tag = f"nxsec{os.getpid()}"
        self.ns_c, self.ns_s = tag + "c", tag + "s"
        self.veth_c, self.veth_s = tag[:11] + "c", tag[:11] + "s"   # IFNAMSIZ 16
        # under /var/tmp, not /tmp: the sandbox's private /tmp would hide /tmp paths anyway,
        # and the host-file attacks should be stopped by the sandbox, not by a coincidence
        self.root = tempfile.mkdtemp(prefix=f"nxsec-{os.getpid()}-", dir="/var/tmp")
        os.chmod(self.root, 0o755)
        self.server_proc = None
        self.created = []

    # -- setup
    def setup(self):
        self._netns()
        self._pki()
        self._repos()
        self._secrets()
        self._hosts()
        self._servers()

    def _netns(self):
        for ns in (self.ns_s, self.ns_c):
            _run(["ip", "netns", "add", ns])
            self.created.append(ns)
        _run(["ip", "link", "add", self.veth_c, "netns", self.ns_c, "type", "veth",
              "peer", "name", self.veth_s, "netns", self.ns_s])
        for ns, dev, v4, v6 in ((self.ns_c, self.veth_c, V4_C, V6_C),
                                (self.ns_s, self.veth_s, V4_S, V6_S)):
            _run(["ip", "-n", ns, "link", "set", "lo", "up"])
            _run(["ip", "-n", ns, "addr", "add", v4 + "/30", "dev", dev])
            _run(["ip", "-n", ns, "addr", "add", v6 + "/64", "dev", dev, "nodad"])
            _run(["ip", "-n", ns, "link", "set", dev, "up"])

    def _pki(self):
        d = os.path.join(self.root, "pki")
        os.makedirs(d)
        self.ca_cert = os.path.join(d, "ca.pem")
        self.srv_cert = os.path.join(d, "server.pem")
        self.srv_key = os.path.join(d, "server.key")
        ca_key = os.path.join(d, "ca.key")
        csr = os.path.join(d, "server.csr")
        ext = os.path.join(d, "ext.cnf")
        with open(ext, "w") as f:
            f.write("subjectAltName=DNS:allowed.test,DNS:allowed6.test\n"
                    "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n"
                    "extendedKeyUsage=serverAuth\n")
        _run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key,
              "-out", self.ca_cert, "-days", "2", "-subj", "/CN=nxsec test CA",
              "-addext", "basicConstraints=critical,CA:TRUE",
              "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
        _run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", self.srv_key,
              "-out", csr, "-subj", "/CN=allowed.test"])
        _run(["openssl", "x509", "-req", "-in", csr, "-CA", self.ca_cert, "-CAkey", ca_key,
              "-CAcreateserial", "-out", self.srv_cert, "-days", "2", "-extfile", ext])
        for p in (self.ca_cert, self.srv_cert):
            os.chmod(p, 0o644)

    def _repos(self):
        """Bare repositories served by netns_servers.py: repo.git (plain) and symlink.git (a
        committed symlink pointing at a host directory)."""
        self.git_root = os.path.join(self.root, "git")
        self.escape_dir = os.path.join(self.root, "escape-target")
        os.makedirs(self.escape_dir)
        os.chmod(self.escape_dir, 0o777)
        for name, files, links in (
                ("repo", {"README.md": "hello from the test repo\n",
                          "src/app.txt": "alpha\nv1\nomega\n"}, {}),
                ("symlink", {"README.md": "symlink repo\n"},
                 {"escape": self.escape_dir, "secretlink": "/etc/shadow"})):
            src = os.path.join(self.root, "src-" + name)
            os.makedirs(src)
            NH.git("init", "-q", "-b", "main", src)
            for rel, text in files.items():
                p = os.path.join(src, rel)
                os.makedirs(os.path.dirname(p), exist_ok=True)
                with open(p, "w") as f:
                    f.write(text)
            for rel, target in links.items():
                os.symlink(target, os.path.join(src, rel))
            NH.git("add", "-A", cwd=src)
            NH.git("commit", "-q", "-m", "initial", cwd=src)
            bare = os.path.join(self.git_root, name + ".git")
            NH.git("clone", "-q", "--bare", src, bare)
            NH.git("update-server-info", cwd=bare)

    def _secrets(self):
        """Host files a sandbox must never read: a nexusd-like config, a client key, and a
        git repository whose index the diff-escape attack points .git at."""
        d = os.path.join(self.root, "host-secrets")
        os.makedirs(d)
        self.secret_dir = d
        self.secret_config = os.path.join(d, "nexus.yaml")
        self.secret_key = os.path.join(d, "client-key.pem")
        with open(self.secret_config, "w") as f:
            f.write(f"# {SECRET}\nserver_url: \"http://127.0.0.1:9\"\n")
        with open(self.secret_key, "w") as f:
            f.write(f"-----BEGIN PRIVATE KEY-----\n{SECRET}\n-----END PRIVATE KEY-----\n")
        os.chmod(self.secret_key, 0o600)
        repo = os.path.join(d, "secretrepo")
        os.makedirs(repo)
        NH.git("init", "-q", "-b", "main", repo)
        with open(os.path.join(repo, "README.md"), "w") as f:
            f.write(f"{SECRET} tracked in a host repository\n")
        NH.git("add", "-A", cwd=repo)
        NH.git("commit", "-q", "-m", "secret", cwd=repo)
        self.secret_repo = repo

    def _hosts(self):
        self.hosts_file = os.path.join(self.root, "hosts")
        with open(self.hosts_file, "w") as f:
            f.write("127.0.0.1 localhost\n::1 localhost ip6-localhost\n")
            for name, addr in HOSTS.items():
                f.write(f"{addr} {name}\n")
        os.chmod(self.hosts_file, 0o644)

    def _servers(self):
        self.events = os.path.join(self.root, "server-events.jsonl")
        open(self.events, "w").close()
        os.chmod(self.events, 0o644)
        self.server_log = os.path.join(self.root, "servers.log")
        with open(self.server_log, "wb") as errf:
            self.server_proc = subprocess.Popen(
                ["nsenter", f"--net=/run/netns/{self.ns_s}", "--", sys.executable,
                 os.path.join(HERE, "netns_servers.py"), self.events, self.srv_cert,
                 self.srv_key, self.git_root],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=errf)
        line = NH.wait_until(lambda: self.server_proc.stdout.readline() or
                             (self.server_proc.poll() is not None and b"EXITED"),
                             20, what="the test servers to print READY")
        if line.strip() != b"READY":
            with open(self.server_log) as f:
                raise RuntimeError(f"test servers failed: {line!r} {f.read()[-1500:]}")

    def conf(self):
        return {"root": self.root, "ns_c": self.ns_c, "ns_s": self.ns_s,
                "ca_cert": self.ca_cert, "events": self.events, "git_root": self.git_root,
                "escape_dir": self.escape_dir, "secret_dir": self.secret_dir,
                "secret_config": self.secret_config, "secret_key": self.secret_key,
                "secret_repo": self.secret_repo, "hosts_file": self.hosts_file,
                "server_pid": self.server_proc.pid if self.server_proc else None}

    # -- teardown
    def cleanup(self):
        """Idempotent; returns a list of problems (empty when everything is gone)."""
        problems = []
        p, self.server_proc = self.server_proc, None
        if p is not None:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        for ns in self.created:
            # any process of the test still living in the namespace is killed by pid
            try:
                pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True,
                                      text=True, timeout=10).stdout.split()
            except (OSError, subprocess.TimeoutExpired):
                pids = []
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (OSError, ValueError):
                    pass
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)
        left = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                              timeout=10).stdout
        for ns in self.created:
            if ns in left.split():
                problems.append(f"netns {ns} still exists")
        self.created = []
        links = subprocess.run(["ip", "-br", "link"], capture_output=True, text=True,
                               timeout=10).stdout
        for dev in (self.veth_c, self.veth_s):
            if dev in links:
                problems.append(f"link {dev} still exists in the root netns")
        shutil.rmtree(self.root, ignore_errors=True)
        if os.path.exists(self.root):
            problems.append(f"{self.root} still exists")
        return problems


def _test_functions(module_globals):
    return [v for k, v in module_globals.items()
            if k.startswith("test_") and inspect.isfunction(v)
            and v.__module__ == module_globals.get("__name__")]


def main(module_globals, usage):
    """Entry point of every test file: argv = <nexusd> [<mothership>]."""
    if os.environ.get("NXSEC_INNER") == "1":
        return _inner_main(module_globals)
    tests = _test_functions(module_globals)
    only = os.environ.get("ITEST_ONLY")
    if only:
        tests = [t for t in tests if any(o in t.__name__ for o in only.split(","))]
    n = len(tests) + 1
    print(f"1..{n}", flush=True)
    last = "netns_servers_and_temp_files_cleaned_up"
    if len(sys.argv) < 2 or not os.access(sys.argv[1], os.X_OK):
        for i, t in enumerate(tests, 1):
            print(f"not ok {i} - {t.__name__}\n# usage: {usage} (nexusd binary missing)")
        print(f"not ok {n} - {last}", flush=True)
        return 0
    reason = preflight()
    if reason:
        for i, t in enumerate(tests, 1):
            print(f"# SKIP-REASON {t.__name__}: {reason}")
            print(f"ok {i} # SKIP {t.__name__}")
        print(f"ok {n} - {last}", flush=True)
        return 0
    remove_stale_namespaces()
    topo = Topology()
    done = {"n": 0}

    def on_term(signum, frame):
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, on_term)
    atexit.register(topo.cleanup)
    setup_error = None
    try:
        topo.setup()
    except Exception:
        setup_error = "topology setup failed:\n" + traceback.format_exc()
    inner = None
    try:
        if setup_error is None:
            conf_path = os.path.join(topo.root, "conf.json")
            with open(conf_path, "w") as f:
                json.dump(topo.conf(), f)
            env = dict(os.environ)
            env.update({"NXSEC_INNER": "1", "NXSEC_CONF": conf_path,
                        "NXSEC_TESTS": ",".join(t.__name__ for t in tests)})
            script = 'mount --bind "$0" /etc/hosts && exec "$@"'
            inner = subprocess.Popen(
                ["nsenter", f"--net=/run/netns/{topo.ns_c}", "--",
                 "unshare", "-m", "--propagation", "private", "--",
                 "sh", "-c", script, topo.hosts_file,
                 sys.executable, os.path.abspath(module_globals["__file__"])] + sys.argv[1:],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, env=env)
            for raw in inner.stdout:
                line = raw.decode("utf-8", "replace")
                sys.stdout.write(line)
                sys.stdout.flush()
                if line.startswith("ok ") or line.startswith("not ok "):
                    done["n"] += 1
            rc = inner.wait()
            inner = None
            if done["n"] < len(tests):
                setup_error = f"the inner test process exited {rc} after {done['n']} cases"
        for i in range(done["n"] + 1, len(tests) + 1):
            print(f"not ok {i} - {tests[i - 1].__name__}")
            for ln in (setup_error or "not run").splitlines():
                print("# " + ln)
    finally:
        if inner is not None and inner.poll() is None:
            inner.kill()
            inner.wait()
        problems = topo.cleanup()
        if problems:
            print(f"not ok {n} - {last}")
            for p in problems:
                print("# " + p)
        else:
            print(f"ok {n} - {last}")
        sys.stdout.flush()
    return 0


# ---------------------------------------------------------------------------------------------
# INNER: context and the sandbox runner


class Canary:
    """A TCP listener on 127.0.0.1 (and ::1) inside the test netns: a host-local service the
    sandbox must never reach, directly or through the proxy. Records every accepted peer."""

    def __init__(self):
        self.hits = []
        self.socks = []
        s4 = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s4.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s4.bind(("127.0.0.1", 0))
        self.port = s4.getsockname()[1]
        s4.listen(64)
        self.socks.append(s4)
        try:
            s6 = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            s6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            s6.bind(("::1", self.port))
            s6.listen(64)
            self.socks.append(s6)
        except OSError:
            pass
        for s in self.socks:
            threading.Thread(target=self._loop, args=(s,), daemon=True).start()

    def _loop(self, s):
        while True:
            try:
                c, peer = s.accept()
            except OSError:
                return
            self.hits.append(peer[0])
            try:
                c.sendall(b"CANARY-SERVICE\n")
            except OSError:
                pass
            c.close()

    def reset(self):
        self.hits.clear()

    def close(self):
        for s in self.socks:
            try:
                s.close()
            except OSError:
                pass


class Result:
    def __init__(self, argv, rc, out, err, audit, ws, took):
        self.argv, self.rc, self.out, self.err, self.audit = argv, rc, out, err, audit
        self.ws, self.took = ws, took

    def json(self, index=-1):
        """The index-th JSON object line of stdout (attack.py prints one per command)."""
        objs = []
        for line in self.out.splitlines():
            line = line.strip()
            if line.startswith("{"):
                try:
                    objs.append(json.loads(line))
                except ValueError:
                    pass
        if not objs:
            fail(f"no JSON result on stdout; {self.describe()}")
        return objs[index]

    def describe(self):
        return (f"sandbox exec exited {self.rc} after {self.took:.1f}s; stdout {short(self.out)}; "
                f"stderr {short(self.err, 1500)}; audit {short(self.audit, 800)}")

    def records(self, **match):
        return [r for r in self.audit if all(r.get(k) == v for k, v in match.items())]


class Ctx:
    def __init__(self, nexusd, mothership, conf):
        self.nexusd = os.path.abspath(nexusd)
        self.mothership = os.path.abspath(mothership) if mothership else None
        self.conf = conf
        self.tmp = tempfile.mkdtemp(prefix="inner-", dir=conf["root"])
        os.chmod(self.tmp, 0o755)
        self.canary = Canary()
        self._nx = None
        self.srv = None            # the mothership (started on first use)

    # -- mothership + nexusd
    def nx(self):
        if self._nx is None:
            if not self.mothership:
                fail("this case needs the mothership binary as the second argument")
            self._nx = NH.NxCtx(self.mothership, self.nexusd)
            # the sandbox runs as an unprivileged uid: every parent of a facility must be
            # searchable by it (nexusd refuses the untrusted profile otherwise)
            os.chmod(self._nx.tmp, 0o755)
            self.srv = self._nx.srv
        return self._nx

    def close(self):
        self.canary.close()
        if self._nx is not None:
            try:
                self._nx.srv.stop()
            finally:
                self._nx.srv.cleanup()
                self._nx.cleanup()

    # -- server side observations
    def events_mark(self):
        try:
            return os.path.getsize(self.conf["events"])
        except OSError:
            return 0

    def events_since(self, mark):
        with open(self.conf["events"]) as f:
            f.seek(mark)
            return [json.loads(ln) for ln in f if ln.strip()]

    # -- the sandbox
    def workspace(self):
        ws = tempfile.mkdtemp(prefix="ws-", dir=self.tmp)
        os.chmod(ws, 0o755)
        shutil.copy(os.path.join(HERE, "attack.py"), os.path.join(ws, "attack.py"))
        shutil.copy(self.conf["ca_cert"], os.path.join(ws, "ca.pem"))
        for n in ("attack.py", "ca.pem"):
            os.chmod(os.path.join(ws, n), 0o644)
        return ws

    def sandbox(self, command, net=None, limits=None, ws=None, extra=(), timeout=SANDBOX_TIMEOUT,
                config=None):
        """`nexusd sandbox exec [--net JSON] [--limits JSON] --workspace WS --audit FILE --
        /bin/sh -c COMMAND`; returns a Result (audit = the parsed JSONL records)."""
        ws = ws or self.workspace()
        audit = tempfile.mktemp(prefix="audit-", suffix=".jsonl", dir=self.tmp)
        argv = [self.nexusd, "sandbox", "exec"]
        if config:
            argv += ["-c", config]
        argv += ["--workspace", ws, "--audit", audit]
        if net is not None:
            argv += ["--net", json.dumps(net)]
        if limits is not None:
            argv += ["--limits", json.dumps(limits)]
        argv += list(extra) + ["--", "/bin/sh", "-c", command]
        t0 = time.monotonic()
        try:
            p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                               timeout=timeout)
            rc, o, e = p.returncode, p.stdout, p.stderr
        except subprocess.TimeoutExpired as te:
            rc, o, e = None, te.stdout or b"", (te.stderr or b"") + b"\n(TIMED OUT)"
        took = time.monotonic() - t0
        recs = []
        try:
            with open(audit) as f:
                for ln in f:
                    ln = ln.strip()
                    if ln:
                        try:
                            recs.append(json.loads(ln))
                        except ValueError:
                            recs.append({"unparsable": ln})
        except OSError:
            pass
        # decision records only; the proxy's closing {"type":"summary"} record is kept apart
        summary = [x for x in recs if x.get("type") == "summary"]
        recs = [x for x in recs if x.get("type") != "summary"]
        res = Result(argv, rc, o.decode("utf-8", "replace"), e.decode("utf-8", "replace"),
                     recs, ws, took)
        res.summary = summary
        return res

    def attack(self, args, **kw):
        """Runs `python3 /workspace/attack.py ARGS` in the sandbox; returns (Result, JSON)."""
        cmd = "python3 /workspace/attack.py " + " ".join(_shq(a) for a in args)
        r = self.sandbox(cmd, **kw)
        eq(r.rc, 0, f"attack.py {args[0]} exit status in the sandbox; {r.describe()}")
        return r, r.json()

    def host_attack(self, args, timeout=60):
        """The same attack code run directly in the test process's namespaces (the control)."""
        p = subprocess.run([sys.executable, os.path.join(HERE, "attack.py")] + list(args),
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
        try:
            return json.loads(p.stdout.decode().strip().splitlines()[-1])
        except (ValueError, IndexError):
            fail(f"control attack.py {args} on the host printed no JSON: {p.stdout!r} "
                 f"{p.stderr!r}")


def _shq(s):
    return "'" + str(s).replace("'", "'\"'\"'") + "'"


def _inner_main(module_globals):
    conf = json.load(open(os.environ["NXSEC_CONF"]))
    names = [n for n in os.environ.get("NXSEC_TESTS", "").split(",") if n]
    tests = [module_globals[n] for n in names]
    ctx, setup_error = None, None

    def on_term(signum, frame):
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, on_term)
    try:
        ctx = Ctx(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None, conf)
    except Exception:
        setup_error = "inner setup failed:\n" + traceback.format_exc()
    try:
        for num, t in enumerate(tests, 1):
            name = t.__name__
            if setup_error:
                print(f"not ok {num} - {name}")
                H._emit_failure([setup_error])
                sys.stdout.flush()
                continue
            t0 = time.monotonic()
            err = None
            try:
                t(ctx)
            except H.Skip as s:
                print(f"# SKIP-REASON {name}: {s}")
                print(f"ok {num} # SKIP {name}", flush=True)
                continue
            except Exception:
                err = traceback.format_exc()
            srv = ctx.srv
            if isinstance(srv, H.Server) and srv.proc is not None and not srv.alive():
                err = (err or "") + f"\nMOTHERSHIP DIED during this test; {srv.stderr_tail()}"
                srv.proc = None
                try:
                    srv.start()
                except Exception:
                    err += "\n(restart failed: " + traceback.format_exc() + ")"
            dt = time.monotonic() - t0
            if err:
                print(f"not ok {num} - {name}")
                H._emit_failure([err.rstrip()])
            else:
                print(f"ok {num} - {name}")
            print(f"# ({dt:.2f}s)", flush=True)
    finally:
        if ctx is not None:
            try:
                ctx.close()
            except Exception:
                print("# inner teardown: " + traceback.format_exc().replace("\n", "\n# "))
        sys.stdout.flush()
    return 0


# ---------------------------------------------------------------------------------------------
# assertions shared by the files


def is_denied(v):
    """attack.py result for a syscall/open: anything but success."""
    return v != "OK"


def expect_record(r, what, **match):
    """Exactly the audit records matching `match` (at least one); returns them."""
    recs = r.records(**match)
    check(recs, f"{what}: no audit record with {match}; records: {short(r.audit, 1500)}; "
                f"{r.describe()}")
    return recs


def expect_no_allow(r, what, host=None):
    bad = [x for x in r.audit if x.get("decision") == "allow" and
           (host is None or x.get("dest_host") == host)]
    check(not bad, f"{what}: the proxy ALLOWED {bad}")


def http_status(text):
    """Status code of the first HTTP response line in text, or None."""
    line = text.split("\r\n", 1)[0]
    parts = line.split(" ")
    if len(parts) >= 2 and parts[0].startswith("HTTP/") and parts[1].isdigit():
        return int(parts[1])
    return None


@contextlib.contextmanager
def stack():
    with contextlib.ExitStack() as st:
        yield st
