/* nqqueue-qq.h: the parts of nqqueue-qq that read bytes it did not produce (the daemon's reply, the
 * environment), kept free of I/O so the libFuzzer harness (fuzz-reply.c) can drive them directly. */

#ifndef NQQUEUE_QQ_H
#define NQQUEUE_QQ_H

#include <stddef.h>
#include <stdint.h>

/* Limits of docs/daemon-protocol.md. */
#define NQQ_FRAME_MAX (1u << 20)
#define NQQ_ENV_MAX 65536u
#define NQQ_REFUSAL_MAX 255u
/* Not in the protocol: the client's own cap on the log text, so a broken daemon cannot make it buffer
 * without bound. A real log is a few lines. */
#define NQQ_LOG_MAX (1u << 20)
/* The 'L' record: the log line the client writes itself if the daemon goes away after its decision. */
#define NQQ_PENDING_MAX 65536u

#define NQQ_TIMEOUT_DEFAULT 900u
/* qmail-queue's own alarm is a day; no point waiting longer than that. */
#define NQQ_TIMEOUT_MAX 86400u

/* Where the reply parser stands. The daemon's side of the exchange is
 *   [ 'L' P:u32 line[P] ] [ 'A' us:u32 P:u32 line[P] ]
 *   [ 'D' G:u32 { 'Q' timeout_ms:u32 message-frames 0:u32 envelope-frames 0:u32 } ]
 *   'R' code n refusal[n] L:u32 log[L]
 * with at most G copies ('Q'), each answered by the client with 'q', a status byte and qmail-queue's
 * pid (u32). 'A' (only to a client that offered NQQUEUE_QQ_AHEAD=1): the answer ahead, the log line
 * for the case where every copy is queued, with the byte 1 where the qmail-queue pids go and 2 where
 * the milliseconds go, `us` microseconds after the daemon began the message. */
enum nqq_reply_state {
	NQQ_ST_FIRST,  /* 'L', 'A', 'D' or 'R' */
	NQQ_ST_PLEN,   /* P after 'L' */
	NQQ_ST_PLINE,
	NQQ_ST_AUS,    /* us after 'A' */
	NQQ_ST_ALEN,   /* P after it */
	NQQ_ST_ALINE,
	NQQ_ST_COUNT,  /* G after 'D' */
	NQQ_ST_NEXT,   /* 'Q' or 'R' after the decision or a copy */
	NQQ_ST_QTIME,  /* the copy's timeout after 'Q' */
	NQQ_ST_FLEN,   /* a frame length of the copy's message (stream 0) or envelope (stream 1) */
	NQQ_ST_FDATA,
	NQQ_ST_CODE,
	NQQ_ST_NREF,
	NQQ_ST_REF,
	NQQ_ST_LOGLEN,
	NQQ_ST_LOG,
	NQQ_ST_DONE,
	NQQ_ST_BAD
};

struct nqq_reply {
	enum nqq_reply_state state;
	int decided;          /* 'D' seen */
	uint32_t copies;      /* G */
	uint32_t started;     /* copies begun so far ('Q' seen) */
	int stream;           /* 0: the copy's message, 1: its envelope */
	uint32_t acc;         /* a u32 being read */
	uint32_t framelen;
	uint32_t got;         /* bytes of the current field so far */
	unsigned char code;
	unsigned char nref;
	uint32_t loglen;
	int pending_seen;     /* 'L' seen (at most one) */
	uint32_t pendlen;     /* P */
	int ahead_seen;       /* 'A' seen (at most one) */
	uint32_t ahead_us;
	uint32_t aheadlen;
	unsigned char refusal[NQQ_REFUSAL_MAX];
	unsigned char pending[NQQ_PENDING_MAX];
	unsigned char ahead[NQQ_PENDING_MAX];
	unsigned char log[NQQ_LOG_MAX];
};

enum nqq_ev_type {
	NQQ_EV_MORE,     /* all bytes taken, no event: feed more */
	NQQ_EV_DECIDED,  /* 'D': value = G */
	NQQ_EV_COPY,     /* 'Q': value = timeout in ms; the copy's message frames follow */
	NQQ_EV_DATA,     /* bytes of stream `stream` of the copy: data/len, a slice of the input */
	NQQ_EV_END,      /* the 0-length frame of stream `stream`; after stream 1 the copy is complete */
	NQQ_EV_DONE,     /* 'R' and all after it: code, nref/refusal, loglen/log are set */
	NQQ_EV_BAD       /* not the protocol */
};

struct nqq_ev {
	enum nqq_ev_type type;
	uint32_t value;
	int stream;
	const unsigned char *data;
	size_t len;
};

void nqq_reply_init(struct nqq_reply *r);
/* Takes bytes of the daemon's side, split anywhere, up to the next event; *used tells how many were
 * taken. Call again with the rest. After DONE the rest is not the reply's (the client does not read past
 * it). Once DONE or BAD, it stays so and takes nothing more. */
enum nqq_ev_type nqq_reply_next(struct nqq_reply *r, const unsigned char *p, size_t n, size_t *used,
				struct nqq_ev *ev);

/* $NQQUEUE_HOME/nqqueue.sock into out (cap bytes, NUL included). home NULL or empty: the default.
 * 0: ok; -1: home not absolute; -2: does not fit. */
int nqq_socket_path(const char *home, char *out, size_t cap);

/* NQQUEUE_QQ_TIMEOUT: whole seconds, 1 to NQQ_TIMEOUT_MAX (larger is capped); anything else (unset,
 * empty, 0, junk) is the default. */
unsigned nqq_parse_timeout(const char *s);

enum nqq_reject { NQQ_REJECT_AUTO, NQQ_REJECT_FD6, NQQ_REJECT_FD4, NQQ_REJECT_PLAIN };
/* NQQUEUE_REJECT; unset, empty or unknown is auto. */
enum nqq_reject nqq_parse_reject(const char *s);

/* What an inherited error descriptor was at start-up. */
struct nqq_errfd {
	int writable; /* open, access mode O_WRONLY or O_RDWR */
	int fifo;
};
#define NQQ_TO_FD6 1u
#define NQQ_TO_FD4 2u
/* Which descriptors refusal text goes to, exactly as src/qmail/exit.ts chooses them. */
unsigned nqq_refusal_targets(enum nqq_reject mode, const struct nqq_errfd *fd6, const struct nqq_errfd *fd4);

/* The text goes to the SMTP client raw: anything but printable ASCII becomes '?'. */
void nqq_clean_refusal(unsigned char *p, size_t n);

/* The NAME=VALUE\0 entries of envp, one after another, into out. The length, or -1 if over cap. */
long nqq_env_block(char *const *envp, unsigned char *out, size_t cap);

/* The pending line ('L') completed with what the client saw, for the case where the daemon went away
 * after its decision: ` exit=N qq=PIDS lost=WHY` before the end of a text line, or
 * `,"exit":N,"qq":"PIDS","lost":"WHY"` before the final '}' of a JSON one; a newline at the end. Bytes
 * of `why` outside printable ASCII, '"' and '\\' become '?'. The length written into out, 0 if it does
 * not fit (or there is no line). */
size_t nqq_pending_line(const unsigned char *line, size_t n, int code, const char *pids, const char *why,
			char *out, size_t cap);

/* The answer ahead ('A') completed: the byte 1 replaced by `pids`, 2 by `ms`, each there exactly once.
 * The length written into out, 0 if it does not fit or is not such a line (then the client waits for
 * the reply as without one). */
size_t nqq_ahead_line(const unsigned char *line, size_t n, const char *pids, unsigned long ms, char *out,
		      size_t cap);

/* Which fallback reasons exist (NQQUEUE_FALLBACK_REASON for the standalone program): a fixed word. */
#define NQQ_WHY_NO_SOCKET "no-socket"
#define NQQ_WHY_REFUSED "refused"
#define NQQ_WHY_PERMISSION "permission"
#define NQQ_WHY_BUSY "busy"
#define NQQ_WHY_CONNECT "connect-failed"
#define NQQ_WHY_BAD_HOME "bad-home"
#define NQQ_WHY_ENV "env-too-big"
#define NQQ_WHY_MEMFD "no-memfd"
#define NQQ_WHY_DIED "daemon-died"
#define NQQ_WHY_TIMEOUT "timeout"
#define NQQ_WHY_PROTOCOL "protocol-error"

/* The file `name` in the directory of `self` (an absolute path) into out. 0 ok, -1 no room or no '/'. */
int nqq_sibling(const char *self, const char *name, char *out, size_t cap);

#endif
