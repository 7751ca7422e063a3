#!/usr/bin/env python3
"""Attacks that involve the daemon: a real `nexusd run` (profile untrusted) against a real
`mothership`, both inside the suite's network namespace (sec_harness.py), directives created
through the user API. Covers the issue-6 checklist items that need nexusd itself: symlink
escapes during diff, overflow and clone; repository code (D15); nexusd's config and keys; the
daemon's own endpoints; the egress audit through the user API; OOM / pids / output-flood
reporting with the daemon's memory bounded.

The directive's command is the attacker; what it plants is then handled by nexusd on the host
(diff collection, log overflow, clone) — the assertions look at the host side. Where the attack
could be a no-op by accident, a control runs the same thing where nothing stops it (the host's
git on the planted facility) and must succeed.

Spec: nexus §5.4, §5.10, §5.12, §6.2, §6.6, §7.10, §9.1, Appendix B #1, #2, #5, #8, #10;
DESIGN D13–D15. Usage: test_daemon_e2e.py <nexusd> <mothership>   (TAP on stdout, exit 0)
"""
import contextlib
import json
import os
import re
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sec_harness as S  # noqa: E402
from sec_harness import H, HELLO, NH, SECRET, V4_S, check, eq, fail, short  # noqa: E402

RSS_LIMIT_KIB = 64 * 1024       # same bound as tests/integration (logstream outbox + buffers)
REPO = "http://allowed.test/repo.git"
REPO_NET = {"mode": "allowlist", "allow": ["allowed.test:80"]}


class Untrusted:
    """One account + territory + a `nexusd run` serving only the untrusted profile."""

    def __init__(self, ctx, st, overrides=None, env=None, pre_start=None):
        self.ctx = ctx
        nxc = ctx.nx()
        self.w = nxc.world()
        self.tid = self.w.territory()
        cfg = NH.merge({"supported_sandbox_profiles": ["untrusted"]}, overrides or {})
        self.nx = st.enter_context(nxc.nexus(self.tid, cfg, env))
        os.chmod(self.nx.dir, 0o755)    # searchable by the sandbox uid (see sec_harness.Ctx.nx)
        if pre_start:
            pre_start(self.nx)
        self.nx.start()
        self._approver = None

    def facility(self, repo_url=None):
        return self.w.facility(self.tid, kind="repo" if repo_url else "empty", repo_url=repo_url)

    def directive(self, fid, command, net=None, limits=None, timeout=90):
        fields = {"sandbox_profile": "untrusted", "timeout_seconds": timeout}
        if net is not None:
            fields["requested_capabilities"] = {"net": net}
        if limits:
            fields["limits"] = limits
        r = self.w.create_directive(fid, command, **fields)
        check(r.status in (201, 202), f"create directive: {r.status} {short(r.body)}")
        did = r.body["directive_id"]
        if r.body.get("state") == "awaiting_approval":
            # the policy engine may hold non-default ports for approval: another user approves
            if self._approver is None:
                self._approver = self.w.other_user("nxsec-approver")[1]
            a = self.w.api("POST", f"/facilities/{fid}/directives/{did}/approve", {},
                           token=self._approver)
            H.expect_status(a, (200, 201, 204), "approve")
        return did

    def run(self, fid, command, timeout=90, **kw):
        did = self.directive(fid, command, timeout=timeout, **kw)
        d = NH.wait_state(self.w, fid, did, timeout=timeout + 30, nx=self.nx)
        return did, d

    def log(self, fid, did, stream):
        return NH.log_text(self.w, fid, did, stream)

    def egress(self, fid, did):
        r = self.w.api("GET", f"/facilities/{fid}/directives/{did}/egress_events")
        H.expect_status(r, 200, "GET egress_events")
        ev = r.body.get("egress_events") if isinstance(r.body, dict) else None
        check(isinstance(ev, list), f"egress_events body: {short(r.body)}")
        return ev

    def diff(self, fid, did):
        r = self.w.api("GET", f"/facilities/{fid}/directives/{did}/diff")
        return r.status, r.raw.decode("utf-8", "replace")

    def describe(self, fid, did):
        try:
            out, err = self.log(fid, did, "stdout"), self.log(fid, did, "stderr")
        except Exception as e:  # noqa: BLE001
            out = err = f"(logs unavailable: {e})"
        return f"stdout {short(out)}; stderr {short(err, 1500)}; {self.nx.describe()}"


def expect_state(u, fid, did, d, state):
    eq(d.get("state"), state, f"directive state ({short(d)}); {u.describe(fid, did)}")


# ---------------------------------------------------------------------------------------------
# egress audit through the user API


def test_egress_audit_readable_through_user_api(ctx):
    """An untrusted directive fetches http://allowed.test/hello.txt (allowlisted) and tries
    http://evil.test/: GET .../egress_events returns an allow OK record for allowed.test:80
    (with resolved_ip) and a deny NOT_IN_ALLOWLIST one for evil.test (spec nexus §7.10, issue 6
    item 2: readable through the user API)."""
    with contextlib.ExitStack() as st:
        u = Untrusted(ctx, st)
        fid = u.facility()
        did, d = u.run(fid, "curl -sS --max-time 20 http://allowed.test/hello.txt; "
                            "curl -s --max-time 20 -o /dev/null http://evil.test/; exit 0",
                       net=REPO_NET)
        expect_state(u, fid, did, d, "succeeded")
        eq(u.log(fid, did, "stdout"), HELLO.encode(), f"stdout; {u.describe(fid, did)}")
        ev = u.egress(fid, did)
        ok = [e for e in ev if e.get("dest_host") == "allowed.test" and e.get("decision") == "allow"]
        check(ok and ok[0].get("reason_code") == "OK" and ok[0].get("dest_port") == 80,
              f"no allow OK record for allowed.test:80: {ev}")
        eq(ok[0].get("resolved_ip"), V4_S, f"resolved_ip ({ok[0]})")
        eq(ok[0].get("directive_id"), did, f"directive_id of the record ({ok[0]})")
        bad = [e for e in ev if e.get("dest_host") == "evil.test"]
        check(bad and all(e.get("decision") == "deny" and
                          e.get("reason_code") == "NOT_IN_ALLOWLIST" for e in bad),
              f"evil.test records: {bad} (all: {ev})")


# ---------------------------------------------------------------------------------------------
# host files


def test_nexusd_config_credentials_and_keys_unreadable(ctx):
    """The directive tries nexusd's own config file, its work_dir (.nexus: WAL, credentials),
    a TLS key file named in the config, and /proc/1/root: nothing of them reaches its output
    (Appendix B #2). The config carries a marker line to look for."""
    def plant(nx):
        with open(nx.config_path, "a") as f:
            f.write(f"# {SECRET}\n")
    with contextlib.ExitStack() as st:
        u = Untrusted(ctx, st, pre_start=plant)
        cfg, wd, key = u.nx.config_path, u.nx.work_dir, ctx.conf["secret_key"]
        fid = u.facility()
        cmd = (f"cat {cfg} {key} /proc/1/root{cfg} /workspace/../nexus.yaml 2>&1; "
               f"ls -la {wd} {wd}/.nexus {os.path.dirname(cfg)} 2>&1; "
               f"cat {wd}/.nexus/* 2>&1; exit 0")
        did, d = u.run(fid, cmd)
        expect_state(u, fid, did, d, "succeeded")
        out = u.log(fid, did, "stdout") + u.log(fid, did, "stderr")
        check(SECRET.encode() not in out, f"a host secret reached the directive: {short(out, 2000)}")
        with open(cfg) as f:
            check(SECRET in f.read(), "control: the marker is in the host config")


# ---------------------------------------------------------------------------------------------
# symlink escapes: diff, overflow, clone


def _host_git_diff(path):
    p = NH.git("-c", "safe.directory=*", "diff", "HEAD", cwd=path, check_rc=False)
    return p.stdout.decode("utf-8", "replace") + p.stderr.decode("utf-8", "replace")


def test_diff_does_not_follow_planted_git_into_host_repo(ctx):
    """After a clone of REPO (through the proxy), directive 1 replaces .git with a gitfile
    pointing at a host repository holding a secret, directive 2 with a symlink to it,
    directive 3 turns README.md into a symlink to a host key file: none of the three diffs
    nexusd collects contains the secret (diff runs sandboxed, D15; Appendix B #5). Control:
    the host's git on the planted facility does print the secret."""
    srepo = ctx.conf["secret_repo"]
    with contextlib.ExitStack() as st:
        u = Untrusted(ctx, st)
        fid = u.facility(REPO)
        plants = [
            f"test -d .git || exit 90; echo more >> README.md; rm -rf .git; "
            f"printf 'gitdir: {srepo}/.git\\n' > .git",
            f"rm -f .git; ln -s {srepo}/.git .git; echo again >> README.md",
            f"rm -f .git; ln -sfn {ctx.conf['secret_key']} README.md",
        ]
        fac = u.nx.facility_path(fid)
        for i, cmd in enumerate(plants):
            did, d = u.run(fid, cmd, net=REPO_NET)
            check(d.get("state") in ("succeeded", "failed"), f"plant {i}: {short(d)}")
            if i == 0:
                expect_state(u, fid, did, d, "succeeded")
            status, diff = u.diff(fid, did)
            check(SECRET not in diff, f"plant {i}: the diff leaks the host secret: "
                                      f"{short(diff, 1500)}")
            if i == 0:
                control = _host_git_diff(fac)
                check(SECRET in control, f"control: the host's git on the planted facility "
                                         f"does not show the secret, so the attack is void: "
                                         f"{short(control, 800)}")


def test_overflow_writes_never_follow_symlinks_out_of_the_facility(ctx):
    """log_overflow on, a tiny output cap: directive 1 makes overflow/<its id> a symlink to a
    host directory, directive 2 makes overflow itself one, both then flood stdout; the host
    directory stays empty (spec nexus §5.10 ADVISED, Appendix B #5). Control: directive 3 with
    no symlink gets its overflow file inside the facility."""
    esc = ctx.conf["escape_dir"]
    over = {"log": {"max_output_bytes": 4096, "chunk_bytes": 1024},
            "log_overflow": {"enabled": True, "dir": "overflow", "max_bytes_per_stream": 65536}}
    flood = "head -c 200000 /dev/zero | tr '\\0' a"
    with contextlib.ExitStack() as st:
        u = Untrusted(ctx, st, overrides=over)
        fid = u.facility()
        before = sorted(os.listdir(esc))
        d1, r1 = u.run(fid, 'test -n "$CYBROS_DIRECTIVE_ID" || exit 97; mkdir -p overflow && '
                            f'ln -s {esc} "overflow/$CYBROS_DIRECTIVE_ID" && {flood}')
        check(r1.get("exit_code") != 97, "CYBROS_DIRECTIVE_ID is not set inside the sandbox")
        d2, r2 = u.run(fid, f"rm -rf overflow && ln -s {esc} overflow && {flood}")
        after = sorted(os.listdir(esc))
        eq(after, before, f"overflow wrote into the host directory {esc} through a symlink")
        d3, r3 = u.run(fid, f"rm -f overflow; {flood}")
        expect_state(u, fid, d3, r3, "succeeded")
        fac = u.nx.facility_path(fid)
        path = os.path.join(fac, "overflow", d3, "stdout.log")
        check(os.path.isfile(path) and os.path.getsize(path) > 0,
              f"control: no overflow file at {path}; facility: "
              f"{sorted(os.listdir(fac)) if os.path.isdir(fac) else 'missing'}")


def test_cloned_symlinks_stay_inside_the_sandbox(ctx):
    """REPO symlink.git holds `escape` → a host directory and `secretlink` → /etc/shadow. The
    clone (in the sandbox) keeps them as links; the command writes through `escape` and reads
    `secretlink`: the host directory stays empty and no host shadow line reaches the output."""
    esc = ctx.conf["escape_dir"]
    try:
        with open("/etc/shadow") as f:
            shadow = [ln.strip() for ln in f if ln.strip()]
    except OSError:
        shadow = []
    with contextlib.ExitStack() as st:
        u = Untrusted(ctx, st)
        fid = u.facility("http://allowed.test/symlink.git")
        before = sorted(os.listdir(esc))
        did, d = u.run(fid, "test -L escape || exit 91; echo pwned > escape/pwned-by-directive; "
                            "cat secretlink; ls -la; exit 0", net=REPO_NET)
        expect_state(u, fid, did, d, "succeeded")
        eq(sorted(os.listdir(esc)), before, f"a write through the cloned symlink reached the host")
        out = u.log(fid, did, "stdout") + u.log(fid, did, "stderr")
        leaked = [ln for ln in shadow if ln.encode() in out]
        check(not leaked, f"{len(leaked)} host shadow lines reached the output")
        status, diff = u.diff(fid, did)
        check(SECRET not in diff and not any(ln in diff for ln in shadow),
              f"the diff leaks host content: {short(diff)}")


def test_clone_from_a_denied_destination_refused(ctx):
    """repo_url http://evil-loopback.test:CANARY/repo.git, allowlisted: the clone runs in the
    sandbox through the proxy, which refuses it (127.0.0.1): the directive fails, the canary on
    127.0.0.1 sees nothing, and egress_events has deny DNS_DENIED (D15: clone subject to the
    directive's net policy)."""
    p = ctx.canary.port
    ctx.canary.reset()
    with contextlib.ExitStack() as st:
        u = Untrusted(ctx, st)
        fid = u.facility(f"http://evil-loopback.test:{p}/repo.git")
        did, d = u.run(fid, "echo command-ran",
                       net={"mode": "allowlist", "allow": [f"evil-loopback.test:{p}"]})
        check(d.get("state") in ("failed",), f"state ({short(d)}); {u.describe(fid, did)}")
        check(b"command-ran" not in u.log(fid, did, "stdout"), "the command ran after a failed clone")
        check(not ctx.canary.hits, f"the clone reached the host loopback: {ctx.canary.hits}")
        ev = u.egress(fid, did)
        check(any(e.get("dest_host") == "evil-loopback.test" and e.get("decision") == "deny" and
                  e.get("reason_code") == "DNS_DENIED" for e in ev),
              f"no deny DNS_DENIED record for the clone: {ev}")


# ---------------------------------------------------------------------------------------------
# repository code


def _hostile_config(root):
    """Scripts on the HOST (absolute paths outside any sandbox) that leave a marker when run,
    and the git config that calls them."""
    mdir = os.path.join(root, "markers")
    os.makedirs(os.path.join(mdir, "hooks"), exist_ok=True)
    os.chmod(mdir, 0o777)

    def script(path, kind, tail):
        with open(path, "w") as f:
            f.write(f"#!/bin/sh\ntouch {mdir}/PWNED.{kind}\n{tail}")
        os.chmod(path, 0o755)
    for kind in ("fsmonitor", "diffext", "pager"):
        script(os.path.join(mdir, f"{kind}.sh"), kind, "exit 0\n")
    script(os.path.join(mdir, "textconv.sh"), "textconv", 'cat "$1"\n')
    script(os.path.join(mdir, "clean.sh"), "clean", "cat\n")
    script(os.path.join(mdir, "smudge.sh"), "smudge", "cat\n")
    for hook in ("post-checkout", "post-index-change", "reference-transaction", "pre-commit"):
        script(os.path.join(mdir, "hooks", hook), f"hook-{hook}", "exit 0\n")
    config = (f"[core]\n\tfsmonitor = {mdir}/fsmonitor.sh\n\thooksPath = {mdir}/hooks\n"
              f"\tpager = {mdir}/pager.sh\n"
              f"[diff]\n\texternal = {mdir}/diffext.sh\n"
              f"[diff \"evil\"]\n\ttextconv = {mdir}/textconv.sh\n"
              f"[filter \"evil\"]\n\tclean = {mdir}/clean.sh\n\tsmudge = {mdir}/smudge.sh\n")
    return mdir, config


def test_hostile_repo_config_runs_nothing_on_host(ctx):
    """The directive appends core.fsmonitor, core.hooksPath, diff.external, a textconv and
    clean/smudge filters (with .gitattributes) to .git/config — all naming scripts on the host
    — and changes a file; nexusd's diff collection runs none of them on the host and still
    returns the change (D15; spec nexus §5.12, Appendix B #1). Control: the host's git diff on
    the same facility runs them."""
    mdir, config = _hostile_config(ctx.tmp)
    with contextlib.ExitStack() as st:
        u = Untrusted(ctx, st)
        fid = u.facility(REPO)
        esc = config.replace("'", "'\"'\"'")
        plant = (f"test -d .git || exit 90; printf '%s' '{esc}' >> .git/config && "
                 f"echo '* filter=evil diff=evil' > .gitattributes && "
                 f"echo changed-by-directive >> README.md")
        did, d = u.run(fid, plant, net=REPO_NET)
        expect_state(u, fid, did, d, "succeeded")
        marks = sorted(n for n in os.listdir(mdir) if n.startswith("PWNED."))
        check(not marks, f"repository-controlled code ran on the host: {marks}")
        status, diff = u.diff(fid, did)
        check(status == 200 and "+changed-by-directive" in diff,
              f"diff with the hostile config: HTTP {status} {short(diff)}; {u.describe(fid, did)}")
        _host_git_diff(u.nx.facility_path(fid))
        live = sorted(n for n in os.listdir(mdir) if n.startswith("PWNED."))
        check(live, "control: the host's git ran none of the planted config; the test proves "
                    "nothing")
        S.log(f"control: the host's git diff ran {live}")


# ---------------------------------------------------------------------------------------------
# daemon endpoints


def test_daemon_metrics_and_health_unreachable_from_inside(ctx):
    """nexusd's observability listener (127.0.0.1:P on the host side) answers the test, but
    from inside the sandbox: a direct connect fails (own netns), and the proxy refuses
    http://127.0.0.1:P, http://localhost:P and the allowlisted http://evil-loopback.test:P
    (DNS_DENIED / NOT_IN_ALLOWLIST) — no metrics text reaches the output (Appendix B #6, #10)."""
    with contextlib.ExitStack() as st:
        u = Untrusted(ctx, st, overrides={"observability": {"enabled": True}})
        port = u.nx.obs_port
        m = NH.wait_until(lambda: (lambda x: x if x.status == 200 else None)(
            u.nx.obs_get("/metrics")), 20, what="/metrics from the test (control)")
        check(b"nexusd_" in m.raw, "control: /metrics has no nexusd_ families")
        fid = u.facility()
        py = ("import socket\ns=socket.socket()\ns.settimeout(3)\n"
              f"try:\n s.connect(('127.0.0.1',{port})); print('DIRECT-CONNECTED')\n"
              "except OSError as e:\n print('direct', e.errno)\n")
        cmd = (f"python3 -c \"{py}\"; "
               f"curl -s --max-time 10 http://127.0.0.1:{port}/metrics; "
               f"curl -s --max-time 10 http://localhost:{port}/healthz; "
               f"curl -s --max-time 10 http://evil-loopback.test:{port}/metrics; "
               f"curl -s --max-time 10 --socks5-hostname 127.0.0.1:9080 "
               f"http://evil-loopback.test:{port}/readyz; exit 0")
        did, d = u.run(fid, cmd, net={"mode": "allowlist",
                                      "allow": [f"evil-loopback.test:{port}",
                                                f"localhost:{port}"]})
        expect_state(u, fid, did, d, "succeeded")
        out = u.log(fid, did, "stdout")
        check(b"DIRECT-CONNECTED" not in out, f"direct connect to the daemon port: {out!r}")
        check(b"nexusd_" not in out and b"\nok" not in b"\n" + out,
              f"daemon endpoint content reached the sandbox: {short(out)}")
        ev = u.egress(fid, did)
        check(len([e for e in ev if e.get("decision") == "deny"]) >= 4,
              f"expected 4 deny records: {ev}")
        check(not [e for e in ev if e.get("decision") == "allow"], f"allowed: {ev}")
        check(any(e.get("dest_host") == "evil-loopback.test" and
                  e.get("reason_code") == "DNS_DENIED" for e in ev), f"records: {ev}")


# ---------------------------------------------------------------------------------------------
# resources


MEMHOG = ("python3 -c \"import sys\nh=[]\nfor i in range(1024):\n h.append(bytearray(b'x'*(1<<20)))"
          "\n if i % 16 == 0: print('allocated', i, flush=True)\nprint('ALL-ALLOCATED')\"")
FORKBOMB = ("python3 -c \"import os,time\nn=0\nerr=None\nkids=[]\nfor i in range(3000):\n try:\n"
            "  p=os.fork()\n except OSError as e:\n  err=e.errno; break\n if p==0:\n"
            "  time.sleep(30); os._exit(0)\n kids.append(p)\nprint('FORKED', len(kids), err, "
            "flush=True)\nfor p in kids: os.kill(p, 9)\nfor p in kids: os.waitpid(p, 0)\"")


def test_memory_hog_killed_and_reported_as_oom(ctx):
    """limits.memory_mb 64, the command touches up to 1 GiB: killed by the OOM killer, the
    directive is failed (exit 137) with a reason that names the memory limit / OOM (issue 6:
    "An OOM kill is reported as failed with the reason")."""
    with contextlib.ExitStack() as st:
        u = Untrusted(ctx, st)
        fid = u.facility()
        did, d = u.run(fid, MEMHOG, limits={"memory_mb": 64})
        expect_state(u, fid, did, d, "failed")
        out = u.log(fid, did, "stdout")
        check(b"ALL-ALLOCATED" not in out, f"the hog allocated 1 GiB under 64 MiB: {short(out)}")
        eq(d.get("exit_code"), 137, f"exit code; {u.describe(fid, did)}")
        blob = (json.dumps(d) + u.log(fid, did, "stderr").decode("utf-8", "replace")).lower()
        m = re.search(r"\boom\b|out of memory|memory limit|oom[_-]?kill", blob)
        check(m, f"no OOM reason in the directive or its stderr log: {short(blob, 1500)}")
        S.log(f"OOM reported as: ...{blob[max(0, m.start() - 60):m.end() + 60]}...")


def test_fork_bomb_stopped_by_pids_limit(ctx):
    """A bounded fork bomb (3000 sleeping children) in an untrusted directive stops below the
    default pids limit (512): fork fails with EAGAIN (errno 11); the directive ends on time."""
    with contextlib.ExitStack() as st:
        u = Untrusted(ctx, st)
        fid = u.facility()
        did, d = u.run(fid, FORKBOMB, timeout=120)
        out = u.log(fid, did, "stdout").decode("utf-8", "replace")
        m = re.search(r"FORKED (\d+) (\S+)", out)
        check(m, f"no FORKED line; state {d.get('state')}; {u.describe(fid, did)}")
        check(int(m.group(1)) < 600, f"{m.group(1)} forks succeeded under the pids limit")
        eq(m.group(2), "11", "fork errno at the limit (EAGAIN)")


def test_output_flood_truncated_and_daemon_rss_bounded(ctx):
    """An untrusted directive writes 50 MB to stdout with log.max_output_bytes 1 MiB: the
    stored stdout is about the cap, stdout_truncated is set, and nexusd's VmRSS (sampled every
    20 ms) stays under 64 MiB (spec nexus §5.9; the logstream outbox bound)."""
    cap, chunk = 1048576, 65536
    with contextlib.ExitStack() as st:
        u = Untrusted(ctx, st, overrides={"log": {"max_output_bytes": cap, "chunk_bytes": chunk}})
        fid = u.facility()
        samples, stop = [], threading.Event()

        def sample():
            while not stop.is_set():
                v = NH.rss_kib(u.nx.pid)
                if v is not None:
                    samples.append(v)
                stop.wait(0.02)
        t = threading.Thread(target=sample, daemon=True)
        t.start()
        try:
            did, d = u.run(fid, "head -c 52428800 /dev/zero | tr '\\0' 'a'", timeout=120)
        finally:
            stop.set()
            t.join()
        expect_state(u, fid, did, d, "succeeded")
        row = u.w.d(did)
        check(H.col_true(row.get("stdout_truncated")), f"stdout_truncated not set: "
                                                       f"{short(row)}")
        out = u.log(fid, did, "stdout")
        check(cap - chunk <= len(out) <= cap, f"stored stdout {len(out)} bytes, cap {cap}")
        peak = max(samples) if samples else None
        check(peak is not None and len(samples) >= 5, f"too few RSS samples ({len(samples)})")
        S.log(f"flood: nexusd VmRSS peak {peak} KiB over {len(samples)} samples")
        check(peak < RSS_LIMIT_KIB, f"nexusd VmRSS peaked at {peak} KiB (limit {RSS_LIMIT_KIB})")


if __name__ == "__main__":
    sys.exit(S.main(globals(), "test_daemon_e2e.py <nexusd> <mothership>"))
