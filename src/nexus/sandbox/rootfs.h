/* sandbox/rootfs.h — the read-only system tree of the bwrap sandbox: prepare, manifest,
 * verify (spec nexus §6.8 as adapted by DESIGN D13; issue #6 item 3).
 *
 * A prepared rootfs is a directory DIR plus two sibling files OUTSIDE the tree the sandbox
 * sees (so nothing inside can name or alter them):
 *   DIR                    the tree (bwrap: --ro-bind DIR /)
 *   DIR.manifest           one line per entry, sorted by path (strcmp of the raw bytes)
 *   DIR.manifest.sha256    "<hex>  <name>.manifest\n" (sha256sum format)
 * Manifest format (text, '\n' lines; fields separated by one space; path and link target
 * percent-escaped: '%', bytes <= 0x20 and >= 0x7f become %XX, and a lone "-" becomes %2D):
 *   # nexus-rootfs-manifest v1 kind=<debian|busybox> suite=<s> entries=<n>
 *   <path> <type> <mode> <uid> <gid> <size> <mtime> <sha256|-> <target|->
 * path is "/" for DIR itself, else "/a/b"; type f (regular), d (directory), l (symlink); mode
 * is the octal permission bits (07777 mask); mtime is "<sec>.<nsec>"; sha256 only for f, target
 * only for l. Device nodes, fifos and sockets are never recorded: prepare deletes them (bwrap
 * mounts its own /dev) and verify refuses them.
 *
 * Hardening at prepare time (documented in docs/operations.md): setuid/setgid bits are
 * stripped (chmod u-s,g-s) and group/other write bits removed everywhere (the tree is mounted
 * read-only, so nothing inside changes). The tree always contains the empty mount points
 * /dev /proc /sys /tmp /run /workspace that bwrap needs on a read-only root.
 *
 * Verify (fail closed: any error means the rootfs must not be used):
 *   NX_ROOTFS_QUICK  before every use: the manifest's own sha256 matches DIR.manifest.sha256,
 *                    then one walk comparing type/mode/uid/gid/size/mtime/link target of every
 *                    entry (no content hashing), plus the rules below.
 *   NX_ROOTFS_FULL   daemon start, `nexusd rootfs verify`, doctor: QUICK plus the sha256 of
 *                    every regular file.
 * Rules in both modes: no setuid/setgid bit; nothing writable by a user other than root or
 * the daemon's euid (group/other write, or owner write by another uid); no device/fifo/socket;
 * no mount point inside the tree; DIR, the manifest and its .sha256 owned by root or euid and
 * not group/other-writable. The first difference is reported naming the path:
 *   `rootfs /srv/rootfs: /usr/bin/git: size 1234 != manifest 1200`,
 *   `rootfs /srv/rootfs: /etc/evil: not in manifest`, `...: /bin/ls: missing`.
 *
 * The walk opens every directory relative to its parent's fd (O_NOFOLLOW|O_DIRECTORY), never
 * follows a symlink and never crosses a mount. prepare is blocking (minutes for Debian):
 * call it from a thread-pool job or the CLI. verify on the Debian tree (10 865 entries,
 * 221 MiB, warm cache): QUICK 50-75 ms, FULL 0.4-0.5 s — both belong on the thread pool
 * (docs/operations.md). No global state. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "core/error.h"

#define NX_ROOTFS_PATH_MAX 4096
/* Caps that bound a walk of a hostile or corrupted tree. */
#define NX_ROOTFS_MAX_ENTRIES 500000
#define NX_ROOTFS_MAX_DEPTH 64
#define NX_ROOTFS_MANIFEST_MAX (256u << 20)     /* bytes */
#define NX_ROOTFS_DEFAULT_SUITE "bookworm"
#define NX_ROOTFS_DEFAULT_MIRROR "http://deb.debian.org/debian"
/* What a directive needs from the Debian tree beyond minbase (git for clone, curl and
 * ca-certificates for TLS through the egress proxy). */
#define NX_ROOTFS_DEFAULT_PACKAGES "ca-certificates,git,curl"
#define NX_ROOTFS_DEFAULT_BUSYBOX "/bin/busybox"

typedef enum nx_rootfs_kind {
        NX_ROOTFS_DEBIAN = 0,   /* mmdebstrap (preferred) or debootstrap, variant minbase */
        NX_ROOTFS_BUSYBOX,      /* busybox-static + applet symlinks: fast tests */
} nx_rootfs_kind;

typedef enum nx_rootfs_mode {
        NX_ROOTFS_QUICK = 0,
        NX_ROOTFS_FULL,
} nx_rootfs_mode;

/* Receives one progress line (no trailing newline). NULL in the opts = stderr. */
typedef void (*nx_rootfs_progress_fn)(void *ud, const char *line);

typedef struct nx_rootfs_opts {
        nx_rootfs_kind kind;
        const char *dir;          /* required; the final tree (need not exist) */
        const char *suite;        /* NULL/"" = NX_ROOTFS_DEFAULT_SUITE */
        const char *mirror;       /* NULL/"" = nx_rootfs_default_mirror() */
        const char *packages;     /* NULL/"" = NX_ROOTFS_DEFAULT_PACKAGES (comma list) */
        const char *busybox;      /* NULL/"" = NX_ROOTFS_DEFAULT_BUSYBOX */
        const char *tool;         /* NULL/"" = mmdebstrap from PATH, else debootstrap; or a
                                   * name/path whose basename says which syntax to use */
        nx_rootfs_progress_fn progress;
        void *progress_ud;
} nx_rootfs_opts;

/* Result of nx_rootfs_prepare. */
#define NX_ROOTFS_BUILT 0
#define NX_ROOTFS_CACHED 1       /* DIR already verified (FULL): nothing was done */

/* Builds the rootfs into "<dir>.tmp-XXXXXX" (a sibling), hardens it, writes the manifest and
 * its .sha256, verifies FULL, then renames the tree into place (RENAME_EXCHANGE with an old
 * tree of ours that failed verification, which is then removed). Holds an exclusive flock on
 * "<dir>.lock" throughout and removes stale "<dir>.tmp-*" left by a killed run. A DIR that
 * exists without a manifest is refused (never replaces a directory that is not ours).
 * Progress: phase lines "rootfs [+12.3s] <phase>" and the tool's own output prefixed
 * "rootfs [mmdebstrap] ". On failure the temporary tree is removed and DIR is untouched.
 * Returns NX_ROOTFS_BUILT, NX_ROOTFS_CACHED, or -1 with err. */
int nx_rootfs_prepare(const nx_rootfs_opts *opts, err_t *err);

/* Verifies DIR against manifest (NULL = "<dir>.manifest"); see the top of this file.
 * 0 = usable; -1 with err naming the first differing path. */
int nx_rootfs_verify(const char *dir, const char *manifest, nx_rootfs_mode mode, err_t *err);

/* Writes "<dir>.manifest" (or manifest) and its ".sha256" for the tree as it is now, after
 * checking the rules above (it does NOT harden: a setuid file is an error here). Atomic
 * (temp file + rename). entries_out (may be NULL) receives the entry count. Used by prepare
 * and by tests. */
int nx_rootfs_manifest_write(const char *dir, const char *manifest, const char *kind_name,
                             const char *suite, size_t *entries_out, err_t *err);

/* "<dir>.manifest" with one trailing '/' of dir ignored. -1 if it does not fit. */
int nx_rootfs_manifest_path(const char *dir, char *out, size_t outsz, err_t *err);

/* Strips setuid/setgid and group/other write bits, owner write of non-root/non-euid owners,
 * and deletes device nodes, fifos and sockets below dir (the prepare hardening step;
 * exposed for tests). changed_out (may be NULL) counts the entries changed. */
int nx_rootfs_harden(const char *dir, size_t *changed_out, err_t *err);

/* The Debian mirror apt on this machine uses: the first "URIs:" of a deb822 stanza with
 * Types: deb in /etc/apt/sources.list.d/ *.sources whose Suites has suite (no "-updates" or
 * "-security"), else the first matching "deb URL suite" line of /etc/apt/sources.list and
 * sources.list.d/ *.list, else NX_ROOTFS_DEFAULT_MIRROR. apt_dir NULL = "/etc/apt" (tests). */
void nx_rootfs_default_mirror(const char *apt_dir, const char *suite, char *out, size_t outsz);

/* Parses "debian" / "busybox". */
int nx_rootfs_kind_parse(const char *s, nx_rootfs_kind *out, err_t *err);
const char *nx_rootfs_kind_name(nx_rootfs_kind kind);

/* The rootfs the bwrap driver must use for this config, or "" for host-directory mode:
 * bwrap.rootfs_path when set (it must have a manifest; not verified here), else "".
 * rootfs.auto is an error pointing at `nexusd rootfs prepare` (the reference downloads Ubuntu
 * tarballs from the internet; we build locally — see docs/operations.md). */
int nx_rootfs_from_config(const nx_config *cfg, char *out, size_t outsz, err_t *err);

/* Removes the tree at path recursively without following symlinks or crossing mounts
 * (unlinkat relative to directory fds). Missing path is not an error. Used for temp trees. */
int nx_rootfs_remove_tree(const char *path, err_t *err);
