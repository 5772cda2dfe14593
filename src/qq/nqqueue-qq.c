/* nqqueue-qq: the per-message QMAILQUEUE program of daemon mode. It streams fd 0 (message) and fd 1
 * (envelope) to `nqqueue serve` over $NQQUEUE_HOME/nqqueue.sock, runs qmail-queue for each copy the
 * daemon hands back, and relays the answer. While nothing has been queued, any trouble with the daemon
 * makes it run the standalone bin/nqqueue on the very same input instead. The contract is
 * docs/daemon-protocol.md; the parsers, free of I/O, are declared in nqqueue-qq.h. */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memfd_create, pipe2, MSG_NOSIGNAL */
#endif

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "nqqueue-qq.h"

#define DEFAULT_HOME "/var/qmail/nqqueue"
#define DEFAULT_QMAILQUEUE "/var/qmail/bin/qmail-queue"
#define SOCKET_NAME "nqqueue.sock"
#define STANDALONE "nqqueue"
/* Set by the client only: every inherited variable of these names is removed at start. */
#define FALLBACK_VAR "NQQUEUE_FALLBACK_REASON"
#define PID_VAR "NQQUEUE_QQ_PID"
#define ERRFDS_VAR "NQQUEUE_QQ_ERRFDS"
#define AHEAD_VAR "NQQUEUE_QQ_AHEAD"
/* Pids of qmail-queue children kept for the client's own log line (more are counted, not listed). */
#define PIDS_KEPT 64

#define EXIT_READ_ERROR 54
#define EXIT_TEMPORARY 71
#define EXIT_CUSTOM 82
/* The status reported for a copy whose qmail-queue was killed, timed out or could not be run. */
#define COPY_FAILED 255

/* ---- the parsers (nqqueue-qq.h) ---- */

void nqq_reply_init(struct nqq_reply *r)
{
	memset(r, 0, offsetof(struct nqq_reply, refusal));
	r->state = NQQ_ST_FIRST;
}

/* A u32 arrives a byte at a time: 1 when the fourth is in r->acc. */
static int u32_byte(struct nqq_reply *r, unsigned char c)
{
	r->acc = (r->acc << 8) | c;
	if (++r->got < 4)
		return 0;
	r->got = 0;
	return 1;
}

static void expect_u32(struct nqq_reply *r, enum nqq_reply_state st)
{
	r->acc = 0;
	r->got = 0;
	r->state = st;
}

enum nqq_ev_type nqq_reply_next(struct nqq_reply *r, const unsigned char *p, size_t n, size_t *used,
				struct nqq_ev *ev)
{
	size_t i = 0, take;

	memset(ev, 0, sizeof *ev);
	ev->type = NQQ_EV_MORE;
	while (ev->type == NQQ_EV_MORE && r->state != NQQ_ST_DONE && r->state != NQQ_ST_BAD && i < n) {
		unsigned char c = p[i];

		switch (r->state) {
		case NQQ_ST_FIRST:
		case NQQ_ST_NEXT:
			i++;
			if (c == 'L' && r->state == NQQ_ST_FIRST && !r->pending_seen)
				expect_u32(r, NQQ_ST_PLEN);
			else if (c == 'A' && r->state == NQQ_ST_FIRST && !r->ahead_seen)
				expect_u32(r, NQQ_ST_AUS);
			else if (c == 'D' && r->state == NQQ_ST_FIRST)
				expect_u32(r, NQQ_ST_COUNT);
			else if (c == 'Q' && r->state == NQQ_ST_NEXT && r->started < r->copies)
				expect_u32(r, NQQ_ST_QTIME);
			else if (c == 'R')
				r->state = NQQ_ST_CODE;
			else
				r->state = NQQ_ST_BAD;
			break;
		case NQQ_ST_PLEN:
			i++;
			if (!u32_byte(r, c))
				break;
			r->pending_seen = 1;
			r->pendlen = r->acc;
			r->got = 0;
			if (r->pendlen > NQQ_PENDING_MAX)
				r->state = NQQ_ST_BAD;
			else
				r->state = r->pendlen > 0 ? NQQ_ST_PLINE : NQQ_ST_FIRST;
			break;
		case NQQ_ST_PLINE:
			/* pendlen <= NQQ_PENDING_MAX = sizeof pending, got < pendlen */
			take = r->pendlen - r->got;
			if (take > n - i)
				take = n - i;
			memcpy(r->pending + r->got, p + i, take);
			r->got += (uint32_t)take;
			i += take;
			if (r->got == r->pendlen)
				r->state = NQQ_ST_FIRST;
			break;
		case NQQ_ST_AUS:
			i++;
			if (!u32_byte(r, c))
				break;
			r->ahead_us = r->acc;
			expect_u32(r, NQQ_ST_ALEN);
			break;
		case NQQ_ST_ALEN:
			i++;
			if (!u32_byte(r, c))
				break;
			r->ahead_seen = 1;
			r->aheadlen = r->acc;
			r->got = 0;
			if (r->aheadlen > NQQ_PENDING_MAX)
				r->state = NQQ_ST_BAD;
			else
				r->state = r->aheadlen > 0 ? NQQ_ST_ALINE : NQQ_ST_FIRST;
			break;
		case NQQ_ST_ALINE:
			/* aheadlen <= NQQ_PENDING_MAX = sizeof ahead, got < aheadlen */
			take = r->aheadlen - r->got;
			if (take > n - i)
				take = n - i;
			memcpy(r->ahead + r->got, p + i, take);
			r->got += (uint32_t)take;
			i += take;
			if (r->got == r->aheadlen)
				r->state = NQQ_ST_FIRST;
			break;
		case NQQ_ST_COUNT:
			i++;
			if (u32_byte(r, c)) {
				r->decided = 1;
				r->copies = r->acc;
				r->state = NQQ_ST_NEXT;
				ev->type = NQQ_EV_DECIDED;
				ev->value = r->acc;
			}
			break;
		case NQQ_ST_QTIME:
			i++;
			if (u32_byte(r, c)) {
				r->started++;
				r->stream = 0;
				ev->type = NQQ_EV_COPY;
				ev->value = r->acc;
				expect_u32(r, NQQ_ST_FLEN);
			}
			break;
		case NQQ_ST_FLEN:
			i++;
			if (!u32_byte(r, c))
				break;
			if (r->acc > NQQ_FRAME_MAX) {
				r->state = NQQ_ST_BAD;
			} else if (r->acc > 0) {
				r->framelen = r->acc;
				r->got = 0;
				r->state = NQQ_ST_FDATA;
			} else {
				ev->type = NQQ_EV_END;
				ev->stream = r->stream;
				if (r->stream == 0) {
					r->stream = 1;
					expect_u32(r, NQQ_ST_FLEN);
				} else {
					r->state = NQQ_ST_NEXT;
				}
			}
			break;
		case NQQ_ST_FDATA:
			/* A slice of the caller's buffer: the frame's bytes are never copied here. */
			take = r->framelen - r->got;
			if (take > n - i)
				take = n - i;
			ev->type = NQQ_EV_DATA;
			ev->stream = r->stream;
			ev->data = p + i;
			ev->len = take;
			r->got += (uint32_t)take;
			i += take;
			if (r->got == r->framelen)
				expect_u32(r, NQQ_ST_FLEN);
			break;
		case NQQ_ST_CODE:
			i++;
			r->code = c;
			r->state = NQQ_ST_NREF;
			break;
		case NQQ_ST_NREF:
			i++;
			r->nref = c;
			r->got = 0;
			if (c > 0)
				r->state = NQQ_ST_REF;
			else
				expect_u32(r, NQQ_ST_LOGLEN);
			break;
		case NQQ_ST_REF:
			/* nref <= 255 = sizeof refusal, got < nref */
			take = r->nref - r->got;
			if (take > n - i)
				take = n - i;
			memcpy(r->refusal + r->got, p + i, take);
			r->got += (uint32_t)take;
			i += take;
			if (r->got == r->nref)
				expect_u32(r, NQQ_ST_LOGLEN);
			break;
		case NQQ_ST_LOGLEN:
			i++;
			if (!u32_byte(r, c))
				break;
			r->loglen = r->acc;
			if (r->loglen > NQQ_LOG_MAX)
				r->state = NQQ_ST_BAD;
			else
				r->state = r->loglen > 0 ? NQQ_ST_LOG : NQQ_ST_DONE;
			break;
		case NQQ_ST_LOG:
			/* loglen <= NQQ_LOG_MAX = sizeof log, got < loglen */
			take = r->loglen - r->got;
			if (take > n - i)
				take = n - i;
			memcpy(r->log + r->got, p + i, take);
			r->got += (uint32_t)take;
			i += take;
			if (r->got == r->loglen)
				r->state = NQQ_ST_DONE;
			break;
		case NQQ_ST_DONE:
		case NQQ_ST_BAD:
			break;
		}
	}
	*used = i;
	if (r->state == NQQ_ST_BAD)
		ev->type = NQQ_EV_BAD;
	else if (r->state == NQQ_ST_DONE)
		ev->type = NQQ_EV_DONE;
	return ev->type;
}

int nqq_socket_path(const char *home, char *out, size_t cap)
{
	size_t h;
	int slash;

	/* Empty is unset, as for the standalone program. */
	if (home == NULL || home[0] == '\0')
		home = DEFAULT_HOME;
	/* Relative to /var/qmail (qmail's cwd) would work by accident; the standalone program refuses it. */
	if (home[0] != '/')
		return -1;
	h = strlen(home);
	slash = home[h - 1] != '/';
	if (cap == 0 || h > cap - 1 || cap - 1 - h < (size_t)slash + sizeof SOCKET_NAME - 1)
		return -2;
	memcpy(out, home, h);
	if (slash)
		out[h++] = '/';
	memcpy(out + h, SOCKET_NAME, sizeof SOCKET_NAME);
	return 0;
}

unsigned nqq_parse_timeout(const char *s)
{
	unsigned long v = 0;

	if (s == NULL || *s == '\0')
		return NQQ_TIMEOUT_DEFAULT;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return NQQ_TIMEOUT_DEFAULT;
		if (v <= NQQ_TIMEOUT_MAX)
			v = v * 10 + (unsigned long)(*s - '0');
	}
	if (v == 0)
		return NQQ_TIMEOUT_DEFAULT;
	return v > NQQ_TIMEOUT_MAX ? NQQ_TIMEOUT_MAX : (unsigned)v;
}

enum nqq_reject nqq_parse_reject(const char *s)
{
	if (s == NULL)
		return NQQ_REJECT_AUTO;
	if (strcmp(s, "fd6") == 0)
		return NQQ_REJECT_FD6;
	if (strcmp(s, "fd4") == 0)
		return NQQ_REJECT_FD4;
	if (strcmp(s, "plain") == 0)
		return NQQ_REJECT_PLAIN;
	/* The standalone program refuses to start on a bad value; here that would lose the answer. */
	return NQQ_REJECT_AUTO;
}

unsigned nqq_refusal_targets(enum nqq_reject mode, const struct nqq_errfd *fd6, const struct nqq_errfd *fd4)
{
	switch (mode) {
	case NQQ_REJECT_FD6:
		return fd6->writable ? NQQ_TO_FD6 : 0;
	case NQQ_REJECT_FD4:
		return fd4->writable ? NQQ_TO_FD4 : 0;
	case NQQ_REJECT_PLAIN:
		return 0;
	case NQQ_REJECT_AUTO:
		break;
	}
	/* Only a pipe: on an unpatched qmail-smtpd a stray fd 6/4 is no error channel, and exit 82 there is
	 * a temporary error the sender retries forever. */
	return (fd6->writable && fd6->fifo ? NQQ_TO_FD6 : 0) | (fd4->writable && fd4->fifo ? NQQ_TO_FD4 : 0);
}

void nqq_clean_refusal(unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] < 0x20 || p[i] > 0x7e)
			p[i] = '?';
}

long nqq_env_block(char *const *envp, unsigned char *out, size_t cap)
{
	size_t len = 0;

	for (; envp != NULL && *envp != NULL; envp++) {
		size_t n = strlen(*envp) + 1;

		if (n > cap - len)
			return -1;
		memcpy(out + len, *envp, n);
		len += n;
	}
	return (long)len;
}

static size_t put_str(char *out, size_t at, size_t cap, const char *s, size_t n, int clean)
{
	if (at == 0 || n > cap - at)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		out[at + i] = clean && (c < 0x20 || c > 0x7e || c == '"' || c == '\\') ? '?' : (char)c;
	}
	return at + n;
}

size_t nqq_pending_line(const unsigned char *line, size_t n, int code, const char *pids, const char *why,
			char *out, size_t cap)
{
	char num[16];
	int json = n >= 2 && line[0] == '{' && line[n - 1] == '}';
	size_t at;

	if (n == 0 || cap < n + 2)
		return 0;
	snprintf(num, sizeof num, "%d", code & 0xff);
	memcpy(out, line, json ? n - 1 : n);
	at = json ? n - 1 : n;
	at = put_str(out, at, cap, json ? ",\"exit\":" : " exit=", json ? 8 : 6, 0);
	at = put_str(out, at, cap, num, strlen(num), 0);
	at = put_str(out, at, cap, json ? ",\"qq\":\"" : " qq=", json ? 7 : 4, 0);
	at = put_str(out, at, cap, pids[0] ? pids : "-", pids[0] ? strlen(pids) : 1, 1);
	at = put_str(out, at, cap, json ? "\",\"lost\":\"" : " lost=\"", json ? 10 : 7, 0);
	at = put_str(out, at, cap, why, strlen(why), 1);
	at = put_str(out, at, cap, json ? "\"}\n" : "\"\n", json ? 3 : 2, 0);
	return at;
}

size_t nqq_ahead_line(const unsigned char *line, size_t n, const char *pids, unsigned long ms, char *out,
		      size_t cap)
{
	char num[24];
	size_t at = 0, np = strlen(pids), nm;
	int seen_pids = 0, seen_ms = 0;

	nm = (size_t)snprintf(num, sizeof num, "%lu", ms);
	for (size_t i = 0; i < n; i++) {
		const char *s = (const char *)line + i;
		size_t k = 1;

		if (line[i] == 1) {
			if (seen_pids++)
				return 0;
			s = pids;
			k = np;
		} else if (line[i] == 2) {
			if (seen_ms++)
				return 0;
			s = num;
			k = nm;
		}
		if (k > cap - at)
			return 0;
		memcpy(out + at, s, k);
		at += k;
	}
	return seen_pids == 1 && seen_ms == 1 ? at : 0;
}

int nqq_sibling(const char *self, const char *name, char *out, size_t cap)
{
	const char *slash = strrchr(self, '/');
	size_t dir, n = strlen(name);

	if (slash == NULL)
		return -1;
	dir = (size_t)(slash - self) + 1;
	if (cap == 0 || dir > cap - 1 || n > cap - 1 - dir)
		return -1;
	memcpy(out, self, dir);
	memcpy(out + dir, name, n + 1);
	return 0;
}

#ifndef NQQ_NO_MAIN

/* ---- the program ---- */

/* What goes to the daemon, gathered while more input is ready to be read, so that a message that is
 * all there leaves in one send: first "NQQ1", the environment's length and the environment, then the
 * frames and end markers of fd 0 and fd 1. The frame being read into is "open": its length is written
 * in front of it when it is closed. */
static unsigned char out[8 + NQQ_ENV_MAX + 16 + NQQ_FRAME_MAX];
static size_t out_len;
static size_t frame_at; /* where the open frame's length goes */
static int frame_open;
static struct nqq_reply reply;

static struct {
	int sock;             /* the daemon, or -1 once it is gone */
	int copy[2];          /* memfds: everything read from fd 0 and fd 1, for the standalone program */
	int copy_ok;          /* the copies are complete so far (a failed write into one spoils that) */
	int consumed;         /* input was read: fd 0/1 can no longer be passed on as they are */
	int eof[2];           /* fd 0 / fd 1 read to the end */
	int input_broken;     /* a read of fd 0/1 failed: nobody can have the message any more */
	unsigned timeout_ms;  /* NQQUEUE_QQ_TIMEOUT: how long the daemon may keep us waiting */
	uint32_t queued;      /* copies qmail-queue accepted (exit 0) */
	unsigned refusal_to;  /* NQQ_TO_FD6 | NQQ_TO_FD4: where refusal text goes, as told to the daemon */
	pid_t pids[PIDS_KEPT]; /* each copy's qmail-queue, in order (0: could not be started) */
	uint32_t npids;
	char sockpath[sizeof(((struct sockaddr_un *)0)->sun_path)];
	/* As qmail-smtpd left them (it ignores SIGPIPE): the standalone program gets them back. */
	struct sigaction sigpipe, sigchld;
	sigset_t sigmask;
	struct nqq_errfd errfd6, errfd4;
} g = { .sock = -1, .copy = { -1, -1 }, .copy_ok = 1 };

/* NQQUEUE_QQ_TRACE=1 (the bench's breakdown, scripts/bench-daemon-breakdown.js): the CLOCK_MONOTONIC
 * time of each stage, written as one line on fd 2 at the end. Off, a stage costs one test. */
enum { T_START, T_CONNECTED, T_EARLY, T_SENT, T_DECIDED, T_FORKED, T_QQ_EXIT, T_ANSWERED, T_REPLY, T_N };
static const char *const stage_name[T_N] = { "start", "connected", "early", "sent", "decided", "forked", "qq_exit",
					     "answered", "reply" };
static long long stamps[T_N];
static int tracing;

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

#define STAMP(i) \
	do { \
		if (tracing) \
			stamps[i] = now_ns(); \
	} while (0)

static void trace_line(void)
{
	char line[512];
	size_t at;

	if (!tracing)
		return;
	/* At most 10 stamps of 20 digits and a name: the line always fits. */
	at = (size_t)snprintf(line, sizeof line, "nqqueue-qq: trace");
	for (int i = 0; i < T_N; i++)
		at += (size_t)snprintf(line + at, sizeof line - at, " %s=%lld", stage_name[i], stamps[i]);
	at += (size_t)snprintf(line + at, sizeof line - at, " end=%lld\n", now_ns());
	if (write(2, line, at) < 0)
		return;
}

/* The copy being handed to qmail-queue. */
static struct {
	int active;
	const char *path;
	pid_t pid;            /* -1: qmail-queue could not be started, or waited for */
	pid_t started;        /* the pid it had (0: none), for 'q' and the log */
	int in[2];            /* write ends of its fd 0 / fd 1 pipes, -1 when closed */
	long long deadline;
	int killed;
} q;

/* qmail-queue started early (NQQUEUE_QQ_EARLY=yes; off by default): once the daemon is connected, the
 * first copy's qmail-queue is started, as qmail-smtpd starts qmail-queue at DATA, so that its start
 * overlaps the input and the daemon's work instead of following them. It waits on two empty pipes.
 * The daemon's first copy goes to it; when there is none (a refusal, a daemon gone), both pipes are
 * closed unwritten: qmail-queue reads an empty message and no envelope, queues nothing (54), and is
 * waited for. */
static struct {
	pid_t pid;            /* 0: none */
	const char *path;
	int in[2];            /* write ends of its fd 0 / fd 1 pipes */
} early = { .in = { -1, -1 } };
static void early_abort(void);

__attribute__((format(printf, 1, 2))) static void say(const char *fmt, ...)
{
	char line[600];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof line - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof line - 2)
		n = (int)sizeof line - 2;
	line[n++] = '\n';
	/* fd 2 is qmail-smtpd's log: a lost line is no reason to change the answer. */
	if (write(2, line, (size_t)n) < 0)
		return;
}

/* Why the daemon could not be used: the first cause is kept (what follows is usually its echo) and
 * logged in one line with what was done about it. */
static char why[300];
/* The same as one of the fixed words of nqqueue-qq.h, for the standalone program's log line. */
static const char *why_code;

__attribute__((format(printf, 2, 3))) static void because(const char *code, const char *fmt, ...)
{
	va_list ap;

	if (why[0] != '\0')
		return;
	why_code = code;
	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
}

static const char *reason(void)
{
	return why[0] != '\0' ? why : "the daemon is gone";
}

static int write_all(int fd, const unsigned char *p, size_t n)
{
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

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* 1: fd is ready (or in error: the next call says which); 0: deadline passed; -1: poll failed. */
static int wait_for(int fd, short events, long long deadline)
{
	for (;;) {
		long long left = deadline - now_ms();
		struct pollfd p = { .fd = fd, .events = events };
		int r;

		if (left <= 0)
			return 0;
		r = poll(&p, 1, left > INT_MAX ? INT_MAX : (int)left);
		if (r > 0)
			return 1;
		if (r < 0 && errno != EINTR)
			return -1;
	}
}

/* The daemon must take each piece within the timeout: a daemon that stopped reading is a dead one. */
static int send_all(const unsigned char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(g.sock, p, n, MSG_NOSIGNAL);

		if (w > 0) {
			p += w;
			n -= (size_t)w;
		} else if (w < 0 && errno == EINTR) {
			continue;
		} else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (wait_for(g.sock, POLLOUT, now_ms() + g.timeout_ms) <= 0) {
				errno = ETIMEDOUT;
				return -1;
			}
		} else {
			return -1;
		}
	}
	return 0;
}

static void put_u32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static void drop_daemon(const char *cause)
{
	if (g.sock < 0)
		return;
	because(NQQ_WHY_DIED, "lost the daemon while sending: %s", cause);
	close(g.sock);
	g.sock = -1;
	/* No copy can come now: the early qmail-queue need not wait for the rest of a slow input. */
	early_abort();
}

static void close_frame(void)
{
	size_t n;

	if (!frame_open)
		return;
	frame_open = 0;
	n = out_len - frame_at - 4;
	if (n == 0)
		out_len = frame_at; /* nothing was read into it */
	else
		put_u32(out + frame_at, (uint32_t)n);
}

/* Everything gathered goes to the daemon (or is dropped once it is gone: the copies have it). */
static void flush_out(void)
{
	close_frame();
	if (out_len > 0 && g.sock >= 0 && send_all(out, out_len) < 0)
		drop_daemon(strerror(errno));
	out_len = 0;
}

/* An end marker (0) or the read-error marker after the current stream. */
static void out_u32(uint32_t v)
{
	close_frame();
	if (sizeof out - out_len < 4)
		flush_out();
	put_u32(out + out_len, v);
	out_len += 4;
}

/* Bytes gathered and not sent yet (an open frame's length not counted while nothing is in it). */
static int have_output(void)
{
	return out_len > (frame_open && out_len == frame_at + 4 ? 4u : 0u);
}

/* 1 when a read of fd `in` would not wait (data, EOF or an error is there). */
static int input_ready(int in)
{
	struct pollfd p = { .fd = in, .events = POLLIN };

	return poll(&p, 1, 0) == 1;
}

static void keep(int in, const unsigned char *p, size_t n)
{
	if (g.copy_ok && write_all(g.copy[in], p, n) < 0) {
		say("nqqueue-qq: cannot keep a copy of the input (%s): no fallback for this message",
		    strerror(errno));
		g.copy_ok = 0;
	}
}

/* Reads fd `in` (0 or 1) to EOF into its copy and, while there is a daemon, to the daemon as frames.
 * 0 at EOF, -1 when the read failed. */
static int pump(int in)
{
	for (;;) {
		size_t room;
		ssize_t n;

		if (!frame_open) {
			if (sizeof out - out_len < 4 + 4096)
				flush_out();
			frame_at = out_len;
			out_len += 4;
			frame_open = 1;
		}
		room = NQQ_FRAME_MAX - (out_len - frame_at - 4);
		if (room > sizeof out - out_len)
			room = sizeof out - out_len;
		/* A full frame goes now; so does what is gathered before a read that would wait: the
		 * daemon gets the input as it comes, never later than it would one read at a time. */
		if (room == 0 || (have_output() && !input_ready(in))) {
			flush_out();
			continue;
		}
		n = read(in, out + out_len, room);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			say("nqqueue-qq: cannot read fd %d: %s", in, strerror(errno));
			g.input_broken = 1;
			close_frame();
			return -1;
		}
		if (n == 0) {
			g.eof[in] = 1;
			out_u32(0);
			return 0;
		}
		g.consumed = 1;
		/* The copy first: if the send fails, the standalone program still gets this chunk. */
		keep(in, out + out_len, (size_t)n);
		out_len += (size_t)n;
	}
}

static _Noreturn void exec_standalone(void)
{
	char self[PATH_MAX], path[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	char *argv[2];

	if (n <= 0) {
		say("nqqueue-qq: cannot find my own executable (/proc/self/exe: %s): message deferred",
		    n < 0 ? strerror(errno) : "empty");
		exit(EXIT_TEMPORARY);
	}
	self[n] = '\0';
	if (nqq_sibling(self, STANDALONE, path, sizeof path) < 0) {
		say("nqqueue-qq: no room for the standalone program's path: message deferred");
		exit(EXIT_TEMPORARY);
	}
	argv[0] = path;
	argv[1] = NULL;
	sigaction(SIGPIPE, &g.sigpipe, NULL);
	sigaction(SIGCHLD, &g.sigchld, NULL);
	sigprocmask(SIG_SETMASK, &g.sigmask, NULL);
	/* Why, for its log line (`via=fallback why=...`): one of a few fixed words, set here only — the
	 * inherited variable of that name was removed at start. */
	if (setenv(FALLBACK_VAR, why_code != NULL ? why_code : NQQ_WHY_DIED, 1) < 0)
		say("nqqueue-qq: cannot set %s: %s", FALLBACK_VAR, strerror(errno));
	/* Our socket and memfds are close-on-exec; fd 2 and the error descriptors 6/4 go on to it, as the
	 * standalone program writes the log and the refusal text itself. */
	execve(path, argv, environ);
	say("nqqueue-qq: cannot run %s: %s: message deferred", path, strerror(errno));
	exit(EXIT_TEMPORARY);
}

/* Runs the standalone program on exactly the input qmail-smtpd gave: fd 0/1 as they are if nothing was
 * read yet, else the copies completed with the rest of the input. */
static _Noreturn void fall_back(void)
{
	early_abort();
	if (g.sock >= 0) {
		close(g.sock);
		g.sock = -1;
	}
	if (g.consumed) {
		for (int in = 0; in < 2; in++) {
			if (g.eof[in])
				continue;
			if (pump(in) < 0)
				exit(EXIT_READ_ERROR);
		}
		if (!g.copy_ok) {
			say("nqqueue-qq: no complete copy of the input for the standalone program: message deferred");
			exit(EXIT_TEMPORARY);
		}
		for (int in = 0; in < 2; in++) {
			/* dup2 clears close-on-exec on the new descriptor only. */
			if (lseek(g.copy[in], 0, SEEK_SET) < 0 || dup2(g.copy[in], in) < 0) {
				say("nqqueue-qq: cannot put the copy of fd %d in place: %s: message deferred", in,
				    strerror(errno));
				exit(EXIT_TEMPORARY);
			}
		}
	}
	say("nqqueue-qq: %s: running the standalone program", reason());
	exec_standalone();
}

/* ---- qmail-queue for one copy, as the standalone program runs it ---- */

/* In the child: only fds 0-2 go on (never the error channel: qmail-smtpd reads it to EOF and would
 * wait for a qmail-queue holding it), default signal handling, nothing blocked — as Node's spawn does. */
static void child_reset(void)
{
	struct sigaction dfl;
	sigset_t none;

#ifdef SYS_close_range
	if (syscall(SYS_close_range, 3u, ~0u, 0u) != 0)
#endif
	{
		long max = sysconf(_SC_OPEN_MAX);

		for (long fd = 3; fd < (max > 0 && max < 65536 ? max : 65536); fd++)
			close((int)fd);
	}
	memset(&dfl, 0, sizeof dfl);
	dfl.sa_handler = SIG_DFL;
	for (int s = 1; s < NSIG; s++)
		if (s != SIGKILL && s != SIGSTOP)
			sigaction(s, &dfl, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
#define HAVE_SPAWN_CLOSEFROM 1
#endif

/* vfork and exec, as posix_spawn does: an exec that fails is this call's failure (-1, logged), not a
 * child's exit, and we go on once the child has exec'ed. Against fork and a close-on-exec pipe for the
 * errno, vfork makes no copy of our page tables to tear down again at the exec: 0.05-0.12 ms a message
 * less, side by side. The child only makes system calls through libc's plain wrappers, writes only
 * `err` (ours until it execs or exits) and _exits; we install no signal handlers that could run in it
 * (SIGPIPE is ignored, SIGCHLD default, and child_reset sets every one to its default before
 * unblocking). */
static pid_t vfork_qq(const char *path, int in0, int in1, char **argv)
{
	static volatile int err;
	pid_t pid;

	err = 0;
	pid = vfork();
	if (pid < 0) {
		say("nqqueue-qq: fork: %s", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		if (dup2(in0, 0) < 0 || dup2(in1, 1) < 0) {
			err = errno;
		} else {
			child_reset();
			execve(path, argv, environ);
			err = errno;
		}
		_exit(COPY_FAILED);
	}
	if (err != 0) {
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		say("nqqueue-qq: cannot run %s: %s", path, strerror(err));
		return -1;
	}
	return pid;
}

/* qmail-queue with fd 0/1 on `in0`/`in1`, as child_reset leaves a child. With glibc's posix_spawn (a
 * vfork: no copy of our address space, and we wait only for its exec) where it can close the other
 * descriptors itself, else vfork_qq. Its pid, or -1 (logged). */
static pid_t spawn_qq(const char *path, int in0, int in1)
{
	char *argv[2] = { (char *)path, NULL };
#ifdef HAVE_SPAWN_CLOSEFROM
	pid_t pid;
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t all, none;
	int err;

	sigfillset(&all);
	sigemptyset(&none);
	if (posix_spawn_file_actions_init(&fa) != 0)
		goto forked;
	if (posix_spawnattr_init(&at) != 0) {
		posix_spawn_file_actions_destroy(&fa);
		goto forked;
	}
	err = posix_spawn_file_actions_adddup2(&fa, in0, 0);
	if (err == 0)
		err = posix_spawn_file_actions_adddup2(&fa, in1, 1);
	if (err == 0)
		err = posix_spawn_file_actions_addclosefrom_np(&fa, 3);
	if (err == 0)
		err = posix_spawnattr_setsigdefault(&at, &all);
	if (err == 0)
		err = posix_spawnattr_setsigmask(&at, &none);
	if (err == 0)
		err = posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
	if (err == 0)
		err = posix_spawn(&pid, path, &fa, &at, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	if (err == 0)
		return pid;
	/* The exec itself failed (ENOENT, EACCES...): the same line as vfork_qq's. */
	say("nqqueue-qq: cannot run %s: %s", path, strerror(err));
	return -1;
forked:
#endif
	return vfork_qq(path, in0, in1, argv);
}

static const char *signame(int sig)
{
	static char other[24];

	switch (sig) {
	case SIGKILL: return "SIGKILL";
	case SIGTERM: return "SIGTERM";
	case SIGSEGV: return "SIGSEGV";
	case SIGABRT: return "SIGABRT";
	case SIGBUS: return "SIGBUS";
	case SIGPIPE: return "SIGPIPE";
	case SIGINT: return "SIGINT";
	case SIGHUP: return "SIGHUP";
	case SIGALRM: return "SIGALRM";
	default:
		snprintf(other, sizeof other, "signal %d", sig);
		return other;
	}
}

/* qmail-queue on two fresh pipes: `in` gets the write ends of its fd 0 and fd 1, non-blocking (so a
 * qmail-queue that stops reading is caught by a deadline). Its pid, or -1 with `in` unset. */
static pid_t start_qq(const char *path, int in[2], int quiet)
{
	int m[2] = { -1, -1 }, e[2] = { -1, -1 };
	pid_t pid = -1;

	in[0] = in[1] = -1;
	if (pipe2(m, O_CLOEXEC) < 0 || pipe2(e, O_CLOEXEC) < 0) {
		if (!quiet)
			say("nqqueue-qq: pipe: %s", strerror(errno));
	} else {
		pid = spawn_qq(path, m[0], e[0]);
	}
	for (int i = 0; i < 2; i++) {
		if (m[i] >= 0 && (i == 0 || pid < 0))
			close(m[i]);
		if (e[i] >= 0 && (i == 0 || pid < 0))
			close(e[i]);
	}
	if (pid < 0)
		return -1;
	in[0] = m[1];
	in[1] = e[1];
	fcntl(in[0], F_SETFL, O_NONBLOCK);
	fcntl(in[1], F_SETFL, O_NONBLOCK);
	return pid;
}

/* The program run for a copy: NQQUEUE_QMAILQUEUE, or the default when it is unset or empty. */
static const char *qq_path(void)
{
	const char *path = getenv("NQQUEUE_QMAILQUEUE");

	return path == NULL || path[0] == '\0' ? DEFAULT_QMAILQUEUE : path;
}

static void copy_start(uint32_t timeout_ms)
{
	const char *path = qq_path();

	q.active = 1;
	q.path = path;
	q.pid = -1;
	q.started = 0;
	q.in[0] = q.in[1] = -1;
	q.killed = 0;
	q.deadline = now_ms() + timeout_ms;
	if (path[0] != '/') {
		say("nqqueue-qq: NQQUEUE_QMAILQUEUE must be an absolute path");
		return;
	}
	q.pid = start_qq(path, q.in, 0);
	if (q.pid > 0)
		q.started = q.pid;
	STAMP(T_FORKED);
}

static void copy_close(int stream)
{
	if (q.in[stream] >= 0) {
		close(q.in[stream]);
		q.in[stream] = -1;
	}
}

static void copy_kill(void)
{
	if (q.pid > 0 && !q.killed) {
		say("nqqueue-qq: qmail-queue timed out: killed");
		kill(q.pid, SIGKILL);
		q.killed = 1;
	}
	copy_close(0);
	copy_close(1);
}

static void copy_data(int stream, const unsigned char *p, size_t n)
{
	while (n > 0 && q.in[stream] >= 0) {
		ssize_t w = write(q.in[stream], p, n);

		if (w > 0) {
			p += w;
			n -= (size_t)w;
		} else if (w < 0 && errno == EINTR) {
			continue;
		} else if (w < 0 && errno == EAGAIN) {
			if (wait_for(q.in[stream], POLLOUT, q.deadline) <= 0)
				copy_kill();
		} else {
			/* qmail-queue went away (EPIPE): the rest of this copy is drained from the socket
			 * and dropped; its exit status tells what happened. */
			copy_close(stream);
		}
	}
}

/* Waits for child `pid` until `deadline`. 1: it ended (*status set); 0: the deadline passed; -1: waitpid
 * failed. */
static int wait_child(pid_t pid, long long deadline, int *status)
{
	sigset_t chld;

	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	for (;;) {
		pid_t r = waitpid(pid, status, WNOHANG);
		long long left;
		struct timespec ts;

		if (r == pid)
			return 1;
		if (r < 0 && errno != EINTR)
			return -1;
		left = deadline - now_ms();
		if (left <= 0)
			return 0;
		/* SIGCHLD is blocked, so it waits here as a pending signal. */
		ts.tv_sec = left / 1000;
		ts.tv_nsec = (left % 1000) * 1000000;
		sigtimedwait(&chld, NULL, &ts);
	}
}

/* Closes what is still open (an unfinished envelope: qmail-queue then queues nothing), waits for
 * qmail-queue until the copy's deadline and returns its status: its exit code or COPY_FAILED. */
static unsigned char copy_finish(void)
{
	int status = 0;

	copy_close(0);
	copy_close(1);
	q.active = 0;
	if (g.npids < PIDS_KEPT)
		g.pids[g.npids] = q.started;
	g.npids++;
	if (q.pid < 0)
		return COPY_FAILED;
	switch (wait_child(q.pid, q.deadline, &status)) {
	case 1:
		STAMP(T_QQ_EXIT);
		break;
	case 0:
		copy_kill();
		while (waitpid(q.pid, &status, 0) < 0 && errno == EINTR)
			;
		break;
	default:
		status = -1;
	}
	q.pid = -1;
	/* 'q' carries no more than 255 for this: the log says which. */
	if (status != -1 && WIFSIGNALED(status) && !q.killed)
		say("nqqueue-qq: %s was killed by %s", q.path, signame(WTERMSIG(status)));
	if (q.killed || status == -1 || !WIFEXITED(status))
		return COPY_FAILED;
	return (unsigned char)WEXITSTATUS(status);
}

/* Waits for a qmail-queue that was told to give up (its fd 1 closed empty: it queues nothing), killing
 * it should it not go within the client's timeout. */
static void reap_quietly(pid_t pid)
{
	int status;

	if (wait_child(pid, now_ms() + g.timeout_ms, &status) == 0) {
		kill(pid, SIGKILL);
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
	}
}

/* Once the daemon is connected: the first copy's qmail-queue, started (see `early`). Nothing is said
 * when it cannot be: the first copy then starts qmail-queue as usual, and reports any trouble. */
static void early_start(void)
{
	const char *opt = getenv("NQQUEUE_QQ_EARLY");
	const char *path = qq_path();
	pid_t pid;

	if (opt == NULL || (strcmp(opt, "yes") != 0 && strcmp(opt, "1") != 0))
		return;
	if (g.sock < 0 || path[0] != '/' || access(path, X_OK) != 0)
		return;
	pid = start_qq(path, early.in, 1);
	if (pid > 0) {
		early.pid = pid;
		early.path = path;
	}
}

/* The early qmail-queue's pipes closed unwritten (it then queues nothing) and it forgotten; its pid. */
static pid_t early_drop(void)
{
	pid_t pid = early.pid;

	close(early.in[0]);
	close(early.in[1]);
	early.in[0] = early.in[1] = -1;
	early.pid = 0;
	return pid;
}

/* Before the client ends or runs anything else: an early qmail-queue no copy went to gives up. */
static void early_abort(void)
{
	if (early.pid > 0)
		reap_quietly(early_drop());
}

/* The first copy goes to the early qmail-queue — unless it is gone already (killed while it waited
 * through the input and the decision): then to one started now, as without NQQUEUE_QQ_EARLY. */
static void early_adopt(uint32_t timeout_ms)
{
	int status;

	if (waitpid(early.pid, &status, WNOHANG) == early.pid) {
		say("nqqueue-qq: the early qmail-queue ended before the copy came (%s %d): starting another",
		    WIFSIGNALED(status) ? "signal" : "exit", WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
		early_drop();
		copy_start(timeout_ms);
		return;
	}
	q.active = 1;
	q.path = early.path;
	q.pid = early.pid;
	q.started = early.pid;
	q.in[0] = early.in[0];
	q.in[1] = early.in[1];
	q.killed = 0;
	q.deadline = now_ms() + timeout_ms;
	early.pid = 0;
	early.in[0] = early.in[1] = -1;
	STAMP(T_FORKED);
}

/* ---- the daemon's answer ---- */

#define PIDS_TEXT (PIDS_KEPT * 12 + 8)

/* Each copy's qmail-queue pid, comma-separated (",..." when more than were kept). */
static void pids_text(char out[PIDS_TEXT])
{
	size_t at = 0;

	out[0] = '\0';
	for (uint32_t i = 0; i < g.npids && i < PIDS_KEPT; i++)
		at += (size_t)snprintf(out + at, PIDS_TEXT - at, "%s%ld", i ? "," : "", (long)g.pids[i]);
	if (g.npids > PIDS_KEPT)
		snprintf(out + at, PIDS_TEXT - at, ",...");
}

static void log_pending(int code);

/* When the decision came (for the answer ahead's milliseconds). */
static long long decided_ns;

/* Every copy queued and the daemon said ahead what it would then answer ('A'): the line and exit 0
 * now. The daemon sends no reply then (it has every 'q'; nothing it does after can change the
 * message's fate). A line that cannot be completed (never, from a daemon that keeps to the protocol)
 * gives the pending line instead, as when the daemon is gone after every copy was queued. */
static void answer_ahead(void)
{
	static char line[NQQ_PENDING_MAX + PIDS_TEXT + 32];
	char pids[PIDS_TEXT];
	unsigned long long us;
	size_t n = 0;

	if (reply.aheadlen == 0 || g.queued != reply.copies)
		return;
	STAMP(T_REPLY);
	early_abort();
	pids_text(pids);
	us = reply.ahead_us + (unsigned long long)((now_ns() - decided_ns) / 1000);
	if (g.npids <= PIDS_KEPT)
		n = nqq_ahead_line(reply.ahead, reply.aheadlen, pids, (unsigned long)((us + 500) / 1000), line,
				   sizeof line);
	if (n > 0) {
		write_all(2, (const unsigned char *)line, n);
	} else {
		because(NQQ_WHY_PROTOCOL, "the line given ahead could not be completed");
		say("nqqueue-qq: %s, but all %u copies were queued: accepted", reason(), (unsigned)g.queued);
		log_pending(0);
	}
	trace_line();
	exit(0);
}

/* Reads the daemon's side to 'R' ... log, running qmail-queue for each copy on the way. 0: complete;
 * -1: the connection broke, went silent or spoke nonsense (the reason was logged). */
static int read_reply(void)
{
	unsigned char buf[65536];

	nqq_reply_init(&reply);
	for (;;) {
		ssize_t n = recv(g.sock, buf, sizeof buf, 0);
		size_t off = 0, used;
		struct nqq_ev ev;
		int w;

		while (n > 0 && off < (size_t)n) {
			switch (nqq_reply_next(&reply, buf + off, (size_t)n - off, &used, &ev)) {
			case NQQ_EV_MORE:
				break;
			case NQQ_EV_DECIDED:
				STAMP(T_DECIDED);
				decided_ns = now_ns();
				break;
			case NQQ_EV_COPY:
				if (early.pid > 0)
					early_adopt(ev.value);
				else
					copy_start(ev.value);
				break;
			case NQQ_EV_DATA:
				copy_data(ev.stream, ev.data, ev.len);
				break;
			case NQQ_EV_END:
				if (ev.stream == 0) {
					copy_close(0);
				} else {
					unsigned char ans[6] = { 'q', copy_finish() };

					put_u32(ans + 2, (uint32_t)q.started);
					if (ans[1] == 0)
						g.queued++;
					if (send_all(ans, 6) < 0) {
						because(NQQ_WHY_DIED, "cannot answer the daemon: %s", strerror(errno));
						return -1;
					}
					STAMP(T_ANSWERED);
					if (ans[1] == 0)
						answer_ahead();
				}
				break;
			case NQQ_EV_DONE:
				STAMP(T_REPLY);
				early_abort();
				return 0;
			case NQQ_EV_BAD:
				because(NQQ_WHY_PROTOCOL, "malformed reply from the daemon");
				return -1;
			}
			off += used;
		}
		if (n > 0)
			continue;
		if (n == 0) {
			because(NQQ_WHY_DIED, "the daemon closed the connection before its reply was complete");
			return -1;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK) {
			because(NQQ_WHY_DIED, "reading the daemon's reply: %s", strerror(errno));
			return -1;
		}
		/* Silence is measured from the last thing that happened: the end of the input, a byte
		 * from the daemon or a finished copy. */
		w = wait_for(g.sock, POLLIN, now_ms() + g.timeout_ms);
		if (w == 0) {
			because(NQQ_WHY_TIMEOUT, "no word from the daemon for %u s", g.timeout_ms / 1000);
			return -1;
		}
		if (w < 0) {
			because(NQQ_WHY_DIED, "waiting for the daemon: %s", strerror(errno));
			return -1;
		}
	}
}

/* What qmail-smtpd gets: the log on fd 2, the refusal on the error channel, the exit code. */
static int relay(void)
{
	int code = reply.code;

	if (reply.loglen > 0)
		write_all(2, reply.log, reply.loglen);
	if ((code == 31 || code == 71) && reply.nref > 0) {
		unsigned targets = g.refusal_to;
		int written = 0;

		nqq_clean_refusal(reply.refusal, reply.nref);
		for (int i = 0; i < 2; i++) {
			int fd = i == 0 ? 6 : 4;
			struct pollfd p = { .fd = fd, .events = POLLOUT };

			if (!(targets & (i == 0 ? NQQ_TO_FD6 : NQQ_TO_FD4)))
				continue;
			/* Never block on a pipe nobody reads: not writable now counts as not written, as with
			 * the standalone program's non-blocking write. At most 255 bytes < PIPE_BUF: all or
			 * nothing. */
			if (poll(&p, 1, 0) != 1 || !(p.revents & POLLOUT))
				continue;
			if (write(fd, reply.refusal, reply.nref) == (ssize_t)reply.nref)
				written = 1;
		}
		if (written)
			code = EXIT_CUSTOM;
		else if (targets != 0)
			/* The daemon's line says 82: it was told where the text would go. */
			say("nqqueue-qq: the refusal text could not be written to fd %s: exit %d, not 82",
			    targets == NQQ_TO_FD4 ? "4" : targets == NQQ_TO_FD6 ? "6" : "6 or 4", code);
	}
	return code;
}

/* The daemon is gone without a complete answer. Whatever qmail-queue accepted decides: nothing → the
 * standalone program may safely start over; everything → done; some → deferred (a retry duplicates
 * the queued part, dropping would lose the rest). */
/* The daemon's pending line ('L'), completed with the exit and the copies, so that a message whose
 * copies were queued still has its log line. */
static void log_pending(int code)
{
	static char line[NQQ_PENDING_MAX + 1024];
	char pids[PIDS_TEXT];
	size_t n;

	pids_text(pids);
	n = nqq_pending_line(reply.pending, reply.pendlen, code, pids, reason(), line, sizeof line);
	if (n > 0 && write_all(2, (const unsigned char *)line, n) < 0)
		return;
}

static _Noreturn void lost_daemon(void)
{
	if (q.active && copy_finish() == 0)
		g.queued++;
	early_abort();
	if (g.queued == 0) {
		if (g.input_broken) {
			say("nqqueue-qq: %s: input unreadable (54)", reason());
			exit(EXIT_READ_ERROR);
		}
		fall_back();
	}
	if (g.queued >= reply.copies) {
		say("nqqueue-qq: %s, but all %u copies were queued: accepted", reason(), (unsigned)g.queued);
		log_pending(0);
		exit(0);
	}
	say("nqqueue-qq: %s after %u of %u copies were queued: message deferred", reason(), (unsigned)g.queued,
	    (unsigned)reply.copies);
	log_pending(EXIT_TEMPORARY);
	exit(EXIT_TEMPORARY);
}

static void probe_errfd(int fd, struct nqq_errfd *e)
{
	struct stat st;
	int fl = fcntl(fd, F_GETFL);

	e->writable = fl >= 0 && ((fl & O_ACCMODE) == O_WRONLY || (fl & O_ACCMODE) == O_RDWR);
	e->fifo = e->writable && fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode);
}

int main(void)
{
	struct sigaction sa_ign, sa_dfl;
	struct sockaddr_un sa;
	sigset_t chld;
	int rc;
	long envlen;

	tracing = getenv("NQQUEUE_QQ_TRACE") != NULL && strcmp(getenv("NQQUEUE_QQ_TRACE"), "1") == 0;
	STAMP(T_START);
	/* Before anything of ours can take those numbers. */
	probe_errfd(6, &g.errfd6);
	probe_errfd(4, &g.errfd4);
	g.refusal_to = nqq_refusal_targets(nqq_parse_reject(getenv("NQQUEUE_REJECT")), &g.errfd6, &g.errfd4);
	/* Ours to set: a tcprules line must not speak for the client. */
	unsetenv(FALLBACK_VAR);
	unsetenv(PID_VAR);
	unsetenv(ERRFDS_VAR);
	unsetenv(AHEAD_VAR);
	/* A missing fd 0-2 would be taken by our socket or memfd, and the log or input would go astray. */
	for (int fd = 0; fd < 3; fd++)
		if (fcntl(fd, F_GETFD) < 0 && errno == EBADF && open("/dev/null", O_RDWR) != fd)
			exit(EXIT_TEMPORARY);

	/* EPIPE instead of death when the daemon or qmail-queue goes away; SIGCHLD blocked and not
	 * ignored, so qmail-queue's exit can be waited for with a deadline. */
	memset(&sa_ign, 0, sizeof sa_ign);
	sa_ign.sa_handler = SIG_IGN;
	sigemptyset(&sa_ign.sa_mask);
	sa_dfl = sa_ign;
	sa_dfl.sa_handler = SIG_DFL;
	sigaction(SIGPIPE, &sa_ign, &g.sigpipe);
	sigaction(SIGCHLD, &sa_dfl, &g.sigchld);
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, &g.sigmask);
	g.timeout_ms = nqq_parse_timeout(getenv("NQQUEUE_QQ_TIMEOUT")) * 1000u;

	rc = nqq_socket_path(getenv("NQQUEUE_HOME"), g.sockpath, sizeof g.sockpath);
	if (rc < 0) {
		say("nqqueue-qq: NQQUEUE_HOME %s: running the standalone program",
		    rc == -1 ? "is not an absolute path" : "is too long for a socket path");
		why_code = NQQ_WHY_BAD_HOME;
		exec_standalone();
	}
	/* The environment, then the client's own entries: its pid (what qmail-smtpd shows as `qp`),
	 * where refusal text will go (so the daemon's line has the exit qmail-smtpd sees) and that it
	 * takes an answer ahead. */
	envlen = nqq_env_block(environ, out + 8, NQQ_ENV_MAX - 96);
	if (envlen < 0) {
		say("nqqueue-qq: environment over %u bytes: running the standalone program", NQQ_ENV_MAX - 96);
		why_code = NQQ_WHY_ENV;
		exec_standalone();
	}
	envlen += snprintf((char *)out + 8 + envlen, 64, "%s=%ld", PID_VAR, (long)getpid()) + 1;
	envlen += snprintf((char *)out + 8 + envlen, 32, "%s=%s%s%s", ERRFDS_VAR,
			   g.refusal_to & NQQ_TO_FD6 ? "6" : "", g.refusal_to == (NQQ_TO_FD6 | NQQ_TO_FD4) ? "," : "",
			   g.refusal_to & NQQ_TO_FD4 ? "4" : "") + 1;
	/* This client takes an answer ahead ('A'). */
	envlen += snprintf((char *)out + 8 + envlen, 32, "%s=1", AHEAD_VAR) + 1;
	g.copy[0] = memfd_create("nqqueue-qq-message", MFD_CLOEXEC);
	g.copy[1] = memfd_create("nqqueue-qq-envelope", MFD_CLOEXEC);
	if (g.copy[0] < 0 || g.copy[1] < 0) {
		say("nqqueue-qq: memfd_create: %s: running the standalone program", strerror(errno));
		why_code = NQQ_WHY_MEMFD;
		exec_standalone();
	}

	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, g.sockpath, strlen(g.sockpath) + 1);
	/* Non-blocking: a full listen queue (EAGAIN) means an overloaded daemon; go standalone at once. */
	g.sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (g.sock < 0 || connect(g.sock, (struct sockaddr *)&sa, sizeof sa) < 0) {
		int e = errno;

		because(g.sock < 0 ? NQQ_WHY_CONNECT
			: e == ENOENT ? NQQ_WHY_NO_SOCKET
			: e == ECONNREFUSED ? NQQ_WHY_REFUSED
			: e == EACCES || e == EPERM ? NQQ_WHY_PERMISSION
			: e == EAGAIN ? NQQ_WHY_BUSY
			: NQQ_WHY_CONNECT,
			"cannot connect to %s: %s", g.sockpath, strerror(e));
		fall_back();
	}
	STAMP(T_CONNECTED);
	early_start();
	STAMP(T_EARLY);

	/* The greeting leaves with the first input, or alone before a read that would wait. */
	memcpy(out, "NQQ1", 4);
	put_u32(out + 4, (uint32_t)envlen);
	out_len = 8 + (size_t)envlen;

	if (pump(0) == 0)
		pump(1);
	if (g.input_broken)
		/* Nothing more follows the marker; the daemon answers 54, and so do we if it cannot. */
		out_u32(0xffffffffu);
	flush_out();
	STAMP(T_SENT);
	if (g.sock < 0 && !g.input_broken)
		fall_back();
	if (g.sock < 0 || read_reply() < 0)
		lost_daemon();
	rc = relay();
	trace_line();
	exit(rc);
}

#endif
