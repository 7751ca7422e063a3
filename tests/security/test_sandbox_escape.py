#!/usr/bin/env python3
"""Attacks on the untrusted sandbox itself (issue 6 "Tests: tests/security/": host files,
kernel interfaces, network without the proxy, resources). Each case runs attack.py inside
`nexusd sandbox exec` (the full untrusted stack: cgroup + bwrap + seccomp + Landlock + proxy,
sandbox_contract.md) and asserts the denial; where the attack code could silently be broken,
the same code runs on the host first as a control and must succeed there.

Spec: nexus §6.2 (bwrap), §6.5 (Landlock), §6.6 (cgroups), Appendix B #2, #8, #16; DESIGN D13.
Usage: test_sandbox_escape.py <nexusd> [<mothership>]   (TAP on stdout, exit 0)
"""
import ctypes
import json
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sec_harness as S  # noqa: E402
from sec_harness import SECRET, V4_S, V6_S, check, eq, fail, short, skip  # noqa: E402


def landlock_abi():
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall.restype = ctypes.c_long
        v = libc.syscall(444, None, 0, 1)   # landlock_create_ruleset(NULL, 0, VERSION)
        return max(int(v), 0)
    except OSError:
        return 0


# ---------------------------------------------------------------------------------------------
# host files


def test_write_outside_workspace_fails_and_workspace_write_lands_on_host(ctx):
    """Writes to /, /etc, /usr, /var/tmp, /run/nexus and the sandbox helper fail; /workspace
    is writable and the file appears in the host directory; /tmp is private (a file written
    there is not in the host's /tmp). Spec nexus §12 #141, #142; D13."""
    marker = f"nxsec-{os.getpid()}-{os.urandom(4).hex()}"
    outside = ["/" + marker, "/etc/" + marker, "/usr/" + marker, "/var/tmp/" + marker,
               "/run/nexus/sandbox", "/run/nexus/" + marker, "/proc/sys/kernel/hostname",
               "/sys/fs/cgroup/" + marker]
    inside = ["/workspace/" + marker, "/tmp/" + marker]
    r, res = ctx.attack(["fs-write"] + outside + inside)
    try:
        for p in outside:
            check(S.is_denied(res.get(p)), f"write to {p} inside the sandbox succeeded; {res}")
        eq(res.get("/workspace/" + marker), "OK", f"write to /workspace ({res})")
        eq(res.get("/tmp/" + marker), "OK", f"write to the private /tmp ({res})")
        with open(os.path.join(r.ws, marker)) as f:
            eq(f.read(), "written-by-attack\n", "the workspace file seen from the host")
        for p in ["/" + marker, "/etc/" + marker, "/usr/" + marker, "/var/tmp/" + marker,
                  "/tmp/" + marker]:
            check(not os.path.exists(p), f"{p} appeared on the HOST")
    finally:
        for p in ["/" + marker, "/etc/" + marker, "/usr/" + marker, "/var/tmp/" + marker,
                  "/tmp/" + marker]:
            try:
                os.unlink(p)
            except OSError:
                pass


def _host_shadow_lines():
    try:
        with open("/etc/shadow") as f:
            return [ln.strip() for ln in f if ln.strip() and not ln.startswith("#")]
    except OSError:
        return []


def test_host_etc_shadow_unreadable(ctx):
    """/etc/shadow, /etc/gshadow and the host root reached through /proc never yield the host's
    shadow entries (Appendix B #2: the reference bound the host /etc)."""
    host = _host_shadow_lines()
    check(host, "control: the host has no readable /etc/shadow to protect")
    paths = ["/etc/shadow", "/etc/gshadow", "/proc/1/root/etc/shadow",
             "/proc/self/root/etc/shadow", "/run/nexus/../../etc/shadow"]
    r, res = ctx.attack(["fs-read"] + paths)
    for p in paths:
        data = (res.get(p) or {}).get("data") or ""
        leaked = [ln for ln in host if ln in data]
        check(not leaked, f"{p} inside the sandbox returned {len(leaked)} host shadow "
                          f"entries")


def test_etc_is_generated_not_the_host_etc(ctx):
    """The sandbox's /etc is the generated minimal one (D13: never the host /etc): no shadow,
    no sudoers, no ssh host keys, and /etc/passwd differs from the host's."""
    r, res = ctx.attack(["ls", "/etc"])
    listing = res.get("/etc")
    check(isinstance(listing, list), f"cannot list /etc inside: {res}")
    for n in ("shadow", "gshadow", "sudoers", "ssh", "machine-id", "nexusd"):
        check(n not in listing, f"/etc inside the sandbox has {n!r}: {listing}")
    host = sorted(os.listdir("/etc"))
    check(len(listing) < len(host) // 2,
          f"/etc inside has {len(listing)} entries, the host's {len(host)}: looks like the "
          f"host /etc ({listing[:40]})")
    r2, res2 = ctx.attack(["fs-read", "/etc/passwd"])
    inside = (res2.get("/etc/passwd") or {}).get("data")
    with open("/etc/passwd") as f:
        check(inside != f.read(), "/etc/passwd inside is the host's /etc/passwd")


def test_nexusd_config_and_key_files_unreadable(ctx):
    """A nexusd-like config and a client key on the host (under /var/tmp, mode 0644/0600) are
    neither readable nor listable from inside, nor through /proc/1/root; the workspace CA file
    is readable in the same run (control)."""
    c = ctx.conf
    paths = [c["secret_config"], c["secret_key"], "/proc/1/root" + c["secret_config"],
             "/proc/self/root" + c["secret_key"], "/workspace/ca.pem"]
    r = ctx.sandbox("python3 /workspace/attack.py fs-read " + " ".join(paths) +
                    "; python3 /workspace/attack.py ls " + c["secret_dir"] + " /var/tmp /root")
    eq(r.rc, 0, f"exit status; {r.describe()}")
    check(SECRET not in r.out and SECRET not in r.err,
          f"host secret leaked into the sandbox: {short(r.out, 2000)}")
    res = r.json(0)
    eq((res.get("/workspace/ca.pem") or {}).get("result"), "OK",
       f"control: reading /workspace/ca.pem ({res})")
    for p in paths[:4]:
        check((res.get(p) or {}).get("result") != "OK", f"{p} is readable inside: {res.get(p)}")
    ls = r.json(1)
    check(not isinstance(ls.get(c["secret_dir"]), list),
          f"the host secret directory is listable inside: {ls}")


def test_cwd_outside_workspace_refused(ctx):
    """--cwd that escapes /workspace (lexically or absolute elsewhere) is refused before the
    command runs (spec nexus §6.2 step 2, §12 #121/#124): exit 125, nothing executed."""
    for cwd in ("/workspace/../etc", "../..", "/etc"):
        ws = ctx.workspace()
        r = ctx.sandbox("touch /workspace/ran; echo ran", ws=ws, extra=["--cwd", cwd])
        check(r.rc == 125 or (r.rc not in (0, None) and "ran" not in r.out),
              f"--cwd {cwd!r} was not refused; {r.describe()}")
        check(not os.path.exists(os.path.join(ws, "ran")),
              f"the command ran with --cwd {cwd!r}; {r.describe()}")


# ---------------------------------------------------------------------------------------------
# kernel interfaces


def test_tiocsti_injection_denied(ctx):
    """TIOCSTI (and TIOCLINUX) on a pty made the controlling terminal is refused (seccomp;
    bwrap --new-session), no byte is injected. Control: the same code injects on the host."""
    control = ctx.host_attack(["tiocsti"])
    r, res = ctx.attack(["tiocsti"])
    check(res.get("injected") is not True and S.is_denied(res.get("tiocsti")),
          f"TIOCSTI injected a byte inside the sandbox: {res}")
    for fd in (0, 1, 2):
        check(S.is_denied(res.get(f"tiocsti_fd{fd}")), f"TIOCSTI on fd {fd} succeeded: {res}")
    check(res.get("tioclinux") != "OK", f"TIOCLINUX succeeded: {res}")
    if res.get("openpty") == "OK":
        eq(res.get("tiocsti"), "EPERM", f"TIOCSTI errno inside (seccomp) — {res}")
    S.log(f"TIOCSTI control on the host: {control}; inside: {res}")
    check(control.get("injected") is True or control.get("tiocsti") != "OK",
          f"control: inconsistent host result {control}")


def test_ptrace_of_sibling_denied(ctx):
    """ptrace ATTACH/SEIZE, process_vm_readv and /proc/PID/mem on a sibling process all fail
    (seccomp EPERM). Control: on the host the same code attaches."""
    p = subprocess.run(["sh", "-c", f"sleep 30 & pid=$!; {sys.executable} "
                        f"{S.HERE}/attack.py ptrace $pid; kill $pid"],
                       capture_output=True, text=True, timeout=60)
    control = json.loads(p.stdout.strip().splitlines()[-1])
    eq(control.get("attach"), "OK", f"control: ptrace attach on the host {control}")
    r = ctx.sandbox("sleep 30 & pid=$!; python3 /workspace/attack.py ptrace $pid; kill $pid")
    eq(r.rc, 0, f"exit status; {r.describe()}")
    res = r.json()
    for k in ("attach", "seize", "proc_mem"):
        check(S.is_denied(res.get(k)), f"{k} of a sibling succeeded inside: {res}")
    eq(res.get("process_vm_readv"), "EPERM",
       f"process_vm_readv (EFAULT would mean it was allowed) — {res}")


def test_mount_family_denied(ctx):
    """mount (tmpfs over /tmp, bind / onto /workspace, remount / rw), umount2 /workspace and
    pivot_root all fail."""
    r, res = ctx.attack(["mount"])
    for k, v in res.items():
        check(S.is_denied(v), f"{k} succeeded inside the sandbox: {res}")


def test_new_user_namespace_denied(ctx):
    """unshare(CLONE_NEWUSER/NEWNET/NEWNS), clone3 with CLONE_NEWUSER (ENOSYS), setns, and
    `unshare -U true` all fail (seccomp + bwrap --disable-userns). Control: the host can."""
    control = ctx.host_attack(["userns"])
    eq(control.get("unshare_user"), "OK", f"control: unshare(CLONE_NEWUSER) on the host {control}")
    r = ctx.sandbox("python3 /workspace/attack.py userns; unshare -U true; echo rc=$?")
    eq(r.rc, 0, f"exit status; {r.describe()}")
    res = r.json()
    for k in ("unshare_user", "unshare_net", "unshare_mnt", "clone3_newuser", "setns_pid1_net"):
        check(res.get(k) != "OK", f"{k} succeeded inside the sandbox: {res}")
    eq(res.get("clone3_newuser"), "ENOSYS", f"clone3 must be ENOSYS (libc falls back to the "
                                            f"filtered clone) — {res}")
    m = re.search(r"rc=(\d+)", r.out)
    check(m and m.group(1) != "0", f"`unshare -U true` succeeded inside: {r.out!r}")


def test_io_uring_denied(ctx):
    """io_uring_setup fails inside (seccomp). Control: it works on the host."""
    control = ctx.host_attack(["io_uring"])
    r, res = ctx.attack(["io_uring"])
    check(S.is_denied(res.get("io_uring_setup")), f"io_uring_setup succeeded inside: {res}")
    S.log(f"io_uring control on the host: {control}")


def test_bpf_perf_keyctl_userfaultfd_modules_denied(ctx):
    """bpf, perf_event_open, keyctl, add_key, userfaultfd, open_by_handle_at, init_module and
    kexec_load all fail inside."""
    r, res = ctx.attack(["syscalls"])
    for k, v in res.items():
        check(S.is_denied(v), f"{k} succeeded inside the sandbox: {res}")


def test_raw_and_packet_sockets_denied(ctx):
    """Raw IPv4 (ICMP, TCP) and AF_PACKET sockets cannot be created (no CAP_NET_RAW; seccomp).
    Control: the host (root) can."""
    control = ctx.host_attack(["sockets"])
    eq(control.get("raw_icmp"), "OK", f"control: raw socket on the host {control}")
    r, res = ctx.attack(["sockets"])
    for k in ("raw_icmp", "raw_tcp", "packet"):
        check(S.is_denied(res.get(k)), f"{k} socket created inside the sandbox: {res}")


def test_udp_datagrams_reach_nothing(ctx):
    """UDP to the test servers' echo port (v4 and v6) never arrives: the sandbox's netns has
    no route. Control: the same datagram from the test netns is echoed."""
    targets = [f"{V4_S}:53", f"[{V6_S}]:53"]
    control = ctx.host_attack(["sockets"] + targets)
    for t in targets:
        eq(control.get("udp " + t), "ECHOED", f"control: UDP {t} from the test netns {control}")
    mark = ctx.events_mark()
    r, res = ctx.attack(["sockets"] + targets)
    for t in targets:
        check(res.get("udp " + t) != "ECHOED", f"UDP {t} from inside was answered: {res}")
    got = [e for e in ctx.events_since(mark) if e.get("kind") == "udp"]
    check(not got, f"the UDP server received datagrams from the sandbox: {got}")


# ---------------------------------------------------------------------------------------------
# network without the proxy


def test_direct_tcp_to_any_address_fails(ctx):
    """Direct connects (no proxy) to the test servers (v4, v6) and to a host-loopback service
    all fail and nothing reaches them; the proxy port itself is reachable (control), as are the
    servers from the test netns (control)."""
    control = ctx.host_attack(["connect", f"{V4_S}:80", f"[{V6_S}]:7"])
    eq(control, {f"{V4_S}:80": "OK", f"[{V6_S}]:7": "OK"}, "control: connects from the test netns")
    ctx.canary.reset()
    mark = ctx.events_mark()
    p = ctx.canary.port
    targets = [f"{V4_S}:80", f"{V4_S}:443", f"{V4_S}:7", f"[{V6_S}]:80", f"127.0.0.1:{p}",
               f"[::1]:{p}", "11.22.33.1:22"]
    r, res = ctx.attack(["connect", S.PROXY] + targets)
    eq(res.get(S.PROXY), "OK", f"control: the proxy port inside the sandbox ({res})")
    for t in targets:
        check(res.get(t) != "OK", f"direct connect to {t} succeeded inside: {res}")
    check(not ctx.canary.hits, f"the host-loopback canary was reached: {ctx.canary.hits}")
    got = [e for e in ctx.events_since(mark) if e.get("kind") in ("tcp", "http")]
    check(not got, f"test servers saw connections from the sandbox: {got}")


def test_dns_lookup_fails(ctx):
    """No name resolves inside (no DNS server, no test names in the generated /etc/hosts):
    the proxy resolves, never the sandbox (spec nexus §7.8)."""
    names = ["allowed.test", "evil-loopback.test", "meta.test", "example.com"]
    r, res = ctx.attack(["dns"] + names)
    for n in names:
        check(not isinstance(res.get(n), list), f"{n} resolved inside the sandbox: {res}")


def test_landlock_denies_loopback_bind_and_other_ports(ctx):
    """Landlock net rules (ABI >= 4): bind on loopback is refused (EACCES) and a TCP connect
    to a loopback port other than the proxy's is refused by Landlock (EACCES, not
    ECONNREFUSED), while the proxy port connects."""
    abi = landlock_abi()
    if abi < 4:
        skip(f"kernel Landlock ABI {abi} < 4 (no TCP rules)")
    r = ctx.sandbox("python3 /workspace/attack.py bind 0; "
                    "python3 /workspace/attack.py connect 127.0.0.1:9081 " + S.PROXY)
    eq(r.rc, 0, f"exit status; {r.describe()}")
    eq(r.json(0).get("bind"), "EACCES", f"bind on loopback inside — {r.json(0)}")
    res = r.json(1)
    eq(res.get("127.0.0.1:9081"), "EACCES", f"connect to a non-proxy port — {res}")
    eq(res.get(S.PROXY), "OK", f"control: connect to the proxy port — {res}")


# ---------------------------------------------------------------------------------------------
# resources


def test_fork_bomb_stopped_by_pids_limit(ctx):
    """A (bounded) fork bomb of 3000 sleeping children is stopped by the default pids limit
    (NX_SANDBOX_DEFAULT_PIDS = 512): fork fails with EAGAIN before 600 children, and the
    sandbox ends normally."""
    r, res = ctx.attack(["forkbomb", "3000"], timeout=120)
    check(res.get("forked", 10**6) < 600, f"{res.get('forked')} forks succeeded (pids limit "
                                          f"512 expected): {res}")
    eq(res.get("error"), "EAGAIN", f"fork error at the limit — {res}")


def test_memory_hog_killed(ctx):
    """With limits {"memory_mb": 64} a process touching up to 1 GiB is killed by the OOM killer
    (exit 137 = 128+SIGKILL) before it gets much past 64 MiB, and the kill is reported (stderr
    names the out-of-memory cause)."""
    r = ctx.sandbox("exec python3 /workspace/attack.py memhog 1024", limits={"memory_mb": 64},
                    timeout=120)
    got = [int(m) for m in re.findall(r"allocated (\d+) MiB", r.out)]
    check("allocated_mib" not in r.out, f"the hog allocated all 1024 MiB; {r.describe()}")
    eq(r.rc, 137, f"exit status of the OOM-killed hog; {r.describe()}")
    check(not got or max(got) <= 96, f"the hog got to {max(got)} MiB under a 64 MiB limit")
    check(re.search(r"out of memory|\boom\b", r.err, re.I),
          f"the OOM kill is not reported on stderr; {r.describe()}")


def test_memory_limit_applies_to_whole_tree(ctx):
    """Two children of 40 MiB each, both holding their memory for 3 s, exceed a 64 MiB limit
    together though each fits alone: the cgroup (not a per-process rlimit) kills one. Control:
    one such child alone completes under the same limit."""
    r = ctx.sandbox("python3 /workspace/attack.py memhog 40 3 & python3 /workspace/attack.py "
                    "memhog 40 3 & wait", limits={"memory_mb": 64}, timeout=120)
    done = r.out.count('"allocated_mib"')
    check(done < 2, f"two 40 MiB children held 80 MiB together under a 64 MiB limit; "
                    f"{r.describe()}")
    c = ctx.sandbox("python3 /workspace/attack.py memhog 40 0", limits={"memory_mb": 64},
                    timeout=120)
    eq(c.out.count('"allocated_mib"'), 1, f"control: one 40 MiB child alone; {c.describe()}")


if __name__ == "__main__":
    sys.exit(S.main(globals(), "test_sandbox_escape.py <nexusd> [<mothership>]"))
