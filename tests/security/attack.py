#!/usr/bin/env python3
"""tests/security/attack.py — the attacker. Copied into the sandbox's /workspace and run there
(`python3 /workspace/attack.py CMD ARGS...`); the tests also run some commands on the host as
controls, to prove the attack code works where nothing stops it.

Standard library only (ctypes for the raw syscalls). Every command prints ONE JSON object on
stdout and exits 0 unless the interpreter itself dies (the memory hog is meant to be killed).
errno values are reported by name ("EPERM"), "OK" for success.
"""
import ctypes
import errno
import fcntl
import json
import os
import platform
import select
import signal
import socket
import struct
import sys
import time

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long

# syscall numbers of the two architectures this suite runs on
NR = {
    "x86_64": {"ptrace": 101, "mount": 165, "umount2": 166, "unshare": 272, "setns": 308,
               "io_uring_setup": 425, "clone3": 435, "bpf": 321, "perf_event_open": 298,
               "keyctl": 250, "userfaultfd": 323, "pivot_root": 155,
               "process_vm_readv": 310, "open_by_handle_at": 304, "init_module": 175,
               "kexec_load": 246, "add_key": 248},
    "aarch64": {"ptrace": 117, "mount": 40, "umount2": 39, "unshare": 97, "setns": 268,
                "io_uring_setup": 425, "clone3": 435, "bpf": 280, "perf_event_open": 241,
                "keyctl": 219, "userfaultfd": 282, "pivot_root": 41,
                "process_vm_readv": 270, "open_by_handle_at": 265, "init_module": 105,
                "kexec_load": 104, "add_key": 217},
}[platform.machine()]

CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWNET = 0x00020000, 0x10000000, 0x40000000
TIOCSTI, TIOCSCTTY, TIOCLINUX = 0x5412, 0x540E, 0x541C
PTRACE_ATTACH, PTRACE_SEIZE, PTRACE_DETACH = 16, 0x4206, 17


def ename(e):
    return errno.errorcode.get(e, str(e)) if e else "OK"


def sysc(name, *args):
    """A raw syscall: "OK" or the errno name."""
    ctypes.set_errno(0)
    r = libc.syscall(NR[name], *args)
    return "OK" if r >= 0 else ename(ctypes.get_errno())


def out(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


# ---------------------------------------------------------------------------------------------
# host files


def cmd_fs_write(paths):
    res = {}
    for p in paths:
        try:
            fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.write(fd, b"written-by-attack\n")
            os.close(fd)
            res[p] = "OK"
        except OSError as e:
            res[p] = ename(e.errno)
    out(res)


def cmd_fs_read(paths):
    res = {}
    for p in paths:
        try:
            with open(p, "rb") as f:
                data = f.read(65536)
            res[p] = {"result": "OK", "data": data.decode("latin-1")}
        except OSError as e:
            res[p] = {"result": ename(e.errno)}
    out(res)


def cmd_ls(paths):
    res = {}
    for p in paths:
        try:
            res[p] = sorted(os.listdir(p))
        except OSError as e:
            res[p] = ename(e.errno)
    out(res)


# ---------------------------------------------------------------------------------------------
# kernel interfaces


def _in_child(fn):
    """Runs fn() in a forked child, returns what it sent back (a JSON value)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            v = fn()
        except Exception as e:  # noqa: BLE001 - reported, not hidden
            v = {"exception": repr(e)}
        os.write(w, json.dumps(v).encode())
        os._exit(0)
    os.close(w)
    data = b""
    while True:
        b = os.read(r, 65536)
        if not b:
            break
        data += b
    os.close(r)
    os.waitpid(pid, 0)
    return json.loads(data or b"null")


def cmd_tiocsti(_):
    """Make a pty our controlling terminal (setsid + TIOCSCTTY) and push a byte into its input
    queue with TIOCSTI; then TIOCLINUX. Also TIOCSTI on fds 0-2 (whatever nexusd gave us)."""
    res = {}
    try:
        master, slave = os.openpty()
        res["openpty"] = "OK"
    except OSError as e:
        res["openpty"] = ename(e.errno)
        master = slave = None

    def attack():
        r = {}
        os.setsid()
        try:
            fcntl.ioctl(slave, TIOCSCTTY, 0)
            r["sctty"] = "OK"
        except OSError as e:
            r["sctty"] = ename(e.errno)
        try:
            fcntl.ioctl(slave, TIOCSTI, b"Z")
            r["tiocsti"] = "OK"
        except OSError as e:
            r["tiocsti"] = ename(e.errno)
        try:
            fcntl.ioctl(slave, TIOCLINUX, b"\x06")
            r["tioclinux"] = "OK"
        except OSError as e:
            r["tioclinux"] = ename(e.errno)
        return r
    if slave is not None:
        res.update(_in_child(attack))
        # did a byte arrive? (it would be readable on the master as the echo of the input)
        rl, _, _ = select.select([master], [], [], 0.2)
        res["injected"] = bool(rl) and b"Z" in os.read(master, 64)
    for fd in (0, 1, 2):
        try:
            fcntl.ioctl(fd, TIOCSTI, b"Z")
            res[f"tiocsti_fd{fd}"] = "OK"
        except OSError as e:
            res[f"tiocsti_fd{fd}"] = ename(e.errno)
    out(res)


def cmd_ptrace(args):
    """ptrace and process_vm_readv on a sibling process (pid given by the shell)."""
    pid = int(args[0])
    res = {"target": pid}
    for name, req in (("attach", PTRACE_ATTACH), ("seize", PTRACE_SEIZE)):
        ctypes.set_errno(0)
        r = libc.ptrace(ctypes.c_long(req), ctypes.c_long(pid), None, None)
        res[name] = "OK" if r == 0 else ename(ctypes.get_errno())
        if r == 0:
            if req == PTRACE_ATTACH:
                try:
                    os.waitpid(pid, 0x40000000)  # __WALL: the attach stop
                except OSError:
                    pass
            libc.ptrace(ctypes.c_long(PTRACE_DETACH), ctypes.c_long(pid), None, None)
    buf = ctypes.create_string_buffer(16)
    iov_local = (ctypes.c_void_p * 2)(ctypes.addressof(buf), 16)
    iov_remote = (ctypes.c_void_p * 2)(0x400000, 16)
    res["process_vm_readv"] = sysc("process_vm_readv", pid, iov_local, 1, iov_remote, 1, 0)
    try:
        with open(f"/proc/{pid}/mem", "rb") as f:
            f.seek(0x400000)
            f.read(16)
        res["proc_mem"] = "OK"
    except OSError as e:
        res["proc_mem"] = ename(e.errno)
    out(res)


def cmd_mount(_):
    res = {"tmpfs_on_tmp": sysc("mount", b"none", b"/tmp", b"tmpfs", 0, None),
           "bind_root": sysc("mount", b"/", b"/workspace", None, 0x1000, None),  # MS_BIND
           "remount_root_rw": sysc("mount", None, b"/", None, 0x20, None),  # MS_REMOUNT
           "umount_workspace": sysc("umount2", b"/workspace", 2),  # MNT_DETACH
           "pivot_root": sysc("pivot_root", b"/workspace", b"/workspace")}
    out(res)


def cmd_userns(_):
    res = {"unshare_user": _in_child(lambda: sysc("unshare", CLONE_NEWUSER)),
           "unshare_net": _in_child(lambda: sysc("unshare", CLONE_NEWNET)),
           "unshare_mnt": _in_child(lambda: sysc("unshare", CLONE_NEWNS))}
    # clone3 with CLONE_NEWUSER: struct clone_args is 88 bytes; flags first
    # (exit_signal at offset 32 = SIGCHLD, so the child can be waited for normally)
    args = ctypes.create_string_buffer(struct.pack("<QQQQQ", CLONE_NEWUSER, 0, 0, 0,
                                                   signal.SIGCHLD) + b"\0" * 48)

    def c3():
        ctypes.set_errno(0)
        r = libc.syscall(NR["clone3"], args, 88)
        if r == 0:
            os._exit(0)
        if r > 0:
            os.waitpid(r, 0)
            return "OK"
        return ename(ctypes.get_errno())
    res["clone3_newuser"] = _in_child(c3)
    try:
        fd = os.open("/proc/1/ns/net", os.O_RDONLY)
        res["setns_pid1_net"] = sysc("setns", fd, CLONE_NEWNET)
        os.close(fd)
    except OSError as e:
        res["setns_pid1_net"] = "open:" + ename(e.errno)
    out(res)


def cmd_io_uring(_):
    params = ctypes.create_string_buffer(120)
    res = {"io_uring_setup": sysc("io_uring_setup", 8, params)}
    out(res)


def cmd_syscalls(_):
    """The rest of the denied families: each must fail."""
    attr = ctypes.create_string_buffer(128)
    res = {"bpf": sysc("bpf", 0, attr, 128),
           "perf_event_open": sysc("perf_event_open", attr, 0, -1, -1, 0),
           "keyctl": sysc("keyctl", 0, -3, 0, 0, 0),
           "add_key": sysc("add_key", b"user", b"nxsec", b"x", 1, -3),
           "userfaultfd": sysc("userfaultfd", 0),
           "open_by_handle_at": sysc("open_by_handle_at", -100, attr, 0),
           "init_module": sysc("init_module", attr, 16, b""),
           "kexec_load": sysc("kexec_load", 0, 0, None, 0)}
    out(res)


def cmd_sockets(args):
    """raw, packet and UDP sockets; UDP datagrams to the given host:port targets."""
    res = {}
    for name, fam, typ, proto in (("raw_icmp", socket.AF_INET, socket.SOCK_RAW, 1),
                                  ("raw_tcp", socket.AF_INET, socket.SOCK_RAW, 6),
                                  ("packet", getattr(socket, "AF_PACKET", 17),
                                   socket.SOCK_RAW, 0x0300),
                                  ("ping_dgram", socket.AF_INET, socket.SOCK_DGRAM, 1)):
        try:
            s = socket.socket(fam, typ, proto)
            s.close()
            res[name] = "OK"
        except OSError as e:
            res[name] = ename(e.errno)
    for t in args:
        host, port = t.rsplit(":", 1)
        host = host.strip("[]")
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        try:
            s = socket.socket(fam, socket.SOCK_DGRAM)
            s.settimeout(1.0)
            s.sendto(b"nxsec-udp", (host, int(port)))
            try:
                s.recvfrom(100)
                res["udp " + t] = "ECHOED"
            except socket.timeout:
                res["udp " + t] = "SENT_NO_REPLY"
            s.close()
        except OSError as e:
            res["udp " + t] = ename(e.errno)
    out(res)


# ---------------------------------------------------------------------------------------------
# network


def cmd_connect(args):
    """Direct TCP connects: host:port ... (no proxy)."""
    res = {}
    for t in args:
        host, port = t.rsplit(":", 1)
        host = host.strip("[]")
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.settimeout(3)
        try:
            s.connect((host, int(port)))
            res[t] = "OK"
        except socket.timeout:
            res[t] = "TIMEOUT"
        except OSError as e:
            res[t] = ename(e.errno)
        finally:
            s.close()
    out(res)


def cmd_bind(args):
    """bind+listen on 127.0.0.1:PORT (0 = any)."""
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", int(args[0])))
        s.listen(1)
        out({"bind": "OK", "port": s.getsockname()[1]})
    except OSError as e:
        out({"bind": ename(e.errno)})


def cmd_dns(args):
    res = {}
    for name in args:
        try:
            res[name] = sorted({a[4][0] for a in socket.getaddrinfo(name, 443)})
        except socket.gaierror as e:
            res[name] = "GAIERROR " + str(e.args[0])
        except OSError as e:
            res[name] = ename(e.errno)
    out(res)


def cmd_raw(args):
    """A scripted conversation with HOST:PORT (normally the proxy, 127.0.0.1:9080).
    steps (JSON list): ["send", latin1-text] | ["sendhex", hex] | ["sendrep", text, count] | ["recv", seconds] (read what
    arrives until the peer closes or nothing more comes for that long) | ["sleep", s] |
    ["slow", text, interval, max_seconds] (one byte per interval until closed or max)."""
    host, port = args[0].rsplit(":", 1)
    steps = json.loads(args[1])
    res = {"recv": "", "closed": False}
    t0 = time.monotonic()
    try:
        s = socket.create_connection((host.strip("[]"), int(port)), timeout=10)
    except OSError as e:
        out({"connect": ename(e.errno), "recv": "", "closed": True})
        return
    res["connect"] = "OK"
    try:
        for st in steps:
            op = st[0]
            if op == "send":
                s.sendall(st[1].encode("latin-1"))
            elif op == "sendrep":       # [text, count]: text sent count times
                for _ in range(st[2]):
                    s.sendall(st[1].encode("latin-1"))
            elif op == "sendhex":
                s.sendall(bytes.fromhex(st[1]))
            elif op == "sleep":
                time.sleep(st[1])
            elif op == "recv":
                s.settimeout(st[1])
                while True:
                    try:
                        b = s.recv(65536)
                    except socket.timeout:
                        break
                    if not b:
                        res["closed"] = True
                        break
                    res["recv"] += b.decode("latin-1")
            elif op == "slow":
                text, interval, maxs = st[1], st[2], st[3]
                i = 0
                start = time.monotonic()
                while time.monotonic() - start < maxs:
                    try:
                        s.sendall(text[i % len(text)].encode("latin-1"))
                    except OSError:
                        res["closed"] = True
                        break
                    i += 1
                    r, _, _ = select.select([s], [], [], interval)
                    if r:
                        b = s.recv(65536)
                        if not b:
                            res["closed"] = True
                            break
                        res["recv"] += b.decode("latin-1")
                res["slow_seconds"] = round(time.monotonic() - start, 2)
                res["slow_bytes"] = i
    except OSError as e:
        res["error"] = ename(e.errno)
        if e.errno in (errno.ECONNRESET, errno.EPIPE):
            res["closed"] = True
            try:        # whatever the peer answered before it closed
                s.settimeout(0.5)
                res["recv"] += s.recv(65536).decode("latin-1")
            except OSError:
                pass
    finally:
        s.close()
    res["elapsed"] = round(time.monotonic() - t0, 2)
    out(res)


# ---------------------------------------------------------------------------------------------
# resources


def cmd_forkbomb(args):
    """Forks up to N children that each sleep; stops at the first failure. Bounded on purpose:
    even if no pids limit holds, at most N processes exist."""
    n = int(args[0])
    kids, first_err = [], None
    for _ in range(n):
        try:
            pid = os.fork()
        except OSError as e:
            first_err = ename(e.errno)
            break
        if pid == 0:
            time.sleep(30)
            os._exit(0)
        kids.append(pid)
    for pid in kids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    for pid in kids:
        try:
            os.waitpid(pid, 0)
        except OSError:
            pass
    out({"forked": len(kids), "error": first_err})


def cmd_memhog(args):
    """Allocates and touches up to N MiB, printing progress every 16 MiB (bounded); then holds
    the memory for the optional second argument's seconds before reporting."""
    n = int(args[0])
    hold = []
    for i in range(1, n + 1):
        hold.append(bytearray(b"\x01" * (1 << 20)))
        if i % 16 == 0:
            sys.stdout.write(f"allocated {i} MiB\n")
            sys.stdout.flush()
    if len(args) > 1:
        time.sleep(float(args[1]))
    out({"allocated_mib": n})


def cmd_flood(args):
    """Writes N MiB of 'a' to stdout."""
    chunk = b"a" * (1 << 20)
    for _ in range(int(args[0])):
        sys.stdout.buffer.write(chunk)
    sys.stdout.flush()


CMDS = {"fs-write": cmd_fs_write, "fs-read": cmd_fs_read, "ls": cmd_ls,
        "tiocsti": cmd_tiocsti, "ptrace": cmd_ptrace, "mount": cmd_mount, "userns": cmd_userns,
        "io_uring": cmd_io_uring, "syscalls": cmd_syscalls, "sockets": cmd_sockets,
        "connect": cmd_connect, "bind": cmd_bind, "dns": cmd_dns, "raw": cmd_raw,
        "forkbomb": cmd_forkbomb, "memhog": cmd_memhog, "flood": cmd_flood}

if __name__ == "__main__":
    CMDS[sys.argv[1]](sys.argv[2:])
