/* fuzz-reply.c: libFuzzer harness for what nqqueue-qq parses but did not produce: the daemon's side of
 * the exchange (decision, answer ahead, copies for qmail-queue, reply), split anywhere — fed whole and in pieces, both
 * must give the same events — and NQQUEUE_HOME, NQQUEUE_QQ_TIMEOUT,
 * NQQUEUE_REJECT, the environment block and the path of the standalone program.
 *
 *   node scripts/build-qq.js --fuzz --run 60      (clang with libFuzzer; see docs/daemon-protocol.md)
 *
 * The first input byte picks the target; a broken invariant traps, like a sanitizer report. */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nqqueue-qq.h"

#define CHECK(c) \
	do { \
		if (!(c)) \
			__builtin_trap(); \
	} while (0)

static struct nqq_reply whole, pieces;

/* What a parse produced, independent of how the input was split: each event as a tag and its value,
 * the bytes of consecutive DATA events of one stream run together. */
struct transcript {
	unsigned char b[3 * 65536];
	size_t n;
	int in_data; /* the last entry was DATA of this stream + 1 */
};

static void put(struct transcript *t, const void *p, size_t n)
{
	CHECK(n <= sizeof t->b - t->n);
	memcpy(t->b + t->n, p, n);
	t->n += n;
}

static void record(struct transcript *t, const struct nqq_ev *ev)
{
	unsigned char tag[6] = { (unsigned char)ev->type, (unsigned char)ev->stream };

	if (ev->type == NQQ_EV_MORE)
		return;
	if (ev->type == NQQ_EV_DATA) {
		CHECK(ev->len > 0 && ev->len <= NQQ_FRAME_MAX);
		if (t->in_data != ev->stream + 1)
			put(t, tag, 2);
		t->in_data = ev->stream + 1;
		put(t, ev->data, ev->len);
		return;
	}
	t->in_data = 0;
	memcpy(tag + 2, &ev->value, 4);
	put(t, tag, 6);
}

static struct transcript tw, tp;

/* Feeds p[0..n) to r in pieces of `step` bytes or less (0: all at once); returns the last event. */
static enum nqq_ev_type run(struct nqq_reply *r, struct transcript *t, const uint8_t *p, size_t n, size_t seed,
			    size_t *consumed)
{
	size_t at = 0;
	enum nqq_ev_type last = NQQ_EV_MORE;

	nqq_reply_init(r);
	t->n = 0;
	t->in_data = 0;
	while (at < n) {
		size_t k = seed == 0 ? n - at : 1 + (seed * 31 + at) % 7;
		size_t off = 0;

		if (k > n - at)
			k = n - at;
		/* Like the client: each piece is offered until it is used up or the parse ends. */
		while (off < k) {
			struct nqq_ev ev;
			size_t u;

			last = nqq_reply_next(r, p + at + off, k - off, &u, &ev);
			CHECK(u <= k - off);
			CHECK(ev.type == last);
			record(t, &ev);
			off += u;
			if (last == NQQ_EV_DONE || last == NQQ_EV_BAD)
				break;
			/* An event either took bytes or ended the parse; MORE takes all. */
			CHECK(u > 0);
			CHECK(last != NQQ_EV_MORE || off == k);
		}
		at += off;
		if (last == NQQ_EV_DONE || last == NQQ_EV_BAD)
			break;
	}
	*consumed = at;
	return last;
}

static void reply_target(const uint8_t *p, size_t n)
{
	size_t used_w, used_p, u;
	enum nqq_ev_type a, b;
	struct nqq_ev ev;

	if (n == 0)
		return;
	a = run(&whole, &tw, p + 1, n - 1, 0, &used_w);
	b = run(&pieces, &tp, p + 1, n - 1, p[0] | 1, &used_p);
	CHECK(a == b);
	CHECK(used_w == used_p);
	CHECK(tw.n == tp.n && memcmp(tw.b, tp.b, tw.n) == 0);
	CHECK(whole.decided == pieces.decided && whole.copies == pieces.copies);
	CHECK(whole.pending_seen == pieces.pending_seen && whole.pendlen == pieces.pendlen);
	if (whole.pending_seen && a != NQQ_EV_BAD) {
		CHECK(whole.pendlen <= NQQ_PENDING_MAX);
		CHECK(memcmp(whole.pending, pieces.pending, whole.pendlen) == 0);
	}
	CHECK(whole.ahead_seen == pieces.ahead_seen && whole.aheadlen == pieces.aheadlen && whole.ahead_us == pieces.ahead_us);
	if (whole.ahead_seen && a != NQQ_EV_BAD) {
		CHECK(whole.aheadlen <= NQQ_PENDING_MAX);
		CHECK(memcmp(whole.ahead, pieces.ahead, whole.aheadlen) == 0);
	}
	CHECK(whole.started <= whole.copies);
	if (a == NQQ_EV_DONE) {
		CHECK(whole.code == pieces.code && whole.nref == pieces.nref && whole.loglen == pieces.loglen);
		CHECK(whole.loglen <= NQQ_LOG_MAX);
		CHECK(memcmp(whole.refusal, pieces.refusal, whole.nref) == 0);
		CHECK(memcmp(whole.log, pieces.log, whole.loglen) == 0);
		nqq_clean_refusal(whole.refusal, whole.nref);
		for (size_t i = 0; i < whole.nref; i++)
			CHECK(whole.refusal[i] >= 0x20 && whole.refusal[i] <= 0x7e);
	}
	/* Once finished, more bytes change nothing. */
	if (a == NQQ_EV_DONE || a == NQQ_EV_BAD) {
		CHECK(nqq_reply_next(&whole, p, n, &u, &ev) == a && u == 0);
	}
}

/* The input as a NUL-terminated string in a buffer of its own, so overreads show. */
static char *cstr(const uint8_t *p, size_t n)
{
	char *s = malloc(n + 1);

	if (s == NULL)
		abort();
	memcpy(s, p, n);
	s[n] = '\0';
	return s;
}

static void path_target(const uint8_t *p, size_t n)
{
	size_t cap;
	char *home, *out;
	int rc;

	if (n == 0)
		return;
	cap = p[0];
	home = cstr(p + 1, n - 1);
	out = malloc(cap ? cap : 1);
	if (out == NULL)
		abort();
	rc = nqq_socket_path(home, out, cap);
	if (rc == 0) {
		size_t len = strlen(out);

		CHECK(len < cap && out[0] == '/');
		CHECK(len >= 13 && strcmp(out + len - 13, "/nqqueue.sock") == 0);
	} else {
		CHECK(rc == -1 ? home[0] != '/' : rc == -2);
	}
	rc = nqq_sibling(home, "nqqueue", out, cap);
	if (rc == 0)
		CHECK(strlen(out) < cap && strcmp(out + strlen(out) - 7, "nqqueue") == 0);
	free(out);
	free(home);
}

static void settings_target(const uint8_t *p, size_t n)
{
	char *s = cstr(p, n);
	unsigned t = nqq_parse_timeout(s);
	enum nqq_reject m = nqq_parse_reject(s);
	struct nqq_errfd e6 = { 0, 0 }, e4 = { 0, 0 };
	unsigned to;

	CHECK(t >= 1 && t <= NQQ_TIMEOUT_MAX);
	if (n > 0) {
		e6.writable = p[0] & 1;
		e6.fifo = (p[0] >> 1) & 1;
		e4.writable = (p[0] >> 2) & 1;
		e4.fifo = (p[0] >> 3) & 1;
	}
	to = nqq_refusal_targets(m, &e6, &e4);
	CHECK((to & ~(NQQ_TO_FD6 | NQQ_TO_FD4)) == 0);
	CHECK(!(to & NQQ_TO_FD6) || e6.writable);
	CHECK(!(to & NQQ_TO_FD4) || e4.writable);
	free(s);
}

static void env_target(const uint8_t *p, size_t n)
{
	char *buf = cstr(p, n);
	char *envp[65];
	unsigned char *out;
	size_t k = 0, total = 0, cap;
	long len;

	/* The NUL-separated pieces are the entries. */
	for (size_t i = 0; i <= n && k < 64; k++) {
		envp[k] = buf + i;
		total += strlen(buf + i) + 1;
		i += strlen(buf + i) + 1;
	}
	envp[k] = NULL;
	cap = n > 0 ? p[0] * 4u : 0;
	out = malloc(cap ? cap : 1);
	if (out == NULL)
		abort();
	len = nqq_env_block(envp, out, cap);
	if (total <= cap)
		CHECK(len == (long)total);
	else
		CHECK(len == -1);
	free(out);
	free(buf);
}

/* The client's completion of the pending line: always a bounded, newline-ended line that starts with
 * the daemon's bytes, whatever they and the reason are. */
static void pending_target(const uint8_t *p, size_t n)
{
	static char out[NQQ_PENDING_MAX + 1024];
	size_t half, cap, len;
	char *why;

	if (n < 2)
		return;
	cap = (size_t)p[0] * 8;
	half = (n - 1) / 2;
	why = cstr(p + 1 + half, n - 1 - half);
	len = nqq_pending_line(p + 1, half, p[1], "12,34", why, out, cap);
	CHECK(len <= cap);
	if (len > 0) {
		CHECK(len > half && out[len - 1] == '\n');
		CHECK(memcmp(out, p + 1, half - (p[1] == '{' && p[half] == '}' && half >= 2)) == 0);
		for (size_t i = half; i + 1 < len; i++)
			CHECK(out[i] != '\n');
	}
	free(why);
}

/* The answer ahead completed: bounded; when made, the daemon's bytes with its one byte 1 and one byte 2
 * replaced by the pids and the number, nothing else changed. */
static void ahead_target(const uint8_t *p, size_t n)
{
	static char out[NQQ_PENDING_MAX + 1024];
	size_t cap, len, at = 0, ones = 0, twos = 0;

	if (n < 1)
		return;
	cap = (size_t)p[0] * 8;
	len = nqq_ahead_line(p + 1, n - 1, "12,34", 567, out, cap);
	CHECK(len <= cap);
	for (size_t i = 1; i < n; i++) {
		ones += p[i] == 1;
		twos += p[i] == 2;
	}
	if (len == 0) {
		CHECK(ones != 1 || twos != 1 || n - 1 + 5 + 3 - 2 > cap);
		return;
	}
	CHECK(ones == 1 && twos == 1 && len == n - 1 + 5 + 3 - 2);
	for (size_t i = 1; i < n; i++) {
		const char *want = p[i] == 1 ? "12,34" : p[i] == 2 ? "567" : NULL;

		if (want == NULL) {
			CHECK(out[at] == (char)p[i]);
			at++;
		} else {
			CHECK(memcmp(out + at, want, strlen(want)) == 0);
			at += strlen(want);
		}
	}
	CHECK(at == len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	switch (data[0] % 6) {
	case 5:
		ahead_target(data + 1, size - 1);
		break;
	case 0:
		reply_target(data + 1, size - 1);
		break;
	case 1:
		path_target(data + 1, size - 1);
		break;
	case 2:
		settings_target(data + 1, size - 1);
		break;
	case 3:
		env_target(data + 1, size - 1);
		break;
	default:
		pending_target(data + 1, size - 1);
		break;
	}
	return 0;
}
