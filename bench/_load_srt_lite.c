/*
 * The SRT load reader of bench/load.ts, without libsrt: N SRT v5 callers in Stream ID read
 * mode ("#!::r=APP/STREAM,m=request") in one epoll loop, on a few UDP sockets each shared by
 * READERS_PER_SOCKET readers (the server tells them apart by the destination socket id, as
 * libsrt's multiplexer does), read and written READ_BATCH datagrams at a time with
 * recvmmsg/sendmmsg. Each reader makes the caller handshake (induction, then the conclusion
 * with HSREQ and the Stream ID, as libsrt 1.5 sends them without TSBPD), then counts what
 * arrives as bench/_load_srt.c does (bench/_load_ts.h) and answers as libsrt's receiver
 * does, so that the server's work per reader is the same as for a libsrt reader:
 *
 * - its timers are checked after every packet it receives and, once 10 ms have passed since
 *   they last were, whenever libsrt's receive thread would look: readers are grouped by
 *   MUX_READERS as bench/_load_srt.c shares a multiplexer, and a group is looked at after each
 *   packet to any of its readers and, idle, each time its receive would time out (4 to 11 ms
 *   here: libsrt's 10 ms on the kernel's 4 ms ticks, measured with strace). Its 10 ms ACK
 *   timer so fires a few ms late, and the first packet of a burst often finds it expired:
 *   libsrt then acknowledges that packet at once and the rest on the next tick;
 * - on a check 10 ms after the last ACK timer: a full ACK if the acknowledged sequence number
 *   moved (or one that has not been answered by an ACKACK, again after RTT + 4 RTTVar), a
 *   small ACK instead when the last full one is under 10 ms old; a light ACK after each 64
 *   packets in between; an ACKACK gives a round-trip sample (smoothed as libsrt does);
 * - a NAK on a sequence gap at once, then the whole loss list every max(20 ms,
 *   (RTT + 4 RTTVar) / 2) until repaired or dropped (a drop request fills it);
 * - a KEEPALIVE after a second without sending; a SHUTDOWN at the end.
 *
 * No TSBPD (payloads are counted as they arrive), no decryption: the bench uses neither.
 *
 *   _load_srt_lite srt HOST PORT APP STREAM PLAYERS RAMP_PER_S WARMUP_S WINDOW_S
 *
 * It prints "window\n" when the measurement window opens, and when it closes the result
 * line of bench/_load_result.h; datagrams the kernel dropped before it read them (its own
 * losses, which the server repairs) go to stderr. Built by bench/load.ts with gcc -O2;
 * loopback only.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "_load_result.h"
#include "_load_ts.h"

enum {
  READERS_PER_SOCKET = 50,
  /* A socket's receive buffer: a burst of its readers' packets must not overflow it. */
  UDP_BUFFER = 4 << 20,
  READ_BATCH = 64,
  /* recvmmsg batches taken from one socket before the timers run again. */
  READS_PER_TURN = 8,
  MAX_DATAGRAM = 1500,
  SRT_HEADER = 16,
  /* Sequence numbers held: libsrt's default receive buffer (and flow window). */
  WINDOW = 8192,
  /* Full ACKs remembered for their ACKACK (libsrt: 1024; they come back within a tick). */
  ACK_HISTORY = 32,
  /* The most words of loss list in one NAK. */
  MAX_NAK_WORDS = 256,
  TICK_MS = 10,
  /* The loop turns at most this often: timers run (visiting every reader) and sockets are
   * read in batches. */
  TIMER_RESOLUTION_MS = 1,
  HANDSHAKE_REPEAT_MS = 250,
  CONNECT_TIMEOUT_MS = 3000,
  PEER_IDLE_TIMEOUT_MS = 5000,
  KEEPALIVE_MS = 1000,
  LIGHT_ACK_PACKETS = 64,
  /* Readers per emulated libsrt multiplexer (as bench/_load_srt.c shares a port). */
  MUX_READERS = 10,
  /* How long its idle receive waits, in µs: libsrt 1.5.1 here, measured with strace. */
  MUX_WAIT_MIN_US = 4000,
  MUX_WAIT_SPAN_US = 7000,
  MIN_NAK_INTERVAL_MS = 20,
  FIRST_NAK_INTERVAL_MS = 300,
};
enum { R_IDLE, R_INDUCTION, R_CONCLUSION, R_READING, R_DEAD };
enum { HANDSHAKE = 0, KEEPALIVE = 1, ACK = 2, NAK = 3, SHUTDOWN = 5, ACKACK = 6, DROPREQ = 7 };
#define SEQ_MASK 0x7fffffffu
#define INDUCTION 1u
#define CONCLUSION 0xffffffffu
#define SRT_MAGIC 0x4a17
/* What libsrt 1.5.1 announces without TSBPD: packet filters, REXMITFLG, NAKREPORT, HAICRYPT. */
#define HSREQ_FLAGS 0xb4u
#define SRT_VERSION 0x010501u

typedef struct {
  int state;
  int udp;
  /* Our socket id, the server's for us, the handshake cookie and both sequences' start. */
  uint32_t id, peer_id, cookie, isn;
  double start_ms, handshake_sent_ms, last_recv_ms, last_send_ms, last_check_ms;
  /* Receiving: `ack` is the first sequence number not received, `curr` the highest seen. */
  uint32_t ack, curr, last_ack, last_ackack, ack_no;
  int losses, packets, light_acks;
  double next_ack_ms, next_nak_ms, nak_interval_ms, full_ack_ms;
  double srtt_us, rttvar_us;
  int rtt_sampled;
  /* Receive rate, for the full ACK. */
  double rate_start_ms;
  uint32_t rate_packets, rate_bytes, packet_rate, byte_rate;
  struct {
    uint32_t no, seq;
    double ms;
  } acks[ACK_HISTORY];
  /* Sequence numbers from `ack` on received, by seq % WINDOW. */
  uint8_t got[WINDOW / 8];
  LoadCounts counts;
} Reader;

typedef struct {
  int fd;
  int queued;
  /* The socket's kernel drop counter (SO_RXQ_OVFL), as last seen. */
  uint32_t drops;
  struct mmsghdr out[READ_BATCH];
  struct iovec iov[READ_BATCH];
  uint8_t buf[READ_BATCH][MAX_DATAGRAM];
} Udp;

/* An emulated libsrt multiplexer: when its idle receive times out. */
typedef struct {
  double pass_ms;
} Mux;

static Reader *readers;
static int nreaders;
static Mux *muxes;
static uint64_t random_state;
static Udp *udps;
static int nudps;
/* Reader i has socket id id_base + i. */
static uint32_t id_base;
static struct sockaddr_in server_addr;
static uint8_t stream_id[512];
static int stream_id_words;
static uint64_t send_failures;

static LoadCounts *counts_of(int i) { return &readers[i].counts; }

static uint32_t rd32(const uint8_t *p) { return (uint32_t)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3]; }

static void wr32(uint8_t *p, uint32_t v) {
  p[0] = v >> 24, p[1] = v >> 16, p[2] = v >> 8, p[3] = v;
}

static int seq_off(uint32_t from, uint32_t to) {
  uint32_t d = (to - from) & SEQ_MASK;
  return d >= 0x40000000u ? (int)d - 0x7fffffff - 1 : (int)d;
}

static uint32_t seq_add(uint32_t seq, int n) { return (seq + (uint32_t)n) & SEQ_MASK; }

static int got(const Reader *r, uint32_t seq) { return r->got[(seq % WINDOW) >> 3] >> (seq & 7) & 1; }

static void set_got(Reader *r, uint32_t seq, int on) {
  uint8_t bit = 1 << (seq & 7);
  if (on) r->got[(seq % WINDOW) >> 3] |= bit;
  else r->got[(seq % WINDOW) >> 3] &= ~bit;
}

/* How long an idle libsrt receive waits (xorshift64). */
static double mux_wait_ms(void) {
  random_state ^= random_state << 13;
  random_state ^= random_state >> 7;
  random_state ^= random_state << 17;
  return (MUX_WAIT_MIN_US + (double)(random_state % MUX_WAIT_SPAN_US)) / 1e3;
}

static void flush(Udp *u) {
  int at = 0;
  /* Loopback: a full send buffer drains at once, so one more try. */
  for (int tries = 0; at < u->queued && tries < 2; tries++) {
    int n = sendmmsg(u->fd, u->out + at, u->queued - at, MSG_DONTWAIT);
    if (n > 0) at += n;
    else if (n < 0 && errno != EAGAIN && errno != EINTR) break;
  }
  send_failures += u->queued - at;
  u->queued = 0;
}

/* A control packet to the server from `r`: its header filled, its `cif_words` words zero. */
static uint8_t *control(Reader *r, int type, uint32_t info, int cif_words, double t) {
  Udp *u = &udps[r->udp];
  if (u->queued == READ_BATCH) flush(u);
  uint8_t *p = u->buf[u->queued];
  int len = SRT_HEADER + 4 * cif_words;
  memset(p, 0, len);
  wr32(p, 0x80000000u | (uint32_t)type << 16);
  wr32(p + 4, info);
  wr32(p + 8, (uint32_t)(uint64_t)((t - r->start_ms) * 1e3));
  wr32(p + 12, r->state >= R_READING ? r->peer_id : 0);
  u->iov[u->queued].iov_len = len;
  u->queued++;
  r->last_send_ms = t;
  return p + SRT_HEADER;
}

/* The caller's handshake: an induction request (version 4) or the conclusion (version 5). */
static void handshake(Reader *r, double t) {
  int conclusion = r->state == R_CONCLUSION;
  uint8_t *hs = control(r, HANDSHAKE, 0, 12 + (conclusion ? 4 + 1 + stream_id_words : 0), t);
  wr32(hs, conclusion ? 5 : 4);
  /* Extension field: HSREQ | CONFIG (the Stream ID) in a conclusion, UDT_DGRAM before. */
  wr32(hs + 4, conclusion ? 5 : 2);
  wr32(hs + 8, r->isn);
  wr32(hs + 12, MAX_DATAGRAM);
  wr32(hs + 16, WINDOW);
  wr32(hs + 20, conclusion ? CONCLUSION : INDUCTION);
  wr32(hs + 24, r->id);
  wr32(hs + 28, conclusion ? r->cookie : 0);
  /* The peer address as libsrt writes it: the IPv4 address as a host-order word. */
  uint32_t ip = ntohl(server_addr.sin_addr.s_addr);
  hs[32] = ip, hs[33] = ip >> 8, hs[34] = ip >> 16, hs[35] = ip >> 24;
  if (conclusion) {
    uint8_t *ext = hs + 48;
    wr32(ext, 1u << 16 | 3); /* HSREQ, 3 words */
    wr32(ext + 4, SRT_VERSION);
    wr32(ext + 8, HSREQ_FLAGS);
    wr32(ext + 12, 0); /* latencies: no TSBPD */
    wr32(ext + 16, 5u << 16 | (uint32_t)stream_id_words); /* SID */
    memcpy(ext + 20, stream_id, 4 * stream_id_words);
  }
  r->handshake_sent_ms = t;
}

static void start(int i, double t) {
  Reader *r = &readers[i];
  uint32_t isn;
  if (getrandom(&isn, sizeof isn, 0) != sizeof isn) isn = (uint32_t)rand();
  r->udp = i / READERS_PER_SOCKET;
  r->id = id_base + (uint32_t)i;
  r->isn = isn & SEQ_MASK;
  r->start_ms = r->counts.started_ms = t;
  r->state = R_INDUCTION;
  handshake(r, t);
}

/* Accepted: the receiving state libsrt starts a connection with. */
static void connected(Reader *r, uint32_t peer_id, double t) {
  r->state = R_READING;
  r->peer_id = peer_id;
  r->ack = r->last_ack = r->last_ackack = r->isn;
  r->curr = seq_add(r->isn, -1);
  r->srtt_us = 100000, r->rttvar_us = 50000;
  r->nak_interval_ms = FIRST_NAK_INTERVAL_MS;
  r->last_recv_ms = r->last_send_ms = r->last_check_ms = r->rate_start_ms = t;
  r->next_ack_ms = t + TICK_MS;
  r->next_nak_ms = t + r->nak_interval_ms;
  r->full_ack_ms = -1e9;
  r->light_acks = 1;
}

static void ack(Reader *r, int light, double t) {
  uint32_t seq = r->ack;
  if (seq == r->last_ackack) return;
  if (light) {
    wr32(control(r, ACK, 0, 1, t), seq);
    return;
  }
  int ahead = seq_off(r->last_ack, seq);
  if (ahead > 0) r->last_ack = seq;
  else if (ahead < 0 || (t - r->full_ack_ms) * 1e3 < r->srtt_us + 4 * r->rttvar_us) return;
  if (seq_off(r->last_ackack, r->last_ack) <= 0) return;
  int full = t - r->full_ack_ms > TICK_MS;
  r->ack_no = (r->ack_no + 1) & SEQ_MASK;
  int held = seq_off(r->ack, r->curr) + 1;
  uint8_t *cif = control(r, ACK, r->ack_no, full ? 7 : 4, t);
  wr32(cif, seq);
  wr32(cif + 4, (uint32_t)r->srtt_us);
  wr32(cif + 8, (uint32_t)r->rttvar_us);
  wr32(cif + 12, WINDOW - held < 2 ? 2 : WINDOW - held);
  if (full) {
    r->full_ack_ms = t;
    wr32(cif + 16, r->packet_rate);
    wr32(cif + 20, r->packet_rate); /* the link capacity, not estimated */
    wr32(cif + 24, r->byte_rate);
  }
  int slot = r->ack_no % ACK_HISTORY;
  r->acks[slot].no = r->ack_no;
  r->acks[slot].seq = seq;
  r->acks[slot].ms = t;
}

static void ackack(Reader *r, uint32_t no, double t) {
  int slot = no % ACK_HISTORY;
  if (r->acks[slot].no != no || r->acks[slot].ms < 0) return;
  double rtt = (t - r->acks[slot].ms) * 1e3;
  r->acks[slot].ms = -1;
  if (rtt < 1) rtt = 1;
  if (r->rtt_sampled) {
    r->rttvar_us = (3 * r->rttvar_us + (rtt > r->srtt_us ? rtt - r->srtt_us : r->srtt_us - rtt)) / 4;
    r->srtt_us = (7 * r->srtt_us + rtt) / 8;
  } else {
    r->srtt_us = rtt, r->rttvar_us = rtt / 2, r->rtt_sampled = 1;
  }
  if (seq_off(r->last_ackack, r->acks[slot].seq) > 0) r->last_ackack = r->acks[slot].seq;
}

/* A NAK of `first..last`, or (first < 0) of every loss not repaired yet. */
static void nak(Reader *r, int64_t first, uint32_t last, double t) {
  uint32_t words[MAX_NAK_WORDS];
  int n = 0;
  if (first >= 0) {
    if (first != last) words[n++] = (uint32_t)first | 0x80000000u;
    words[n++] = last;
  } else {
    int span = seq_off(r->ack, r->curr) + 1;
    for (int k = 0; k < span && n + 2 <= MAX_NAK_WORDS; k++) {
      uint32_t seq = seq_add(r->ack, k);
      if (got(r, seq)) continue;
      int m = 1;
      while (k + m < span && !got(r, seq_add(seq, m))) m++;
      if (m > 1) words[n++] = seq | 0x80000000u;
      words[n++] = seq_add(seq, m - 1);
      k += m - 1;
    }
    if (n == 0) return;
  }
  uint8_t *cif = control(r, NAK, 0, n, t);
  for (int k = 0; k < n; k++) wr32(cif + 4 * k, words[k]);
  double interval = (r->srtt_us + 4 * r->rttvar_us) / 2e3;
  r->nak_interval_ms = interval < MIN_NAK_INTERVAL_MS ? MIN_NAK_INTERVAL_MS : interval;
}

static void advance(Reader *r) {
  while (r->ack != seq_add(r->curr, 1) && got(r, r->ack)) {
    set_got(r, r->ack, 0);
    r->ack = seq_add(r->ack, 1);
  }
}

static void data(Reader *r, const uint8_t *p, int n, double t) {
  uint32_t seq = rd32(p) & SEQ_MASK;
  r->packets++;
  r->rate_packets++;
  r->rate_bytes += n - SRT_HEADER;
  int d = seq_off(r->ack, seq);
  if (d < 0 || d >= WINDOW || got(r, seq)) return; /* belated, duplicate or past the buffer */
  int ahead = seq_off(r->curr, seq);
  if (ahead > 1) {
    r->losses += ahead - 1;
    nak(r, seq_add(r->curr, 1), seq_add(seq, -1), t);
  }
  if (ahead > 0) r->curr = seq;
  else r->losses--;
  set_got(r, seq, 1);
  count_ts(&r->counts, p + SRT_HEADER, n - SRT_HEADER);
  advance(r);
}

/* The server gave up `first..last`: they are not waited for any longer. */
static void drop_request(Reader *r, const uint8_t *cif, double t) {
  uint32_t first = rd32(cif) & SEQ_MASK, last = rd32(cif + 4) & SEQ_MASK;
  if (seq_off(r->ack, first) < 0) first = r->ack;
  int n = seq_off(first, last) + 1;
  if (n <= 0) return;
  if (seq_off(r->ack, last) >= WINDOW) n = WINDOW - seq_off(r->ack, first);
  for (int k = 0; k < n; k++) {
    uint32_t seq = seq_add(first, k);
    if (got(r, seq)) continue;
    if (seq_off(r->curr, seq) > 0) r->curr = seq;
    else r->losses--;
    set_got(r, seq, 1);
  }
  advance(r);
  (void)t;
}

/* libsrt's checkTimers: ACK, NAK, peer timeout, keep-alive. */
static void check(Reader *r, double t) {
  r->last_check_ms = t;
  if (t - r->rate_start_ms >= 1000) {
    double s = (t - r->rate_start_ms) / 1e3;
    r->packet_rate = (uint32_t)(r->rate_packets / s), r->byte_rate = (uint32_t)(r->rate_bytes / s);
    r->rate_packets = r->rate_bytes = 0;
    r->rate_start_ms = t;
  }
  if (t > r->next_ack_ms) {
    ack(r, 0, t);
    r->next_ack_ms = t + TICK_MS;
    r->packets = 0;
    r->light_acks = 1;
  } else if (r->packets >= LIGHT_ACK_PACKETS * r->light_acks) {
    ack(r, 1, t);
    r->light_acks++;
  }
  if (r->losses > 0) {
    if (t > r->next_nak_ms) {
      nak(r, -1, 0, t);
      r->next_nak_ms = t + r->nak_interval_ms;
    }
  } else {
    r->next_nak_ms = t + r->nak_interval_ms;
  }
  if (t - r->last_recv_ms > PEER_IDLE_TIMEOUT_MS) {
    r->state = R_DEAD;
    return;
  }
  if (t > r->last_send_ms + KEEPALIVE_MS) control(r, KEEPALIVE, 0, 1, t);
}

/*
 * libsrt's receive thread after each receive, a packet or a timeout: the timers of its sockets
 * not checked for a tick are checked; then it waits again.
 */
static void mux_pass(int m, double t) {
  int end = (m + 1) * MUX_READERS < nreaders ? (m + 1) * MUX_READERS : nreaders;
  for (int i = m * MUX_READERS; i < end; i++) {
    Reader *r = &readers[i];
    if (r->state == R_READING && t - r->last_check_ms >= TICK_MS) check(r, t);
  }
  muxes[m].pass_ms = t + mux_wait_ms();
}

/* The server's answer to a handshake step. */
static void handshake_answer(Reader *r, const uint8_t *p, int n, double t) {
  if (n < SRT_HEADER + 48) return;
  const uint8_t *hs = p + SRT_HEADER;
  uint32_t type = rd32(hs + 20);
  if (type >= 1000 && type < 0xfffffff0u) {
    r->state = R_DEAD; /* rejected */
  } else if (r->state == R_INDUCTION && type == INDUCTION && (rd32(hs + 4) & 0xffff) == SRT_MAGIC) {
    r->cookie = rd32(hs + 28);
    r->state = R_CONCLUSION;
    handshake(r, t);
  } else if (r->state == R_CONCLUSION && type == CONCLUSION) {
    connected(r, rd32(hs + 24), t);
  }
}

static void datagram(const uint8_t *p, int n, double t) {
  if (n < SRT_HEADER) return;
  uint32_t i = rd32(p + 12) - id_base;
  if (i >= (uint32_t)nreaders) return;
  Reader *r = &readers[i];
  int control_type = p[0] & 0x80 ? (p[0] & 0x7f) << 8 | p[1] : -1;
  if (r->state == R_INDUCTION || r->state == R_CONCLUSION) {
    if (control_type == HANDSHAKE) handshake_answer(r, p, n, t);
    return;
  }
  if (r->state != R_READING) return;
  r->last_recv_ms = t;
  if (control_type < 0) data(r, p, n, t);
  else if (control_type == ACKACK) ackack(r, rd32(p + 4), t);
  else if (control_type == DROPREQ && n >= SRT_HEADER + 8) drop_request(r, p + SRT_HEADER, t);
  else if (control_type == SHUTDOWN) r->state = R_DEAD;
  if (r->state == R_READING) check(r, t);
  mux_pass((int)i / MUX_READERS, t);
}

/* Read what `u` holds, READS_PER_TURN batches at most. */
static void receive(Udp *u) {
  static uint8_t bufs[READ_BATCH][MAX_DATAGRAM];
  static uint8_t controls[READ_BATCH][CMSG_SPACE(sizeof(uint32_t))];
  static struct iovec iov[READ_BATCH];
  static struct mmsghdr msgs[READ_BATCH];
  for (int turn = 0; turn < READS_PER_TURN; turn++) {
    for (int k = 0; k < READ_BATCH; k++) {
      iov[k] = (struct iovec){bufs[k], MAX_DATAGRAM};
      msgs[k].msg_hdr = (struct msghdr){.msg_iov = &iov[k], .msg_iovlen = 1, .msg_control = controls[k],
                                        .msg_controllen = sizeof controls[k]};
    }
    int n = recvmmsg(u->fd, msgs, READ_BATCH, MSG_DONTWAIT, NULL);
    if (n <= 0) return;
    double t = now_ms();
    for (int k = 0; k < n; k++) {
      struct cmsghdr *c = CMSG_FIRSTHDR(&msgs[k].msg_hdr);
      if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL) memcpy(&u->drops, CMSG_DATA(c), 4);
      datagram(bufs[k], (int)msgs[k].msg_len, t);
    }
    if (n < READ_BATCH) return;
  }
}

/*
 * Handshake repeats and deadlines, and the timers of readers not checked for a tick; when to
 * run again.
 */
static double run_timers(double t) {
  double next = t + TICK_MS;
  for (int i = 0; i < nreaders; i++) {
    Reader *r = &readers[i];
    if (r->state == R_INDUCTION || r->state == R_CONCLUSION) {
      if (t - r->counts.started_ms > CONNECT_TIMEOUT_MS) r->state = R_DEAD;
      else if (t - r->handshake_sent_ms >= HANDSHAKE_REPEAT_MS) handshake(r, t);
      if (r->state != R_DEAD && r->handshake_sent_ms + HANDSHAKE_REPEAT_MS < next) {
        next = r->handshake_sent_ms + HANDSHAKE_REPEAT_MS;
      }
    }
  }
  for (int m = 0; m * MUX_READERS < nreaders; m++) {
    if (t >= muxes[m].pass_ms) mux_pass(m, t);
    if (muxes[m].pass_ms < next) next = muxes[m].pass_ms;
  }
  return next > t + TIMER_RESOLUTION_MS ? next : t + TIMER_RESOLUTION_MS;
}

static int open_udp(int index, int epfd) {
  Udp *u = &udps[index];
  int buffer = UDP_BUFFER, yes = 1;
  u->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  if (u->fd < 0) return -1;
  setsockopt(u->fd, SOL_SOCKET, SO_RCVBUF, &buffer, sizeof buffer);
  setsockopt(u->fd, SOL_SOCKET, SO_SNDBUF, &buffer, sizeof buffer);
  setsockopt(u->fd, SOL_SOCKET, SO_RXQ_OVFL, &yes, sizeof yes);
  if (connect(u->fd, (struct sockaddr *)&server_addr, sizeof server_addr) < 0) return -1;
  for (int k = 0; k < READ_BATCH; k++) {
    u->iov[k].iov_base = u->buf[k];
    u->out[k].msg_hdr = (struct msghdr){.msg_iov = &u->iov[k], .msg_iovlen = 1};
  }
  struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)index};
  return epoll_ctl(epfd, EPOLL_CTL_ADD, u->fd, &ev);
}

int main(int argc, char **argv) {
  if (argc != 10 || strcmp(argv[1], "srt") != 0) {
    fprintf(stderr, "usage: %s srt HOST PORT APP STREAM PLAYERS RAMP_PER_S WARMUP_S WINDOW_S\n", argv[0]);
    return 2;
  }
  nreaders = atoi(argv[6]);
  LoadSchedule schedule = load_schedule(nreaders, atof(argv[7]), atof(argv[8]), atof(argv[9]));
  char text[sizeof stream_id];
  int length = snprintf(text, sizeof text, "#!::r=%s/%s,m=request", argv[4], argv[5]);
  if (nreaders <= 0 || length < 0 || length >= (int)sizeof text) {
    fprintf(stderr, "bad players or stream\n");
    return 2;
  }
  /* The Stream ID extension: zero-padded words, each one's bytes reversed (libsrt's order). */
  stream_id_words = (length + 3) / 4;
  for (int k = 0; k < length; k++) stream_id[(k & ~3) + 3 - (k & 3)] = (uint8_t)text[k];
  server_addr = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons(atoi(argv[3]))};
  if (inet_pton(AF_INET, argv[2], &server_addr.sin_addr) != 1) {
    fprintf(stderr, "bad host %s\n", argv[2]);
    return 2;
  }
  if (getrandom(&id_base, sizeof id_base, 0) != sizeof id_base) id_base = (uint32_t)getpid();
  id_base = 1 + id_base % (0x3fffffffu - (uint32_t)nreaders);
  readers = calloc(nreaders, sizeof(Reader));
  muxes = calloc((nreaders + MUX_READERS - 1) / MUX_READERS, sizeof(Mux));
  if (getrandom(&random_state, sizeof random_state, 0) != sizeof random_state || !random_state) {
    random_state = 0x9e3779b97f4a7c15u;
  }
  nudps = (nreaders + READERS_PER_SOCKET - 1) / READERS_PER_SOCKET;
  udps = calloc(nudps, sizeof(Udp));
  int epfd = epoll_create1(0);
  if (!readers || !muxes || !udps || epfd < 0) return 1;
  for (int k = 0; k < nudps; k++) {
    if (open_udp(k, epfd) < 0) {
      perror("udp socket");
      return 1;
    }
  }
  struct epoll_event events[64];
  double next_timers = 0;
  for (;;) {
    double t = now_ms(), turn_start = t;
    int due = due_players(&schedule, t);
    while (schedule.started < due) start(schedule.started++, t);
    if (window_closed(&schedule, t, counts_of)) break;
    double wait_ms = next_timers - t < 0 ? 0 : next_timers - t > TICK_MS ? TICK_MS : next_timers - t;
    struct timespec wait = {0, (long)(wait_ms * 1e6)};
    int n = epoll_pwait2(epfd, events, 64, &wait, NULL);
    for (int e = 0; e < n; e++) receive(&udps[events[e].data.u32]);
    t = now_ms();
    if (t >= next_timers) next_timers = run_timers(t);
    for (int k = 0; k < nudps; k++) {
      if (udps[k].queued) flush(&udps[k]);
    }
    /* One turn a millisecond at most: what arrives meanwhile is read in the next batch. */
    double rest = turn_start + TIMER_RESOLUTION_MS - now_ms();
    if (rest > 0) nanosleep(&(struct timespec){0, (long)(rest * 1e6)}, NULL);
  }
  print_result(counts_of, nreaders, schedule.window_at);
  double t = now_ms();
  for (int i = 0; i < nreaders; i++) {
    if (readers[i].state == R_READING) control(&readers[i], SHUTDOWN, 0, 1, t);
  }
  uint64_t drops = 0;
  for (int k = 0; k < nudps; k++) {
    flush(&udps[k]);
    drops += udps[k].drops;
    close(udps[k].fd);
  }
  if (drops || send_failures) {
    fprintf(stderr, "_load_srt_lite: %llu datagrams dropped by the kernel, %llu not sent\n",
            (unsigned long long)drops, (unsigned long long)send_failures);
  }
  return 0;
}
