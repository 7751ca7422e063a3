/* bench/proxy_load.c — the server and the load generator of bench/proxy.
 *
 *   bench-proxy-load serve IP:PORT
 *   bench-proxy-load tput --to IP:PORT [--via IP:PORT --name HOST:PORT] --conns C
 *                         --bytes TOTAL --dir up|down
 *   bench-proxy-load lat  --to IP:PORT [--via IP:PORT --name HOST:PORT] --count N
 *   bench-proxy-load relay IP:PORT --to IP:PORT [--splice]
 *
 * Protocol on every connection (after the proxy's CONNECT, if any): the client's first byte
 * says what it wants.
 *   'E'  the server answers 'E' and then echoes every byte until EOF (latency);
 *   'U'  then an 8-byte big-endian length L: the server reads L bytes, then answers 'K'
 *        (upload: the client's clock stops at the 'K', so every byte crossed);
 *   'D'  then L: the server writes L bytes (download: the client stops after the last byte).
 * Nothing relies on half-close, so any proxy that relays bytes both ways will do.
 *
 * --via makes the client speak HTTP CONNECT to a proxy first ("CONNECT NAME HTTP/1.1" with a
 * matching Host header) and wait for a 200 answer before it starts; the proxy resolves NAME.
 * tput opens C tunnels, waits until all are set up, then moves TOTAL/C bytes through each at
 * once; it prints {"bytes":N,"seconds":S} (the time from the common start to the last
 * finish). lat opens N connections one after another and times each from connect() to the
 * echoed first byte: {"ns":[...]}. The server runs a thread per connection until killed.
 *
 * relay is a reference point, not a proxy: it accepts, reads a CONNECT head (whatever it
 * names), dials the fixed --to address, answers 200 and copies both ways with one thread per
 * direction — read()/write() through a 64 KiB buffer, or with --splice socket→pipe→socket
 * (no copy through user space). No policy, no name lookup, no audit: what the simplest relay
 * costs on this machine, to tell how much of a proxy's gap to direct TCP is the extra hop. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define IO_BUF (256 * 1024)
#define HEAD_MAX 8192
#define MAX_CONNS 1024
#define MAX_COUNT 1000000

typedef struct target {
        struct sockaddr_in to;
        bool via_proxy;
        struct sockaddr_in via;
        char name[256];          /* HOST:PORT for CONNECT */
} target;

static int64_t now_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int parse_addr(const char *s, struct sockaddr_in *out)
{
        char host[64];
        const char *colon = strrchr(s, ':');
        char *end = NULL;
        unsigned long port;
        size_t hl;

        if (colon == NULL || (hl = (size_t)(colon - s)) == 0 || hl >= sizeof(host)) {
                fprintf(stderr, "bench-proxy-load: address \"%s\" is not IPv4:PORT\n", s);
                return -1;
        }
        memcpy(host, s, hl);
        host[hl] = '\0';
        errno = 0;
        port = strtoul(colon + 1, &end, 10);
        memset(out, 0, sizeof(*out));
        out->sin_family = AF_INET;
        if (errno != 0 || *end != '\0' || port == 0 || port > 65535 ||
            inet_pton(AF_INET, host, &out->sin_addr) != 1) {
                fprintf(stderr, "bench-proxy-load: address \"%s\" is not IPv4:PORT\n", s);
                return -1;
        }
        out->sin_port = htons((uint16_t)port);
        return 0;
}

static int write_all(int fd, const void *buf, size_t n)
{
        const char *p = buf;

        while (n > 0) {
                ssize_t w = write(fd, p, n);

                if (w < 0 && errno == EINTR)
                        continue;
                if (w <= 0)
                        return -1;
                p += w;
                n -= (size_t)w;
        }
        return 0;
}

static int read_all(int fd, void *buf, size_t n)
{
        char *p = buf;

        while (n > 0) {
                ssize_t r = read(fd, p, n);

                if (r < 0 && errno == EINTR)
                        continue;
                if (r <= 0)
                        return -1;
                p += r;
                n -= (size_t)r;
        }
        return 0;
}

/* Reads and drops exactly n bytes. */
static int sink_bytes(int fd, char *buf, uint64_t n)
{
        while (n > 0) {
                size_t want = n < IO_BUF ? (size_t)n : IO_BUF;
                ssize_t r = read(fd, buf, want);

                if (r < 0 && errno == EINTR)
                        continue;
                if (r <= 0)
                        return -1;
                n -= (uint64_t)r;
        }
        return 0;
}

static int source_bytes(int fd, const char *buf, uint64_t n)
{
        while (n > 0) {
                size_t want = n < IO_BUF ? (size_t)n : IO_BUF;

                if (write_all(fd, buf, want) < 0)
                        return -1;
                n -= want;
        }
        return 0;
}

static void put_u64(unsigned char *p, uint64_t v)
{
        for (int i = 7; i >= 0; i--) {
                p[i] = (unsigned char)(v & 0xff);
                v >>= 8;
        }
}

static uint64_t get_u64(const unsigned char *p)
{
        uint64_t v = 0;

        for (int i = 0; i < 8; i++)
                v = (v << 8) | p[i];
        return v;
}

static void nodelay(int fd)
{
        int one = 1;

        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* ------------------------------------------------------------------ server */

static void *serve_conn(void *arg)
{
        int fd = (int)(intptr_t)arg;
        char *buf = malloc(IO_BUF);
        unsigned char hdr[9];

        if (buf == NULL || read_all(fd, hdr, 1) < 0)
                goto out;
        switch (hdr[0]) {
        case 'E':
                if (write_all(fd, "E", 1) < 0)
                        break;
                for (;;) {
                        ssize_t r = read(fd, buf, IO_BUF);

                        if (r < 0 && errno == EINTR)
                                continue;
                        if (r <= 0 || write_all(fd, buf, (size_t)r) < 0)
                                break;
                }
                break;
        case 'U':
                if (read_all(fd, hdr + 1, 8) < 0 || sink_bytes(fd, buf, get_u64(hdr + 1)) < 0)
                        break;
                if (write_all(fd, "K", 1) < 0)
                        break;
                while (read(fd, buf, IO_BUF) > 0)
                        ;
                break;
        case 'D':
                if (read_all(fd, hdr + 1, 8) < 0)
                        break;
                memset(buf, 'd', IO_BUF);
                if (source_bytes(fd, buf, get_u64(hdr + 1)) < 0)
                        break;
                while (read(fd, buf, IO_BUF) > 0)
                        ;
                break;
        default:
                break;
        }
out:
        free(buf);
        close(fd);
        return NULL;
}

static int cmd_serve(const char *addr)
{
        struct sockaddr_in sa;
        int one = 1;
        int lfd;

        if (parse_addr(addr, &sa) < 0)
                return 2;
        lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
            bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 1024) < 0) {
                fprintf(stderr, "bench-proxy-load: listen on %s: %s\n", addr, strerror(errno));
                return 1;
        }
        printf("ready\n");
        fflush(stdout);
        for (;;) {
                pthread_t t;
                pthread_attr_t at;
                int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

                if (fd < 0) {
                        if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE)
                                continue;
                        fprintf(stderr, "bench-proxy-load: accept: %s\n", strerror(errno));
                        return 1;
                }
                nodelay(fd);
                pthread_attr_init(&at);
                pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
                pthread_attr_setstacksize(&at, 64 * 1024);
                if (pthread_create(&t, &at, serve_conn, (void *)(intptr_t)fd) != 0)
                        close(fd);
                pthread_attr_destroy(&at);
        }
}

/* ------------------------------------------------------------------ reference relay */

#define RELAY_BUF (64 * 1024)

typedef struct relay_conn {
        int client;
        int up;
        bool splice;
        atomic_int refs;
} relay_conn;

typedef struct relay_dir {
        relay_conn *rc;
        int from;
        int to;
} relay_dir;

static struct sockaddr_in relay_to;
static bool relay_splice;

static void relay_unref(relay_conn *rc)
{
        if (atomic_fetch_sub(&rc->refs, 1) == 1) {
                close(rc->client);
                close(rc->up);
                free(rc);
        }
}

static void copy_rw(int from, int to)
{
        char *buf = malloc(RELAY_BUF);

        while (buf != NULL) {
                ssize_t r = read(from, buf, RELAY_BUF);

                if (r < 0 && errno == EINTR)
                        continue;
                if (r <= 0 || write_all(to, buf, (size_t)r) < 0)
                        break;
        }
        free(buf);
}

static void copy_splice(int from, int to)
{
        int p[2];

        if (pipe2(p, O_CLOEXEC) < 0)
                return;
        fcntl(p[1], F_SETPIPE_SZ, RELAY_BUF);
        for (;;) {
                ssize_t n = splice(from, NULL, p[1], NULL, RELAY_BUF, SPLICE_F_MOVE);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
                while (n > 0) {
                        ssize_t w = splice(p[0], NULL, to, NULL, (size_t)n, SPLICE_F_MOVE);

                        if (w < 0 && errno == EINTR)
                                continue;
                        if (w <= 0)
                                goto out;
                        n -= w;
                }
        }
out:
        close(p[0]);
        close(p[1]);
}

static void *relay_dir_thread(void *arg)
{
        relay_dir *d = arg;

        if (d->rc->splice)
                copy_splice(d->from, d->to);
        else
                copy_rw(d->from, d->to);
        shutdown(d->to, SHUT_WR);
        relay_unref(d->rc);
        free(d);
        return NULL;
}

static void *relay_conn_thread(void *arg)
{
        int client = (int)(intptr_t)arg;
        char head[HEAD_MAX];
        size_t len = 0;
        static const char ok[] = "HTTP/1.1 200 Connection established\r\n\r\n";
        relay_conn *rc = NULL;
        relay_dir *down = NULL, *upd = NULL;
        pthread_t t;
        int up = -1;

        while (len < sizeof(head)) {
                ssize_t r = read(client, head + len, 1);

                if (r < 0 && errno == EINTR)
                        continue;
                if (r <= 0)
                        goto fail;
                len++;
                if (len >= 4 && memcmp(head + len - 4, "\r\n\r\n", 4) == 0)
                        break;
        }
        up = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (up < 0 || connect(up, (struct sockaddr *)&relay_to, sizeof(relay_to)) < 0)
                goto fail;
        nodelay(up);
        if (write_all(client, ok, sizeof(ok) - 1) < 0)
                goto fail;
        rc = calloc(1, sizeof(*rc));
        down = calloc(1, sizeof(*down));
        upd = calloc(1, sizeof(*upd));
        if (rc == NULL || down == NULL || upd == NULL)
                goto fail;
        rc->client = client;
        rc->up = up;
        rc->splice = relay_splice;
        atomic_init(&rc->refs, 2);
        *down = (relay_dir){ rc, up, client };
        *upd = (relay_dir){ rc, client, up };
        if (pthread_create(&t, NULL, relay_dir_thread, down) != 0) {
                free(down);
                relay_unref(rc);
        } else {
                pthread_detach(t);
        }
        relay_dir_thread(upd);
        return NULL;
fail:
        free(rc);
        free(down);
        free(upd);
        if (up >= 0)
                close(up);
        close(client);
        return NULL;
}

static int cmd_relay(const char *addr)
{
        struct sockaddr_in sa;
        int one = 1;
        int lfd;

        if (parse_addr(addr, &sa) < 0)
                return 2;
        lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
            bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 1024) < 0) {
                fprintf(stderr, "bench-proxy-load: listen on %s: %s\n", addr, strerror(errno));
                return 1;
        }
        printf("ready\n");
        fflush(stdout);
        for (;;) {
                pthread_t t;
                int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

                if (fd < 0) {
                        if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE)
                                continue;
                        fprintf(stderr, "bench-proxy-load: accept: %s\n", strerror(errno));
                        return 1;
                }
                nodelay(fd);
                if (pthread_create(&t, NULL, relay_conn_thread, (void *)(intptr_t)fd) != 0)
                        close(fd);
                else
                        pthread_detach(t);
        }
}

/* ------------------------------------------------------------------ client */

/* Connects to the target, through the proxy's CONNECT when asked. -1 with a message. */
static int open_tunnel(const target *t, char *why, size_t why_len)
{
        const struct sockaddr_in *sa = t->via_proxy ? &t->via : &t->to;
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        char head[HEAD_MAX + 1];
        size_t len = 0;

        if (fd < 0 || connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) < 0) {
                snprintf(why, why_len, "connect: %s", strerror(errno));
                goto fail;
        }
        nodelay(fd);
        if (!t->via_proxy)
                return fd;
        {
                char req[600];
                int n = snprintf(req, sizeof(req),
                                 "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", t->name, t->name);

                if (n < 0 || (size_t)n >= sizeof(req) || write_all(fd, req, (size_t)n) < 0) {
                        snprintf(why, why_len, "sending CONNECT failed");
                        goto fail;
                }
        }
        /* Byte by byte up to the blank line: nothing after it may be consumed here. */
        while (len < HEAD_MAX) {
                ssize_t r = read(fd, head + len, 1);

                if (r < 0 && errno == EINTR)
                        continue;
                if (r <= 0) {
                        head[len] = '\0';
                        snprintf(why, why_len, "proxy closed during CONNECT answer: \"%.80s\"",
                                 head);
                        goto fail;
                }
                len++;
                if (len >= 4 && memcmp(head + len - 4, "\r\n\r\n", 4) == 0)
                        break;
        }
        head[len] = '\0';
        if (len < 12 || strncmp(head, "HTTP/1.", 7) != 0 || strncmp(head + 9, "200", 3) != 0) {
                snprintf(why, why_len, "proxy answered \"%.80s\"", head);
                goto fail;
        }
        return fd;
fail:
        if (fd >= 0)
                close(fd);
        return -1;
}

typedef struct tput_job {
        const target *t;
        pthread_barrier_t *start;
        uint64_t bytes;
        bool up;
        int64_t end_ns;
        int failed;
        char why[200];
} tput_job;

static void *tput_thread(void *arg)
{
        tput_job *j = arg;
        unsigned char hdr[9];
        char *buf = malloc(IO_BUF);
        int fd = buf == NULL ? -1 : open_tunnel(j->t, j->why, sizeof(j->why));

        pthread_barrier_wait(j->start);
        if (fd < 0) {
                j->failed = 1;
                goto out;
        }
        memset(buf, 'u', IO_BUF);
        hdr[0] = j->up ? 'U' : 'D';
        put_u64(hdr + 1, j->bytes);
        if (write_all(fd, hdr, sizeof(hdr)) < 0) {
                snprintf(j->why, sizeof(j->why), "write: %s", strerror(errno));
                j->failed = 1;
        } else if (j->up) {
                if (source_bytes(fd, buf, j->bytes) < 0 || read_all(fd, hdr, 1) < 0 ||
                    hdr[0] != 'K') {
                        snprintf(j->why, sizeof(j->why), "upload cut short");
                        j->failed = 1;
                }
        } else if (sink_bytes(fd, buf, j->bytes) < 0) {
                snprintf(j->why, sizeof(j->why), "download cut short");
                j->failed = 1;
        }
        j->end_ns = now_ns();
out:
        if (fd >= 0)
                close(fd);
        free(buf);
        return NULL;
}

static int cmd_tput(const target *t, long conns, uint64_t total, bool up)
{
        pthread_barrier_t start;
        tput_job *jobs = calloc((size_t)conns, sizeof(*jobs));
        pthread_t *th = calloc((size_t)conns, sizeof(*th));
        int64_t t0, t1 = 0;
        int failed = 0;

        if (jobs == NULL || th == NULL) {
                fprintf(stderr, "bench-proxy-load: out of memory\n");
                return 1;
        }
        pthread_barrier_init(&start, NULL, (unsigned)conns + 1);
        for (long i = 0; i < conns; i++) {
                jobs[i].t = t;
                jobs[i].start = &start;
                jobs[i].bytes = total / (uint64_t)conns;
                jobs[i].up = up;
                if (pthread_create(&th[i], NULL, tput_thread, &jobs[i]) != 0) {
                        fprintf(stderr, "bench-proxy-load: pthread_create failed\n");
                        return 1;
                }
        }
        pthread_barrier_wait(&start);
        t0 = now_ns();
        for (long i = 0; i < conns; i++) {
                pthread_join(th[i], NULL);
                if (jobs[i].failed) {
                        if (failed == 0)
                                fprintf(stderr, "bench-proxy-load: tunnel %ld: %s\n", i,
                                        jobs[i].why);
                        failed++;
                } else if (jobs[i].end_ns > t1) {
                        t1 = jobs[i].end_ns;
                }
        }
        pthread_barrier_destroy(&start);
        if (failed) {
                fprintf(stderr, "bench-proxy-load: %d of %ld tunnels failed\n", failed, conns);
                return 1;
        }
        printf("{\"bytes\":%" PRIu64 ",\"seconds\":%.6f}\n", total / (uint64_t)conns * (uint64_t)conns,
               (double)(t1 - t0) / 1e9);
        free(jobs);
        free(th);
        return 0;
}

static int cmd_lat(const target *t, long count)
{
        int64_t *ns = calloc((size_t)count, sizeof(*ns));
        char why[200];

        if (ns == NULL) {
                fprintf(stderr, "bench-proxy-load: out of memory\n");
                return 1;
        }
        for (long i = 0; i < count; i++) {
                int64_t t0 = now_ns();
                int fd = open_tunnel(t, why, sizeof(why));
                char c = 0;

                if (fd < 0) {
                        fprintf(stderr, "bench-proxy-load: connection %ld: %s\n", i, why);
                        return 1;
                }
                if (write_all(fd, "E", 1) < 0 || read_all(fd, &c, 1) < 0 || c != 'E') {
                        fprintf(stderr, "bench-proxy-load: connection %ld: no echo\n", i);
                        close(fd);
                        return 1;
                }
                ns[i] = now_ns() - t0;
                close(fd);
        }
        fputs("{\"ns\":[", stdout);
        for (long i = 0; i < count; i++)
                printf("%s%" PRId64, i ? "," : "", ns[i]);
        fputs("]}\n", stdout);
        free(ns);
        return 0;
}

static int parse_num(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
        char *end = NULL;
        unsigned long long v;

        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi) {
                fprintf(stderr, "bench-proxy-load: \"%s\" is not an integer in %" PRIu64 "-%"
                        PRIu64 "\n", s, lo, hi);
                return -1;
        }
        *out = v;
        return 0;
}

static void usage(void)
{
        fprintf(stderr,
                "usage: bench-proxy-load serve IP:PORT\n"
                "       bench-proxy-load tput --to IP:PORT [--via IP:PORT --name HOST:PORT] "
                "--conns C --bytes TOTAL --dir up|down\n"
                "       bench-proxy-load lat --to IP:PORT [--via IP:PORT --name HOST:PORT] "
                "--count N\n"
                "       bench-proxy-load relay IP:PORT --to IP:PORT [--splice]\n");
}

int main(int argc, char **argv)
{
        target t;
        bool have_to = false, up = true;
        uint64_t conns = 1, bytes = 0, count = 0;

        signal(SIGPIPE, SIG_IGN);
        memset(&t, 0, sizeof(t));
        if (argc == 3 && strcmp(argv[1], "serve") == 0)
                return cmd_serve(argv[2]);
        if ((argc == 5 || argc == 6) && strcmp(argv[1], "relay") == 0 &&
            strcmp(argv[3], "--to") == 0) {
                if (parse_addr(argv[4], &relay_to) < 0)
                        return 2;
                relay_splice = argc == 6 && strcmp(argv[5], "--splice") == 0;
                if (argc == 6 && !relay_splice) {
                        usage();
                        return 2;
                }
                return cmd_relay(argv[2]);
        }
        if (argc < 2 || (strcmp(argv[1], "tput") != 0 && strcmp(argv[1], "lat") != 0)) {
                usage();
                return 2;
        }
        for (int i = 2; i + 1 < argc; i += 2) {
                const char *k = argv[i], *v = argv[i + 1];
                int rc = 0;

                if (strcmp(k, "--to") == 0) {
                        rc = parse_addr(v, &t.to);
                        have_to = true;
                } else if (strcmp(k, "--via") == 0) {
                        rc = parse_addr(v, &t.via);
                        t.via_proxy = true;
                } else if (strcmp(k, "--name") == 0) {
                        int n = snprintf(t.name, sizeof(t.name), "%s", v);

                        rc = n < 0 || (size_t)n >= sizeof(t.name) ? -1 : 0;
                } else if (strcmp(k, "--conns") == 0) {
                        rc = parse_num(v, 1, MAX_CONNS, &conns);
                } else if (strcmp(k, "--bytes") == 0) {
                        rc = parse_num(v, 1, UINT64_C(1) << 40, &bytes);
                } else if (strcmp(k, "--count") == 0) {
                        rc = parse_num(v, 1, MAX_COUNT, &count);
                } else if (strcmp(k, "--dir") == 0) {
                        up = strcmp(v, "up") == 0;
                        rc = up || strcmp(v, "down") == 0 ? 0 : -1;
                } else {
                        rc = -1;
                }
                if (rc < 0) {
                        usage();
                        return 2;
                }
        }
        if (!have_to || (t.via_proxy && t.name[0] == '\0')) {
                usage();
                return 2;
        }
        if (strcmp(argv[1], "tput") == 0) {
                if (bytes < conns) {
                        usage();
                        return 2;
                }
                return cmd_tput(&t, (long)conns, bytes, up);
        }
        if (count == 0) {
                usage();
                return 2;
        }
        return cmd_lat(&t, (long)count);
}
