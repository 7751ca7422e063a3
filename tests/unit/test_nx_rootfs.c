/* tests/unit/test_nx_rootfs.c — rootfs prepare, manifest and verify (sandbox/rootfs.h). */
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/str.h"
#include "sandbox/rootfs.h"

/* ------------------------------------------------------------ helpers ------------- */

typedef struct fx {
        char base[256];      /* temp directory holding the tree and its manifest */
        char dir[300];       /* base/root */
        char manifest[320];
} fx;

static void fx_init(fx *f)
{
        str_copy(f->base, sizeof(f->base), "/tmp/nx-rootfs-test-XXXXXX");
        assert_non_null(mkdtemp(f->base));
        assert_int_equal(chmod(f->base, 0755), 0);
        assert_true(str_printf(f->dir, sizeof(f->dir), "%s/root", f->base) > 0);
        assert_true(str_printf(f->manifest, sizeof(f->manifest), "%s/root.manifest",
                               f->base) > 0);
}

static void fx_done(fx *f)
{
        err_t err = ERR_INIT;
        assert_int_equal(nx_rootfs_remove_tree(f->base, &err), 0);
}

static void put(const char *dir, const char *rel, const char *text, mode_t mode)
{
        char p[512];
        assert_true(str_printf(p, sizeof(p), "%s/%s", dir, rel) > 0);
        int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
        assert_true(fd >= 0);
        size_t n = strlen(text);
        assert_int_equal(write(fd, text, n), (ssize_t)n);
        assert_int_equal(fchmod(fd, mode), 0);
        close(fd);
}

static void mk(const char *dir, const char *rel, mode_t mode)
{
        char p[512];
        assert_true(str_printf(p, sizeof(p), "%s/%s", dir, rel) > 0);
        assert_int_equal(mkdir(p, mode), 0);
        assert_int_equal(chmod(p, mode), 0);
}

static void path_of(const fx *f, const char *rel, char *out, size_t outsz)
{
        assert_true(str_printf(out, outsz, "%s/%s", f->dir, rel) > 0);
}

/* A small hand-made tree: dirs, files (one with a space and a '%' in its name), symlinks. */
static void make_tree(fx *f)
{
        assert_int_equal(mkdir(f->dir, 0755), 0);
        assert_int_equal(chmod(f->dir, 0755), 0);
        mk(f->dir, "bin", 0755);
        mk(f->dir, "etc", 0755);
        mk(f->dir, "usr", 0755);
        put(f->dir, "bin/tool", "#!/bin/sh\necho tool\n", 0755);
        put(f->dir, "etc/passwd", "root:x:0:0:root:/root:/bin/sh\n", 0644);
        put(f->dir, "etc/odd name%1", "odd\n", 0600);
        char p[512];
        path_of(f, "bin/sh", p, sizeof(p));
        assert_int_equal(symlink("tool", p), 0);
        path_of(f, "lib", p, sizeof(p));
        assert_int_equal(symlink("usr/lib", p), 0);
}

static void make_tree_with_manifest(fx *f)
{
        err_t err = ERR_INIT;
        size_t n = 0;
        make_tree(f);
        int r = nx_rootfs_manifest_write(f->dir, NULL, "busybox", "", &n, &err);
        if (r != 0)
                fail_msg("manifest_write: %s", err.msg);
        assert_int_equal(n, 9);   /* / bin bin/sh bin/tool etc etc/odd etc/passwd lib usr */
}

static void expect_verify_fails(const fx *f, nx_rootfs_mode mode, const char *needle)
{
        err_t err = ERR_INIT;
        assert_int_equal(nx_rootfs_verify(f->dir, NULL, mode, &err), -1);
        if (!strstr(err.msg, needle))
                fail_msg("error \"%s\" does not contain \"%s\"", err.msg, needle);
}

static void expect_verify_ok(const fx *f, nx_rootfs_mode mode)
{
        err_t err = ERR_INIT;
        if (nx_rootfs_verify(f->dir, NULL, mode, &err) != 0)
                fail_msg("verify: %s", err.msg);
}

static char *slurp(const char *path)
{
        FILE *fp = fopen(path, "re");
        assert_non_null(fp);
        char *data = calloc(1, 1 << 20);
        assert_non_null(data);
        size_t n = fread(data, 1, (1 << 20) - 1, fp);
        data[n] = '\0';
        fclose(fp);
        return data;
}

static bool exists(const char *p)
{
        struct stat st;
        return lstat(p, &st) == 0;
}

/* Number of "<base>/root.tmp-*" entries left behind. */
static int count_tmp(const fx *f)
{
        DIR *d = opendir(f->base);
        int n = 0;
        assert_non_null(d);
        struct dirent *de;
        while ((de = readdir(d)))
                n += strncmp(de->d_name, "root.tmp-", 9) == 0;
        closedir(d);
        return n;
}

typedef struct progress_log {
        char text[65536];
        size_t len;
        int lines;
} progress_log;

static void progress_to_log(void *ud, const char *line)
{
        progress_log *l = ud;
        int r = snprintf(l->text + l->len, sizeof(l->text) - l->len, "%s\n", line);
        if (r > 0 && (size_t)r < sizeof(l->text) - l->len)
                l->len += (size_t)r;
        l->lines++;
}

static int prepare_busybox(const fx *f, progress_log *log, err_t *err)
{
        nx_rootfs_opts o = { .kind = NX_ROOTFS_BUSYBOX, .dir = f->dir,
                             .progress = progress_to_log, .progress_ud = log };
        return nx_rootfs_prepare(&o, err);
}

static bool have_busybox(void)
{
        return access(NX_ROOTFS_DEFAULT_BUSYBOX, X_OK) == 0;
}

/* ------------------------------------------------------------ manifest ------------ */

static void test_manifest_path_is_a_sibling_of_the_tree(void **state)
{
        (void)state;
        char out[256];
        err_t err = ERR_INIT;
        assert_int_equal(nx_rootfs_manifest_path("/srv/rootfs/deb", out, sizeof(out), &err), 0);
        assert_string_equal(out, "/srv/rootfs/deb.manifest");
        assert_int_equal(nx_rootfs_manifest_path("/srv/rootfs/deb/", out, sizeof(out), &err), 0);
        assert_string_equal(out, "/srv/rootfs/deb.manifest");
        assert_int_equal(nx_rootfs_manifest_path("", out, sizeof(out), &err), -1);
        assert_int_equal(nx_rootfs_manifest_path("/a/long/dir", out, 8, &err), -1);
}

static void test_manifest_round_trip_verifies_quick_and_full(void **state)
{
        (void)state;
        fx f;
        fx_init(&f);
        make_tree_with_manifest(&f);
        expect_verify_ok(&f, NX_ROOTFS_QUICK);
        expect_verify_ok(&f, NX_ROOTFS_FULL);
        fx_done(&f);
}

static void test_manifest_lines_sorted_escaped_and_digest_written(void **state)
{
        (void)state;
        fx f;
        fx_init(&f);
        make_tree_with_manifest(&f);
        char *m = slurp(f.manifest);
        assert_true(str_has_prefix(m, "# nexus-rootfs-manifest v1 kind=busybox suite=- "
                                      "entries=9\n"));
        /* the root first, then sorted; odd bytes percent-escaped */
        const char *root = strstr(m, "\n/ d 0755 ");
        const char *bin = strstr(m, "\n/bin d ");
        const char *odd = strstr(m, "\n/etc/odd%20name%251 f 0600 ");
        const char *pw = strstr(m, "\n/etc/passwd f 0644 ");
        const char *sh = strstr(m, "\n/bin/sh l 0777 ");
        assert_non_null(root);
        assert_non_null(bin);
        assert_non_null(odd);
        assert_non_null(pw);
        assert_non_null(sh);
        assert_true(root < bin && bin < sh && sh < odd && odd < pw);
        assert_non_null(strstr(sh, " - tool\n"));
        char spath[400];
        assert_true(str_printf(spath, sizeof(spath), "%s.sha256", f.manifest) > 0);
        char *s = slurp(spath);
        assert_int_equal(strlen(s), 64 + 2 + strlen("root.manifest") + 1);
        assert_non_null(strstr(s, "  root.manifest\n"));
        free(s);
        free(m);
        fx_done(&f);
}

static void test_manifest_is_not_inside_the_tree(void **state)
{
        (void)state;
        fx f;
        fx_init(&f);
        make_tree_with_manifest(&f);
        assert_true(exists(f.manifest));
        char p[512];
        path_of(&f, "root.manifest", p, sizeof(p));
        assert_false(exists(p));
        fx_done(&f);
}

static void test_manifest_write_refuses_a_setuid_file(void **state)
{
        (void)state;
        fx f;
        fx_init(&f);
        make_tree(&f);
        char p[512];
        path_of(&f, "bin/tool", p, sizeof(p));
        assert_int_equal(chmod(p, 04755), 0);
        err_t err = ERR_INIT;
        assert_int_equal(nx_rootfs_manifest_write(f.dir, NULL, "busybox", "", NULL, &err), -1);
        assert_non_null(strstr(err.msg, "/bin/tool: setuid/setgid"));
        assert_false(exists(f.manifest));
        fx_done(&f);
}

/* ------------------------------------------------------------ verify -------------- */

static void test_verify_full_catches_content_change_quick_does_not(void **state)
{
        (void)state;
        fx f;
        fx_init(&f);
        make_tree_with_manifest(&f);
        char p[512];
        struct stat st;
        path_of(&f, "etc/passwd", p, sizeof(p));
        assert_int_equal(stat(p, &st), 0);
        /* same size, same mtime: only the content hash can see it */
        put(f.dir, "etc/passwd", "evil:x:0:0:root:/root:/bin/sh\n", 0644);
        struct timespec ts[2] = { st.st_atim, st.st_mtim };
        assert_int_equal(utimensat(AT_FDCWD, p, ts, AT_SYMLINK_NOFOLLOW), 0);
        expect_verify_ok(&f, NX_ROOTFS_QUICK);
        expect_verify_fails(&f, NX_ROOTFS_FULL, "/etc/passwd: content sha256");
        fx_done(&f);
}

static void test_verify_quick_catches_size_change(void **state)
{
        (void)state;
        fx f;
        fx_init(&f);
        make_tree_with_manifest(&f);
        put(f.dir, "bin/tool", "#!/bin/sh\necho tool; rm -rf /\n", 0755);
        expect_verify_fails(&f, NX_ROOTFS_QUICK, "/bin/tool: size");
        fx_done(&f);
}

static void test_verify_quick_catches_mode_change(void **state)
{
        (void)state;
        fx f;
        fx_init(&f);
        make_tree_with_manifest(&f);
        char p[512];
        path_of(&f, "etc/passwd", p, sizeof(p));
        assert_int_equal(chmod(p, 0600), 0);
        expect_verify_fails(&f, NX_ROOTFS_QUICK, "/etc/passwd: mode 0600 != manifest 0644");
        fx_done(&f);
}

static void test_verify_quick_catches_mtime_change(void **state)
{
        (void)state;
        fx f;
        fx_init(&f);
        make_tree_with_manifest(&f);
        char p[512];
        path_of(&f, "etc/passwd", p, sizeof(p));
        struct timespec ts[2] = { { 1000, 0 }, { 1000, 0 } };
        assert_int_equal(utimensat(AT_FDCWD, p, ts, 0), 0);
        expect_verify_fails(&f, NX_ROOTFS_QUICK, "/etc/passwd: mtime 1000.000000000");
        fx_done(&f);
}

static void test_verify_catches_added_file(void **state)
{
        (void)state;
        fx f;
        fx_init(&f);
        make_tree_with_manifest(&f);
        put(f.dir, "usr/implant", "x", 0644);
        /* the directory's mtime changed too; the added entry is reported first by path */
        expect_verify_fails(&f, NX_ROOTFS_QUICK, "/usr");
        fx_done(&f);
}

static void test_verify_names_the_added_path(void **state)
{
        (void)state;
        fx f;
        fx_init(&f);
        make_tree_with_manifest(&f);
        char p[512];
        struct stat st;
        path_of(&f, "usr", p, sizeof(p));
        assert_int_equal(stat(p, &st), 0);
        put(f.dir, "usr/implant", "x", 0644);
        struct timespec ts[2] = { st.st_atim, st.st_mtim };
        assert_int_equal(utimensat(AT_FDCWD, p, ts, 0), 0);   /* hide the dir mtime */
        expect_verify_fails(&f, NX_ROOTFS_QUICK, "/usr/implant: not in manifest");
        fx_done(&f);
}

static void test_verify_catches_removed_file(void **state)
{
        (void)state;
        fx f;
        fx_init(&f);
        make_tree_with_manifest(&f);
        char p[512], d[512];
        struct stat st;
        path_of(&f, "etc", d, sizeof(d));
        assert_int_equal(stat(d, &st), 0);
        path_of(&f, "etc/passwd", p, sizeof(p));
        assert_int_equal(unlink(p), 0);
        struct timespec ts[2] = { st.st_atim, st.st_mtim };
        assert_int_equal(utimensat(AT_FDCWD, d, ts, 0), 0);
        expect_verify_fails(&f, NX_ROOTFS_QUICK, "/etc/passwd: missing");
        fx_done(&f);
}

static void test_verify_catches_retargeted_symlink(void **state)
{
        (void)state;
        fx f;
        fx_init(&f);
        make_tree_with_manifest(&f);
        char p[512], d[512];
        struct stat st, lst;
        path_of(&f, "bin", d, sizeof(d));
        path_of(&f, "bin/sh", p, sizeof(p));
        assert_int_equal(stat(d, &st), 0);
        assert_int_equal(lstat(p, &lst), 0);
        assert_int_equal(unlink(p), 0);
        assert_int_equal(symlink("/tmp", p), 0);   /* same length as "tool" */
        struct timespec ts[2] = { st.st_atim, st.st_mtim };
        struct timespec lts[2] = { lst.st_atim, lst.st_mtim };
        assert_int_equal(utimensat(AT_FDCWD, d, ts, 0), 0);
        assert_int_equal(utimensat(AT_FDCWD, p, lts, AT_SYMLINK_NOFOLLOW), 0);
        expect_verify_fails(&f, NX_ROOTFS_QUICK, "/bin/sh: symlink target \"/tmp\"");
        fx_done(&f);
}

static void test_verify_refuses_setuid_bit(void **state)
{
        (void)state;
        fx f;
        fx_init(&f);
        make_tree_with_manifest(&f);
        char p[512];
        path_of(&f, "bin/tool", p, sizeof(p));
        assert_int_equal(chmod(p, 04755), 0);
        expect_verify_fails(&f, NX_ROOTFS_QUICK, "/bin/tool: setuid/setgid bit set");
        fx_done(&f);
}

static void test_verify_refuses_world_writable_entry(void **state)
{
        (void)state;
        fx f;
        fx_init(&f);
        make_tree_with_manifest(&f);
        char p[512];
        path_of(&f, "etc", p, sizeof(p));
        assert_int_equal(chmod(p, 0777), 0);
        expect_verify_fails(&f, NX_ROOTFS_QUICK, "/etc: writable by a user other than root");
        fx_done(&f);
}

static void test_verify_refuses_fifo(void **state)
{
        (void)state;
        fx f;
        fx_init(&f);
        make_tree_with_manifest(&f);
        char p[512];
        path_of(&f, "etc/pipe", p, sizeof(p));
        assert_int_equal(mkfifo(p, 0644), 0);
        expect_verify_fails(&f, NX_ROOTFS_QUICK, "/etc/pipe: device node, fifo or socket");
        fx_done(&f);
}

static void test_verify_refuses_tampered_manifest(void **state)
{
        (void)state;
        fx f;
        fx_init(&f);
        make_tree_with_manifest(&f);
        char *m = slurp(f.manifest);
        char *pos = strstr(m, "/etc/passwd f 0644");
        assert_non_null(pos);
        pos[14] = '7';   /* 0644 -> 0744 */
        FILE *fp = fopen(f.manifest, "we");
        assert_non_null(fp);
        fputs(m, fp);
        fclose(fp);
        free(m);
        expect_verify_fails(&f, NX_ROOTFS_QUICK, "does not match");
        fx_done(&f);
}

static void test_verify_refuses_missing_manifest(void **state)
{
        (void)state;
        fx f;
        fx_init(&f);
        make_tree(&f);
        expect_verify_fails(&f, NX_ROOTFS_QUICK, "root.manifest");
        fx_done(&f);
}

static void test_verify_refuses_missing_tree(void **state)
{
        (void)state;
        fx f;
        fx_init(&f);
        make_tree_with_manifest(&f);
        err_t err = ERR_INIT;
        assert_int_equal(nx_rootfs_remove_tree(f.dir, &err), 0);
        expect_verify_fails(&f, NX_ROOTFS_FULL, "root");
        fx_done(&f);
}

/* ------------------------------------------------------------ harden/remove ------- */

static void test_harden_strips_setuid_and_group_other_write_and_removes_fifo(void **state)
{
        (void)state;
        fx f;
        fx_init(&f);
        make_tree(&f);
        char tool[512], etc[512], fifo[512];
        path_of(&f, "bin/tool", tool, sizeof(tool));
        path_of(&f, "etc", etc, sizeof(etc));
        path_of(&f, "etc/fifo", fifo, sizeof(fifo));
        assert_int_equal(chmod(tool, 06775), 0);
        assert_int_equal(chmod(etc, 01777), 0);
        assert_int_equal(mkfifo(fifo, 0644), 0);
        size_t changed = 0;
        err_t err = ERR_INIT;
        assert_int_equal(nx_rootfs_harden(f.dir, &changed, &err), 0);
        assert_int_equal(changed, 3);
        struct stat st;
        assert_int_equal(stat(tool, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0755);
        assert_int_equal(stat(etc, &st), 0);
        assert_int_equal(st.st_mode & 07777, 01755);
        assert_false(exists(fifo));
        assert_int_equal(nx_rootfs_manifest_write(f.dir, NULL, "busybox", "", NULL, &err), 0);
        fx_done(&f);
}

static void test_remove_tree_does_not_follow_symlinks_out(void **state)
{
        (void)state;
        fx f, outside;
        fx_init(&f);
        fx_init(&outside);
        make_tree(&f);
        put(outside.base, "keep", "precious", 0644);
        char p[512], keep[512];
        path_of(&f, "escape", p, sizeof(p));
        assert_int_equal(symlink(outside.base, p), 0);
        assert_true(str_printf(keep, sizeof(keep), "%s/keep", outside.base) > 0);
        err_t err = ERR_INIT;
        assert_int_equal(nx_rootfs_remove_tree(f.dir, &err), 0);
        assert_false(exists(f.dir));
        assert_true(exists(keep));
        assert_int_equal(nx_rootfs_remove_tree(f.dir, &err), 0);   /* missing: fine */
        fx_done(&outside);
        fx_done(&f);
}

/* ------------------------------------------------------------ mirror -------------- */

static void write_apt(const char *dir, const char *rel, const char *text)
{
        char p[512];
        assert_true(str_printf(p, sizeof(p), "%s/%s", dir, rel) > 0);
        FILE *fp = fopen(p, "we");
        assert_non_null(fp);
        fputs(text, fp);
        fclose(fp);
}

static void test_default_mirror_reads_deb822_sources(void **state)
{
        (void)state;
        fx f;
        fx_init(&f);
        mk(f.base, "sources.list.d", 0755);
        write_apt(f.base, "sources.list.d/debian.sources",
                  "Types: deb\n"
                  "URIs: http://security.example/debian-security\n"
                  "Suites: bookworm-security\n"
                  "Components: main\n"
                  "\n"
                  "Types: deb\n"
                  "URIs: http://disabled.example/debian\n"
                  "Suites: bookworm\n"
                  "Enabled: no\n"
                  "\n"
                  "Types: deb-src deb\n"
                  "# comment\n"
                  "URIs: http://mirror.example/debian http://second.example/debian\n"
                  "Suites: bookworm bookworm-updates\n"
                  "Components: main\n");
        write_apt(f.base, "sources.list.d/other.sources.disabled",
                  "Types: deb\nURIs: http://wrong.example/\nSuites: bookworm\n");
        char out[256];
        nx_rootfs_default_mirror(f.base, "bookworm", out, sizeof(out));
        assert_string_equal(out, "http://mirror.example/debian");
        fx_done(&f);
}

static void test_default_mirror_reads_one_line_sources_list(void **state)
{
        (void)state;
        fx f;
        fx_init(&f);
        write_apt(f.base, "sources.list",
                  "# deb http://commented.example/debian bookworm main\n"
                  "deb-src http://src.example/debian bookworm main\n"
                  "deb [arch=amd64 signed-by=/x.gpg] http://list.example/debian bookworm main\n");
        char out[256];
        nx_rootfs_default_mirror(f.base, "bookworm", out, sizeof(out));
        assert_string_equal(out, "http://list.example/debian");
        fx_done(&f);
}

static void test_default_mirror_falls_back_to_deb_debian_org(void **state)
{
        (void)state;
        fx f;
        fx_init(&f);
        write_apt(f.base, "sources.list", "deb http://list.example/debian trixie main\n");
        char out[256];
        nx_rootfs_default_mirror(f.base, "bookworm", out, sizeof(out));
        assert_string_equal(out, NX_ROOTFS_DEFAULT_MIRROR);
        fx_done(&f);
}

/* ------------------------------------------------------------ misc ---------------- */

static void test_kind_parse_accepts_debian_and_busybox_only(void **state)
{
        (void)state;
        nx_rootfs_kind k = NX_ROOTFS_DEBIAN;
        err_t err = ERR_INIT;
        assert_int_equal(nx_rootfs_kind_parse("busybox", &k, &err), 0);
        assert_int_equal(k, NX_ROOTFS_BUSYBOX);
        assert_string_equal(nx_rootfs_kind_name(k), "busybox");
        assert_int_equal(nx_rootfs_kind_parse("debian", &k, &err), 0);
        assert_int_equal(k, NX_ROOTFS_DEBIAN);
        assert_int_equal(nx_rootfs_kind_parse("ubuntu", &k, &err), -1);
        assert_non_null(strstr(err.msg, "\"ubuntu\""));
}

static void test_from_config_requires_a_manifest_and_refuses_auto(void **state)
{
        (void)state;
        fx f;
        fx_init(&f);
        make_tree(&f);
        nx_config cfg;
        memset(&cfg, 0, sizeof(cfg));
        char empty[] = "";
        cfg.bwrap.rootfs_path = f.dir;
        char out[512];
        err_t err = ERR_INIT;
        assert_int_equal(nx_rootfs_from_config(&cfg, out, sizeof(out), &err), -1);
        assert_non_null(strstr(err.msg, "has no manifest"));
        assert_int_equal(nx_rootfs_manifest_write(f.dir, NULL, "busybox", "", NULL, &err), 0);
        assert_int_equal(nx_rootfs_from_config(&cfg, out, sizeof(out), &err), 0);
        assert_string_equal(out, f.dir);
        cfg.bwrap.rootfs_path = empty;
        assert_int_equal(nx_rootfs_from_config(&cfg, out, sizeof(out), &err), 0);
        assert_string_equal(out, "");
        cfg.rootfs.autodl = true;
        assert_int_equal(nx_rootfs_from_config(&cfg, out, sizeof(out), &err), -1);
        assert_non_null(strstr(err.msg, "nexusd rootfs prepare"));
        fx_done(&f);
}

static void test_prepare_rejects_bad_suite_mirror_and_packages(void **state)
{
        (void)state;
        fx f;
        fx_init(&f);
        err_t err = ERR_INIT;
        nx_rootfs_opts o = { .kind = NX_ROOTFS_DEBIAN, .dir = f.dir, .suite = "book worm" };
        assert_int_equal(nx_rootfs_prepare(&o, &err), -1);
        assert_non_null(strstr(err.msg, "suite"));
        o.suite = NULL;
        o.mirror = "ftp://x/";
        assert_int_equal(nx_rootfs_prepare(&o, &err), -1);
        assert_non_null(strstr(err.msg, "mirror"));
        o.mirror = "http://x/ y";
        assert_int_equal(nx_rootfs_prepare(&o, &err), -1);
        o.mirror = NULL;
        o.packages = "git;reboot";
        assert_int_equal(nx_rootfs_prepare(&o, &err), -1);
        assert_non_null(strstr(err.msg, "package"));
        o.packages = NULL;
        o.dir = "";
        assert_int_equal(nx_rootfs_prepare(&o, &err), -1);
        assert_false(exists(f.dir));
        fx_done(&f);
}

/* ------------------------------------------------------------ prepare: busybox ---- */

static void test_prepare_busybox_builds_a_verified_tree(void **state)
{
        (void)state;
        if (!have_busybox())
                SKIP_BECAUSE("%s missing (Debian package busybox-static)",
                             NX_ROOTFS_DEFAULT_BUSYBOX);
        fx f;
        fx_init(&f);
        progress_log *log = calloc(1, sizeof(*log));
        err_t err = ERR_INIT;
        int r = prepare_busybox(&f, log, &err);
        if (r != NX_ROOTFS_BUILT)
                fail_msg("prepare: %s\n%s", err.msg, log->text);
        char p[512];
        static const char *const want[] = { "bin/busybox", "bin/sh", "etc/passwd", "proc",
                                            "dev", "tmp", "workspace", "run" };
        for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
                path_of(&f, want[i], p, sizeof(p));
                if (!exists(p))
                        fail_msg("%s missing", p);
        }
        assert_true(exists(f.manifest));
        expect_verify_ok(&f, NX_ROOTFS_FULL);
        assert_non_null(strstr(log->text, "rootfs [+"));
        assert_non_null(strstr(log->text, "rootfs ready: "));
        assert_int_equal(count_tmp(&f), 0);
        free(log);
        fx_done(&f);
}

static void test_prepare_twice_is_a_verified_no_op(void **state)
{
        (void)state;
        if (!have_busybox())
                SKIP_BECAUSE("%s missing (Debian package busybox-static)",
                             NX_ROOTFS_DEFAULT_BUSYBOX);
        fx f;
        fx_init(&f);
        progress_log *log = calloc(1, sizeof(*log));
        err_t err = ERR_INIT;
        assert_int_equal(prepare_busybox(&f, log, &err), NX_ROOTFS_BUILT);
        log->len = 0;
        log->text[0] = '\0';
        assert_int_equal(prepare_busybox(&f, log, &err), NX_ROOTFS_CACHED);
        char want[512];
        assert_true(str_printf(want, sizeof(want), "rootfs ready: %s (verified)", f.dir) > 0);
        if (!strstr(log->text, want))
                fail_msg("no \"%s\" in:\n%s", want, log->text);
        free(log);
        fx_done(&f);
}

static void test_prepare_rebuilds_a_tree_that_no_longer_verifies(void **state)
{
        (void)state;
        if (!have_busybox())
                SKIP_BECAUSE("%s missing (Debian package busybox-static)",
                             NX_ROOTFS_DEFAULT_BUSYBOX);
        fx f;
        fx_init(&f);
        progress_log *log = calloc(1, sizeof(*log));
        err_t err = ERR_INIT;
        assert_int_equal(prepare_busybox(&f, log, &err), NX_ROOTFS_BUILT);
        put(f.dir, "etc/passwd", "evil::0:0::/:/bin/sh\n", 0644);
        expect_verify_fails(&f, NX_ROOTFS_FULL, "/etc/passwd");
        assert_int_equal(prepare_busybox(&f, log, &err), NX_ROOTFS_BUILT);
        assert_non_null(strstr(log->text, "does not verify"));
        expect_verify_ok(&f, NX_ROOTFS_FULL);
        char *pw;
        char p[512];
        path_of(&f, "etc/passwd", p, sizeof(p));
        pw = slurp(p);
        assert_true(str_has_prefix(pw, "root:x:0:0:"));
        free(pw);
        assert_int_equal(count_tmp(&f), 0);
        free(log);
        fx_done(&f);
}

static void test_prepare_refuses_an_existing_dir_without_manifest(void **state)
{
        (void)state;
        fx f;
        fx_init(&f);
        make_tree(&f);
        progress_log *log = calloc(1, sizeof(*log));
        err_t err = ERR_INIT;
        assert_int_equal(prepare_busybox(&f, log, &err), -1);
        assert_non_null(strstr(err.msg, "not a rootfs prepared by nexusd"));
        char p[512];
        path_of(&f, "bin/tool", p, sizeof(p));
        assert_true(exists(p));   /* untouched */
        free(log);
        fx_done(&f);
}

static void test_prepare_removes_stale_temp_trees(void **state)
{
        (void)state;
        if (!have_busybox())
                SKIP_BECAUSE("%s missing (Debian package busybox-static)",
                             NX_ROOTFS_DEFAULT_BUSYBOX);
        fx f;
        fx_init(&f);
        char stale[512];
        assert_true(str_printf(stale, sizeof(stale), "%s.tmp-abc123", f.dir) > 0);
        assert_int_equal(mkdir(stale, 0700), 0);
        put(stale, "half", "x", 0644);
        assert_int_equal(count_tmp(&f), 1);
        progress_log *log = calloc(1, sizeof(*log));
        err_t err = ERR_INIT;
        assert_int_equal(prepare_busybox(&f, log, &err), NX_ROOTFS_BUILT);
        assert_int_equal(count_tmp(&f), 0);
        assert_non_null(strstr(log->text, "left by an interrupted prepare"));
        free(log);
        fx_done(&f);
}

/* bwrap --ro-bind <rootfs> / ... /bin/sh -c 'echo ok' (contract: the rootfs mode of N2). */
static void test_busybox_rootfs_runs_sh_under_bwrap(void **state)
{
        (void)state;
        if (!have_busybox())
                SKIP_BECAUSE("%s missing (Debian package busybox-static)",
                             NX_ROOTFS_DEFAULT_BUSYBOX);
        if (access("/usr/bin/bwrap", X_OK) != 0)
                SKIP_BECAUSE("bubblewrap (/usr/bin/bwrap) not installed");
        fx f;
        fx_init(&f);
        progress_log *log = calloc(1, sizeof(*log));
        err_t err = ERR_INIT;
        assert_int_equal(prepare_busybox(&f, log, &err), NX_ROOTFS_BUILT);
        int pfd[2];
        assert_int_equal(pipe(pfd), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                dup2(pfd[1], 1);
                dup2(pfd[1], 2);
                static const char *const args[] = {
                        "/usr/bin/bwrap", "--ro-bind", "ROOT", "/", "--proc", "/proc",
                        "--dev", "/dev", "--tmpfs", "/tmp", "--unshare-all",
                        "--die-with-parent", "--new-session", "--cap-drop", "ALL", "--",
                        "/bin/sh", "-c", "echo ok; touch /etc/x 2>/dev/null && echo WRITABLE",
                };
                char *argv[sizeof(args) / sizeof(args[0]) + 1];
                for (size_t i = 0; i < sizeof(args) / sizeof(args[0]); i++)
                        argv[i] = strdup(strcmp(args[i], "ROOT") == 0 ? f.dir : args[i]);
                argv[sizeof(args) / sizeof(args[0])] = NULL;
                execv(argv[0], argv);
                _exit(127);
        }
        close(pfd[1]);
        char out[512] = "";
        size_t n = 0;
        ssize_t r;
        while (n < sizeof(out) - 1 && (r = read(pfd[0], out + n, sizeof(out) - 1 - n)) > 0)
                n += (size_t)r;
        out[n] = '\0';
        close(pfd[0]);
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        if (strstr(out, "setting up uid map") || strstr(out, "No permissions to create"))
                SKIP_BECAUSE("user namespaces unavailable for bwrap: %s", out);
        assert_string_equal(out, "ok\n");
        assert_true(WIFEXITED(status));
        /* the tree is still exactly what the manifest says */
        expect_verify_ok(&f, NX_ROOTFS_FULL);
        free(log);
        fx_done(&f);
}

/* ------------------------------------------------------------ prepare: debian ----- */

/* A fake mmdebstrap: records its argv, writes into the target, then fails as told. */
static void write_fake_tool(const fx *f, const char *name, const char *ending)
{
        char text[2048];
        assert_true(str_printf(text, sizeof(text),
                               "#!/bin/sh\n"
                               "echo \"$@\" > %s/args\n"
                               "echo 'I: extracting archives...'\n"
                               "echo 'W: to stderr' >&2\n"
                               "mkdir -p \"$4/usr/bin\" \"$4/etc\"\n"
                               "echo half > \"$4/etc/os-release\"\n"
                               "%s\n", f->base, ending) > 0);
        put(f->base, name, text, 0755);
}

static int prepare_with_tool(const fx *f, const char *name, progress_log *log, err_t *err)
{
        char tool[512];
        assert_true(str_printf(tool, sizeof(tool), "%s/%s", f->base, name) > 0);
        nx_rootfs_opts o = { .kind = NX_ROOTFS_DEBIAN, .dir = f->dir, .tool = tool,
                             .mirror = "http://mirror.example/debian",
                             .progress = progress_to_log, .progress_ud = log };
        return nx_rootfs_prepare(&o, err);
}

static void test_prepare_tool_failure_leaves_no_final_dir(void **state)
{
        (void)state;
        fx f;
        fx_init(&f);
        write_fake_tool(&f, "mmdebstrap", "exit 3");
        progress_log *log = calloc(1, sizeof(*log));
        err_t err = ERR_INIT;
        assert_int_equal(prepare_with_tool(&f, "mmdebstrap", log, &err), -1);
        assert_non_null(strstr(err.msg, "mmdebstrap exited with status 3"));
        assert_false(exists(f.dir));
        assert_false(exists(f.manifest));
        assert_int_equal(count_tmp(&f), 0);
        free(log);
        fx_done(&f);
}

static void test_prepare_tool_killed_midway_leaves_no_final_dir(void **state)
{
        (void)state;
        fx f;
        fx_init(&f);
        write_fake_tool(&f, "mmdebstrap", "kill -KILL $$");
        progress_log *log = calloc(1, sizeof(*log));
        err_t err = ERR_INIT;
        assert_int_equal(prepare_with_tool(&f, "mmdebstrap", log, &err), -1);
        assert_non_null(strstr(err.msg, "killed by signal 9"));
        assert_false(exists(f.dir));
        assert_int_equal(count_tmp(&f), 0);
        free(log);
        fx_done(&f);
}

static void test_prepare_tool_success_without_sh_is_refused(void **state)
{
        (void)state;
        fx f;
        fx_init(&f);
        write_fake_tool(&f, "mmdebstrap", "exit 0");
        progress_log *log = calloc(1, sizeof(*log));
        err_t err = ERR_INIT;
        assert_int_equal(prepare_with_tool(&f, "mmdebstrap", log, &err), -1);
        assert_non_null(strstr(err.msg, "bin/sh is missing"));
        assert_false(exists(f.dir));
        assert_int_equal(count_tmp(&f), 0);
        free(log);
        fx_done(&f);
}

static void test_prepare_passes_tool_output_through_prefixed_with_minbase_args(void **state)
{
        (void)state;
        fx f;
        fx_init(&f);
        /* a "successful" fake: a tree with bin/sh and a setuid binary to strip */
        write_fake_tool(&f, "mmdebstrap",
                        "mkdir -p \"$4/bin\"; printf '#!/bin/sh\\n' > \"$4/bin/sh\"; "
                        "chmod 755 \"$4/bin/sh\"; printf x > \"$4/usr/bin/su\"; "
                        "chmod 4755 \"$4/usr/bin/su\"; exit 0");
        progress_log *log = calloc(1, sizeof(*log));
        err_t err = ERR_INIT;
        int r = prepare_with_tool(&f, "mmdebstrap", log, &err);
        if (r != NX_ROOTFS_BUILT)
                fail_msg("prepare: %s\n%s", err.msg, log->text);
        assert_non_null(strstr(log->text, "rootfs [mmdebstrap] I: extracting archives..."));
        assert_non_null(strstr(log->text, "rootfs [mmdebstrap] W: to stderr"));
        char ap[512];
        assert_true(str_printf(ap, sizeof(ap), "%s/args", f.base) > 0);
        char *args = slurp(ap);
        assert_true(str_has_prefix(args, "--variant=minbase --include=ca-certificates,git,curl "
                                         "bookworm "));
        assert_non_null(strstr(args, " http://mirror.example/debian\n"));
        free(args);
        char p[512];
        struct stat st;
        path_of(&f, "usr/bin/su", p, sizeof(p));
        assert_int_equal(stat(p, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0755);   /* setuid stripped */
        path_of(&f, "etc/resolv.conf", p, sizeof(p));
        char *resolv = slurp(p);
        assert_non_null(strstr(resolv, "no resolver"));
        free(resolv);
        expect_verify_ok(&f, NX_ROOTFS_FULL);
        char *m = slurp(f.manifest);
        assert_non_null(strstr(m, "kind=debian suite=bookworm "));
        free(m);
        free(log);
        fx_done(&f);
}

static void test_prepare_debian_for_real_when_asked(void **state)
{
        (void)state;
        const char *on = getenv("NX_TEST_DEBIAN_ROOTFS");
        if (!on || strcmp(on, "1") != 0)
                SKIP_BECAUSE("the real Debian prepare takes about a minute and needs the "
                             "Debian mirror; set NX_TEST_DEBIAN_ROOTFS=1 to run it");
        fx f;
        fx_init(&f);
        nx_rootfs_opts o = { .kind = NX_ROOTFS_DEBIAN, .dir = f.dir };
        err_t err = ERR_INIT;
        int r = nx_rootfs_prepare(&o, &err);
        if (r != NX_ROOTFS_BUILT)
                fail_msg("prepare: %s", err.msg);
        char p[512];
        path_of(&f, "usr/bin/git", p, sizeof(p));
        assert_true(exists(p));
        path_of(&f, "usr/bin/curl", p, sizeof(p));
        assert_true(exists(p));
        expect_verify_ok(&f, NX_ROOTFS_FULL);
        assert_int_equal(nx_rootfs_prepare(&o, &err), NX_ROOTFS_CACHED);
        fx_done(&f);
}


/* ------------------------------------------------------------ the nexusd binary --- */

/* nexusd is built next to this test (build/src/nexus/). */
static void nexusd_path(char *out, size_t outsz)
{
        char self[512];
        ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
        assert_true(n > 0);
        self[n] = '\0';
        char *slash = strrchr(self, '/');
        assert_non_null(slash);
        *slash = '\0';
        assert_true(str_printf(out, outsz, "%s/nexusd", self) > 0);
        if (access(out, X_OK) != 0)
                fail_msg("%s not built (ninja builds it with the tests)", out);
}

/* Runs nexusd with args; stdout and stderr are read back from files below f->base. */
static int run_nexusd(const fx *f, const char *const *args, char **out, char **errtext)
{
        char exe[600], o[400], e[400];
        nexusd_path(exe, sizeof(exe));
        assert_true(str_printf(o, sizeof(o), "%s/stdout", f->base) > 0);
        assert_true(str_printf(e, sizeof(e), "%s/stderr", f->base) > 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                char *argv[16];
                size_t i = 0;
                argv[i++] = exe;
                for (; args[i - 1] && i < 15; i++)
                        argv[i] = strdup(args[i - 1]);
                argv[i] = NULL;
                int fo = open(o, O_WRONLY | O_CREAT | O_TRUNC, 0600);
                int fe = open(e, O_WRONLY | O_CREAT | O_TRUNC, 0600);
                if (fo < 0 || fe < 0 || dup2(fo, 1) < 0 || dup2(fe, 2) < 0)
                        _exit(126);
                execv(exe, argv);
                _exit(127);
        }
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        *out = slurp(o);
        *errtext = slurp(e);
        return WEXITSTATUS(status);
}

static void write_config(const fx *f, const char *rootfs, char *path, size_t pathsz)
{
        char text[1024];
        assert_true(str_printf(path, pathsz, "%s/nexus.yaml", f->base) > 0);
        assert_true(str_printf(text, sizeof(text),
                               "server_url: \"http://127.0.0.1:1\"\n"
                               "territory_id: \"t-rootfs\"\n"
                               "work_dir: \"%s/work\"\n"
                               "supported_sandbox_profiles: [\"untrusted\"]\n"
                               "bwrap:\n  rootfs_path: \"%s\"\n", f->base, rootfs) > 0);
        write_apt(f->base, "nexus.yaml", text);
}

static void test_cli_rootfs_prepare_then_cached_then_verify(void **state)
{
        (void)state;
        if (!have_busybox())
                SKIP_BECAUSE("%s missing (Debian package busybox-static)",
                             NX_ROOTFS_DEFAULT_BUSYBOX);
        fx f;
        fx_init(&f);
        char *out, *errtext;
        const char *prep[] = { "rootfs", "prepare", "--kind", "busybox", "--dir", f.dir, NULL };
        assert_int_equal(run_nexusd(&f, prep, &out, &errtext), 0);
        assert_non_null(strstr(errtext, "rootfs ready: "));
        free(out);
        free(errtext);
        assert_int_equal(run_nexusd(&f, prep, &out, &errtext), 0);
        assert_non_null(strstr(errtext, "(verified)"));
        free(out);
        free(errtext);
        const char *ver[] = { "rootfs", "verify", "--dir", f.dir, NULL };
        assert_int_equal(run_nexusd(&f, ver, &out, &errtext), 0);
        assert_true(str_has_prefix(out, "rootfs ok: "));
        free(out);
        free(errtext);
        put(f.dir, "etc/hosts", "10.0.0.1 evil\n", 0644);
        assert_int_equal(run_nexusd(&f, ver, &out, &errtext), 1);
        assert_non_null(strstr(errtext, "rootfs verify failed: "));
        assert_non_null(strstr(errtext, "/etc/hosts: "));
        free(out);
        free(errtext);
        fx_done(&f);
}

static void test_cli_rootfs_rejects_unknown_kind_and_misplaced_flags(void **state)
{
        (void)state;
        fx f;
        fx_init(&f);
        char *out, *errtext;
        const char *bad_kind[] = { "rootfs", "prepare", "--kind", "ubuntu", "--dir", f.dir, NULL };
        assert_int_equal(run_nexusd(&f, bad_kind, &out, &errtext), 2);
        assert_non_null(strstr(errtext, "--kind \"ubuntu\""));
        free(out);
        free(errtext);
        const char *misplaced[] = { "rootfs", "verify", "--suite", "trixie", "--dir", f.dir, NULL };
        assert_int_equal(run_nexusd(&f, misplaced, &out, &errtext), 2);
        assert_non_null(strstr(errtext, "only valid with rootfs prepare"));
        free(out);
        free(errtext);
        const char *dir_on_doctor[] = { "doctor", "--dir", f.dir, NULL };
        assert_int_equal(run_nexusd(&f, dir_on_doctor, &out, &errtext), 2);
        free(out);
        free(errtext);
        assert_false(exists(f.dir));
        fx_done(&f);
}

static void test_daemon_start_refuses_a_rootfs_that_does_not_verify(void **state)
{
        (void)state;
        if (!have_busybox())
                SKIP_BECAUSE("%s missing (Debian package busybox-static)",
                             NX_ROOTFS_DEFAULT_BUSYBOX);
        fx f;
        fx_init(&f);
        progress_log *log = calloc(1, sizeof(*log));
        err_t err = ERR_INIT;
        assert_int_equal(prepare_busybox(&f, log, &err), NX_ROOTFS_BUILT);
        char cfg[400], p[512];
        write_config(&f, f.dir, cfg, sizeof(cfg));
        path_of(&f, "bin/busybox", p, sizeof(p));
        assert_int_equal(chmod(p, 04755), 0);
        char *out, *errtext;
        const char *run[] = { "run", "-c", cfg, NULL };
        assert_int_equal(run_nexusd(&f, run, &out, &errtext), 1);
        assert_non_null(strstr(errtext, "bwrap.rootfs_path refused: "));
        assert_non_null(strstr(errtext, "/bin/busybox: setuid/setgid bit set"));
        free(out);
        free(errtext);
        free(log);
        fx_done(&f);
}

/* Doctor lines (spec §10.1 format, §12 #226 icons): ✓ rootfs when it verifies FULL, ✗ with
 * the differing path when untrusted is configured and it does not. */
static void test_doctor_reports_rootfs_verified_then_failed(void **state)
{
        (void)state;
        if (!have_busybox())
                SKIP_BECAUSE("%s missing (Debian package busybox-static)",
                             NX_ROOTFS_DEFAULT_BUSYBOX);
        fx f;
        fx_init(&f);
        progress_log *log = calloc(1, sizeof(*log));
        err_t err = ERR_INIT;
        assert_int_equal(prepare_busybox(&f, log, &err), NX_ROOTFS_BUILT);
        char cfg[400];
        write_config(&f, f.dir, cfg, sizeof(cfg));
        char *out, *errtext;
        const char *doc[] = { "doctor", "-c", cfg, NULL };
        (void)run_nexusd(&f, doc, &out, &errtext);   /* control plane is down: exit 1 */
        char want[600];
        assert_true(str_printf(want, sizeof(want), "  \u2713 %-25s %s verified (full, ",
                               "rootfs", f.dir) > 0);
        if (!strstr(out, want))
                fail_msg("no \"%s\" in:\n%s", want, out);
        assert_non_null(strstr(out, "  \u2713 seccomp "));
        assert_non_null(strstr(out, " landlock "));
        assert_non_null(strstr(out, " cgroup pids limit "));
        assert_non_null(strstr(out, " nexus-sandbox "));
        free(out);
        free(errtext);
        put(f.dir, "etc/passwd", "root::0:0::/:/bin/sh\n", 0644);
        assert_int_equal(run_nexusd(&f, doc, &out, &errtext), 1);
        assert_true(str_printf(want, sizeof(want), "  \u2717 %-25s rootfs %s: /etc/passwd: ",
                               "rootfs", f.dir) > 0);
        if (!strstr(out, want))
                fail_msg("no \"%s\" in:\n%s", want, out);
        free(out);
        free(errtext);
        free(log);
        fx_done(&f);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_manifest_path_is_a_sibling_of_the_tree),
                cmocka_unit_test(test_manifest_round_trip_verifies_quick_and_full),
                cmocka_unit_test(test_manifest_lines_sorted_escaped_and_digest_written),
                cmocka_unit_test(test_manifest_is_not_inside_the_tree),
                cmocka_unit_test(test_manifest_write_refuses_a_setuid_file),
                cmocka_unit_test(test_verify_full_catches_content_change_quick_does_not),
                cmocka_unit_test(test_verify_quick_catches_size_change),
                cmocka_unit_test(test_verify_quick_catches_mode_change),
                cmocka_unit_test(test_verify_quick_catches_mtime_change),
                cmocka_unit_test(test_verify_catches_added_file),
                cmocka_unit_test(test_verify_names_the_added_path),
                cmocka_unit_test(test_verify_catches_removed_file),
                cmocka_unit_test(test_verify_catches_retargeted_symlink),
                cmocka_unit_test(test_verify_refuses_setuid_bit),
                cmocka_unit_test(test_verify_refuses_world_writable_entry),
                cmocka_unit_test(test_verify_refuses_fifo),
                cmocka_unit_test(test_verify_refuses_tampered_manifest),
                cmocka_unit_test(test_verify_refuses_missing_manifest),
                cmocka_unit_test(test_verify_refuses_missing_tree),
                cmocka_unit_test(test_harden_strips_setuid_and_group_other_write_and_removes_fifo),
                cmocka_unit_test(test_remove_tree_does_not_follow_symlinks_out),
                cmocka_unit_test(test_default_mirror_reads_deb822_sources),
                cmocka_unit_test(test_default_mirror_reads_one_line_sources_list),
                cmocka_unit_test(test_default_mirror_falls_back_to_deb_debian_org),
                cmocka_unit_test(test_kind_parse_accepts_debian_and_busybox_only),
                cmocka_unit_test(test_from_config_requires_a_manifest_and_refuses_auto),
                cmocka_unit_test(test_prepare_rejects_bad_suite_mirror_and_packages),
                cmocka_unit_test(test_prepare_busybox_builds_a_verified_tree),
                cmocka_unit_test(test_prepare_twice_is_a_verified_no_op),
                cmocka_unit_test(test_prepare_rebuilds_a_tree_that_no_longer_verifies),
                cmocka_unit_test(test_prepare_refuses_an_existing_dir_without_manifest),
                cmocka_unit_test(test_prepare_removes_stale_temp_trees),
                cmocka_unit_test(test_busybox_rootfs_runs_sh_under_bwrap),
                cmocka_unit_test(test_prepare_tool_failure_leaves_no_final_dir),
                cmocka_unit_test(test_prepare_tool_killed_midway_leaves_no_final_dir),
                cmocka_unit_test(test_prepare_tool_success_without_sh_is_refused),
                cmocka_unit_test(test_prepare_passes_tool_output_through_prefixed_with_minbase_args),
                cmocka_unit_test(test_prepare_debian_for_real_when_asked),
                cmocka_unit_test(test_cli_rootfs_prepare_then_cached_then_verify),
                cmocka_unit_test(test_cli_rootfs_rejects_unknown_kind_and_misplaced_flags),
                cmocka_unit_test(test_daemon_start_refuses_a_rootfs_that_does_not_verify),
                cmocka_unit_test(test_doctor_reports_rootfs_verified_then_failed),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
