/*
 * The load player of bench/load.ts: N RTMP, HTTP-FLV or RTSP players in one epoll loop,
 * cheaper than the server it measures. Each player connects, joins (RTMP: handshake,
 * connect, createStream, play; HTTP-FLV: one GET; RTSP: DESCRIBE, a SETUP of each track on
 * interleaved TCP channels 0-1, 2-3, PLAY), and then only counts: bytes received and whole
 * video messages (RTMP), video tags (FLV) or RTP packets with the marker bit on the video
 * channel (RTSP). Nothing is decoded.
 *
 *   _load_player rtmp|flv|rtsp HOST PORT APP STREAM PLAYERS RAMP_PER_S WARMUP_S WINDOW_S
 *
 * It prints "window\n" when the measurement window opens, and when it closes one JSON line:
 * players asked for, joined, per-player video frames in the window (sorted), bytes in the
 * window, join times (connect to first video frame, ms, sorted) and its own CPU time.
 * Players connect from 127.1.x.y, 100 per address (servers limit connections per address).
 * Built by bench/load.ts with gcc -O2; loopback only.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "_load_result.h"

enum { RTMP, FLV, RTSP };
enum { PLAYERS_PER_SOURCE = 100 };
enum { S_HANDSHAKE, S_CHUNKS, S_HTTP_HEAD, S_HTTP_BODY, S_RTSP, S_DEAD };
/* What an RTSP player waits for the answer to. */
enum { R_DESCRIBE, R_SETUP_FIRST, R_SETUP_SECOND, R_PLAY, R_PLAYING };

typedef struct {
  uint32_t length, remaining, type, timestamp_field;
  int extended;
} ChunkStream;

typedef struct {
  int fd, state;
  LoadCounts counts;
  /* RTMP */
  uint32_t handshake_got, chunk_size, acked, unacked;
  uint8_t hdr[18];
  int hdr_got, csid;
  uint32_t body_left;          /* bytes of the current chunk still to read */
  uint8_t ctl[16];             /* the body of a small control message */
  uint32_t ctl_got;
  ChunkStream *cs;             /* indexed by csid, 0..319 */
  /* HTTP / FLV */
  int head_match;              /* how much of \r\n\r\n was seen */
  int chunked;                 /* transfer-encoding: chunked */
  uint64_t http_left;          /* bytes left in the current HTTP chunk */
  int http_line;               /* reading a chunk-size line */
  uint64_t http_size;
  int crlf_skip;               /* CRLF bytes after a chunk's data still to skip */
  uint8_t head_buf[2048];
  int head_len;
  uint32_t flv_skip;           /* bytes to skip: header, tag body + previous tag size */
  uint8_t tag[11];
  int tag_got;
  /* RTSP */
  int rtsp_step;               /* R_*: the request answered next */
  int tracks, video_track;     /* from the DESCRIBE answer's SDP */
  uint32_t body_want;          /* bytes of the answer's body still to read */
  char session[64];
  uint8_t ilv[4];              /* an interleaved frame's header */
  int ilv_got;
  uint32_t ilv_left, ilv_pos;  /* bytes of its payload left, and read */
} Player;

static int mode;
static const char *host, *app, *stream;
static int port;
static Player *players;
static int nplayers;

static LoadCounts *counts_of(int i) { return &players[i].counts; }

static void die(const char *what) {
  perror(what);
  exit(2);
}

static void send_all(Player *p, const uint8_t *b, size_t n) {
  /* Requests are small and sent when the socket is fresh: a short write is a dead player. */
  ssize_t w = send(p->fd, b, n, MSG_NOSIGNAL);
  if (w != (ssize_t)n) p->state = S_DEAD;
}

/* ---- AMF0 and RTMP messages ---- */

static size_t amf_str(uint8_t *o, const char *s) {
  size_t n = strlen(s);
  o[0] = 2, o[1] = n >> 8, o[2] = n & 0xff;
  memcpy(o + 3, s, n);
  return 3 + n;
}

static size_t amf_num(uint8_t *o, double v) {
  uint64_t bits;
  memcpy(&bits, &v, 8);
  o[0] = 0;
  for (int i = 0; i < 8; i++) o[1 + i] = bits >> (56 - 8 * i);
  return 9;
}

static size_t amf_key(uint8_t *o, const char *k) {
  size_t n = strlen(k);
  o[0] = n >> 8, o[1] = n & 0xff;
  memcpy(o + 2, k, n);
  return 2 + n;
}

/* One message as a type-0 chunk (payloads here stay below the default chunk size of 128). */
static size_t message(uint8_t *o, int csid, int type, uint32_t stream_id, const uint8_t *payload,
                      size_t n) {
  o[0] = csid;
  o[1] = o[2] = o[3] = 0;
  o[4] = n >> 16, o[5] = n >> 8, o[6] = n;
  o[7] = type;
  o[8] = stream_id, o[9] = stream_id >> 8, o[10] = stream_id >> 16, o[11] = stream_id >> 24;
  size_t at = 12;
  for (size_t i = 0; i < n; i += 128) {
    if (i) o[at++] = 0xc0 | csid;
    size_t k = n - i < 128 ? n - i : 128;
    memcpy(o + at, payload + i, k);
    at += k;
  }
  return at;
}

static void rtmp_join(Player *p) {
  uint8_t pay[512], out[1024];
  size_t n = 0, m = 0;
  char tc[256];
  snprintf(tc, sizeof tc, "rtmp://%s:%d/%s", host, port, app);
  n += amf_str(pay + n, "connect");
  n += amf_num(pay + n, 1);
  pay[n++] = 3;
  n += amf_key(pay + n, "app");
  n += amf_str(pay + n, app);
  n += amf_key(pay + n, "tcUrl");
  n += amf_str(pay + n, tc);
  n += amf_key(pay + n, "flashVer");
  n += amf_str(pay + n, "LNX 9,0,124,2");
  pay[n++] = 0, pay[n++] = 0, pay[n++] = 9;
  m += message(out + m, 3, 20, 0, pay, n);
  n = 0;
  n += amf_str(pay + n, "createStream");
  n += amf_num(pay + n, 2);
  pay[n++] = 5;
  m += message(out + m, 3, 20, 0, pay, n);
  n = 0;
  n += amf_str(pay + n, "play");
  n += amf_num(pay + n, 0);
  pay[n++] = 5;
  n += amf_str(pay + n, stream);
  m += message(out + m, 8, 20, 1, pay, n);
  send_all(p, out, m);
}

static void rtmp_ack(Player *p) {
  uint8_t b[4] = {p->acked >> 24, p->acked >> 16, p->acked >> 8, p->acked}, out[32];
  send_all(p, out, message(out, 2, 3, 0, b, 4));
}

static void rtmp_control(Player *p, ChunkStream *cs) {
  const uint8_t *c = p->ctl;
  uint32_t v = (uint32_t)c[0] << 24 | c[1] << 16 | c[2] << 8 | c[3];
  if (cs->type == 1) p->chunk_size = v & 0x7fffffff;
  if (cs->type == 4 && cs->length >= 6 && (v >> 16) == 6) { /* ping request */
    uint8_t b[6] = {0, 7, c[2], c[3], c[4], c[5]}, out[32];
    send_all(p, out, message(out, 2, 4, 0, b, 6));
  }
}

static void message_done(Player *p, int video) {
  if (!video) return;
  if (p->counts.frames++ == 0) p->counts.joined_ms = now_ms();
}

static const int MESSAGE_HEADER[4] = {11, 7, 3, 0};

static int basic_length(const uint8_t *h) {
  int low = h[0] & 0x3f;
  return low == 0 ? 2 : low == 1 ? 3 : 1;
}

/* How many header bytes the chunk header being read has in all, as far as its bytes tell. */
static int header_need(Player *p) {
  const uint8_t *h = p->hdr;
  if (p->hdr_got < 1) return 1;
  int basic = basic_length(h);
  if (p->hdr_got < basic) return basic;
  int fmt = h[0] >> 6, base = basic + MESSAGE_HEADER[fmt];
  if (p->hdr_got < base) return base;
  int low = h[0] & 0x3f;
  int csid = low == 0 ? 64 + h[1] : low == 1 ? 64 + h[1] + h[2] * 256 : low;
  if (csid >= 320) return base;
  int extended = fmt < 3 ? (h[basic] << 16 | h[basic + 1] << 8 | h[basic + 2]) == 0xffffff
                         : p->cs[csid].extended;
  return base + (extended ? 4 : 0);
}

/* Apply a complete chunk header; false when the player is given up. */
static int header_done(Player *p) {
  const uint8_t *h = p->hdr;
  int basic = basic_length(h), fmt = h[0] >> 6, low = h[0] & 0x3f;
  p->csid = low == 0 ? 64 + h[1] : low == 1 ? 64 + h[1] + h[2] * 256 : low;
  p->hdr_got = 0;
  if (p->csid >= 320) { p->state = S_DEAD; return 0; }
  ChunkStream *cs = &p->cs[p->csid];
  const uint8_t *m = h + basic;
  if (fmt < 3) cs->extended = (m[0] << 16 | m[1] << 8 | m[2]) == 0xffffff;
  if (fmt <= 1) cs->length = m[3] << 16 | m[4] << 8 | m[5], cs->type = m[6];
  if (cs->remaining == 0) {
    cs->remaining = cs->length;
    p->ctl_got = 0;
    if (cs->length == 0) { message_done(p, cs->type == 9); return 1; }
  }
  p->body_left = cs->remaining < p->chunk_size ? cs->remaining : p->chunk_size;
  return 1;
}

/* Feed received RTMP chunk-stream bytes; only headers and small control bodies are looked at. */
static void rtmp_feed(Player *p, const uint8_t *b, size_t n) {
  size_t i = 0;
  if (p->state == S_HANDSHAKE) {
    size_t need = 1 + 2 * 1536 - p->handshake_got;
    size_t k = n < need ? n : need;
    p->handshake_got += k;
    i = k;
    if (p->handshake_got < 1 + 2 * 1536) return;
    static uint8_t c2[1536];
    send_all(p, c2, sizeof c2);
    rtmp_join(p);
    p->state = S_CHUNKS;
  }
  while (i < n) {
    if (p->body_left == 0) {
      /* a chunk header: read until header_need() says it is complete */
      while (i < n && p->hdr_got < header_need(p)) p->hdr[p->hdr_got++] = b[i++];
      if (p->hdr_got < header_need(p)) return;
      if (!header_done(p)) return;
      if (p->body_left == 0) continue;
    }
    ChunkStream *cs = &p->cs[p->csid];
    size_t k = n - i < p->body_left ? n - i : p->body_left;
    if (cs->type <= 6 && cs->length <= sizeof p->ctl) {
      memcpy(p->ctl + p->ctl_got, b + i, k);
      p->ctl_got += k;
    }
    i += k;
    p->body_left -= k;
    cs->remaining -= k;
    if (cs->remaining == 0 && p->body_left == 0) {
      if (cs->type <= 6 && cs->length <= sizeof p->ctl) rtmp_control(p, cs);
      message_done(p, cs->type == 9);
    }
  }
}

/* ---- HTTP-FLV ---- */

static void flv_feed(Player *p, const uint8_t *b, size_t n) {
  for (size_t i = 0; i < n;) {
    if (p->flv_skip) {
      size_t k = n - i < p->flv_skip ? n - i : p->flv_skip;
      p->flv_skip -= k;
      i += k;
      continue;
    }
    p->tag[p->tag_got++] = b[i++];
    if (p->tag_got < 11) continue;
    p->tag_got = 0;
    message_done(p, (p->tag[0] & 0x1f) == 9);
    p->flv_skip = (p->tag[1] << 16 | p->tag[2] << 8 | p->tag[3]) + 4;
  }
}

/* De-chunk an HTTP body (or pass it through) into the FLV counter. */
static void http_body(Player *p, const uint8_t *b, size_t n) {
  if (!p->chunked) return flv_feed(p, b, n);
  for (size_t i = 0; i < n;) {
    if (p->crlf_skip) { p->crlf_skip--, i++; continue; }
    if (p->http_line) {
      uint8_t c = b[i++];
      if (c == '\n') {
        p->http_line = 0;
        p->http_left = p->http_size;
        if (p->http_size == 0) { p->state = S_DEAD; return; }
      } else if (p->http_line == 1) {
        int d = c >= '0' && c <= '9' ? c - '0' : (c | 32) >= 'a' && (c | 32) <= 'f' ? (c | 32) - 'a' + 10 : -1;
        if (d < 0) p->http_line = 2; /* extension or CR */
        else p->http_size = p->http_size * 16 + d;
      }
      continue;
    }
    size_t k = n - i < p->http_left ? n - i : p->http_left;
    flv_feed(p, b + i, k);
    i += k;
    p->http_left -= k;
    if (p->http_left == 0) p->crlf_skip = 2, p->http_line = 1, p->http_size = 0;
  }
}

static void http_feed(Player *p, const uint8_t *b, size_t n) {
  size_t i = 0;
  if (p->state == S_HTTP_HEAD) {
    static const char end[] = "\r\n\r\n";
    while (i < n && p->head_match < 4) {
      uint8_t c = b[i++];
      if (p->head_len < (int)sizeof p->head_buf - 1) p->head_buf[p->head_len++] = c;
      p->head_match = c == end[p->head_match] ? p->head_match + 1 : c == '\r' ? 1 : 0;
    }
    if (p->head_match < 4) return;
    p->head_buf[p->head_len] = 0;
    if (strncmp((char *)p->head_buf + 9, "200", 3) != 0) { p->state = S_DEAD; return; }
    p->chunked = strcasestr((char *)p->head_buf, "transfer-encoding: chunked") != NULL;
    p->http_line = 1;
    p->flv_skip = 13; /* FLV header + PreviousTagSize0 */
    p->state = S_HTTP_BODY;
  }
  http_body(p, b + i, n - i);
}

/* ---- RTSP ---- */

static void rtsp_request(Player *p, const char *method, const char *path, const char *extra) {
  char req[768], session[96] = "";
  if (p->session[0]) snprintf(session, sizeof session, "Session: %s\r\n", p->session);
  int n = snprintf(req, sizeof req, "%s rtsp://%s:%d/%s/%s%s RTSP/1.0\r\nCSeq: %d\r\n%s%s\r\n",
                   method, host, port, app, stream, path, p->rtsp_step + 1, extra, session);
  send_all(p, (uint8_t *)req, n);
}

static void rtsp_setup(Player *p, int track) {
  char path[32], transport[96];
  snprintf(path, sizeof path, "/trackID=%d", track);
  snprintf(transport, sizeof transport, "Transport: RTP/AVP/TCP;unicast;interleaved=%d-%d\r\n",
           2 * track, 2 * track + 1);
  rtsp_request(p, "SETUP", path, transport);
}

/* A whole answer (head and body) is in head_buf: send the next request. */
static void rtsp_answered(Player *p) {
  char *text = (char *)p->head_buf;
  p->head_buf[p->head_len] = 0;
  p->head_len = 0, p->head_match = 0;
  if (strncmp(text + 9, "200", 3) != 0) { p->state = S_DEAD; return; }
  switch (p->rtsp_step) {
  case R_DESCRIBE:
    for (char *m = strstr(text, "\nm="); m; m = strstr(m + 1, "\nm=")) {
      if (strncmp(m + 3, "video", 5) == 0) p->video_track = p->tracks;
      p->tracks++;
    }
    if (p->tracks == 0) { p->state = S_DEAD; return; }
    p->rtsp_step = R_SETUP_FIRST;
    return rtsp_setup(p, 0);
  case R_SETUP_FIRST: {
    char *s = strcasestr(text, "\nsession:");
    if (!s) { p->state = S_DEAD; return; }
    s += 10;
    while (*s == ' ') s++;
    size_t n = strcspn(s, ";\r\n");
    if (n >= sizeof p->session) n = sizeof p->session - 1;
    memcpy(p->session, s, n);
    p->session[n] = 0;
    if (p->tracks > 1) {
      p->rtsp_step = R_SETUP_SECOND;
      return rtsp_setup(p, 1);
    }
  } /* fall through */
  case R_SETUP_SECOND:
    p->rtsp_step = R_PLAY;
    return rtsp_request(p, "PLAY", "", "");
  default:
    p->rtsp_step = R_PLAYING;
  }
}

/* Feed received RTSP bytes: answers, then interleaved frames, of which only the RTP marker bit
   of the video channel's packets is looked at. */
static void rtsp_feed(Player *p, const uint8_t *b, size_t n) {
  for (size_t i = 0; i < n;) {
    if (p->ilv_left) {
      size_t k = n - i < p->ilv_left ? n - i : p->ilv_left;
      if (p->ilv[1] == 2 * p->video_track && p->ilv_pos <= 1 && p->ilv_pos + k > 1) {
        message_done(p, b[i + 1 - p->ilv_pos] & 0x80);
      }
      p->ilv_pos += k, p->ilv_left -= k, i += k;
      continue;
    }
    if (p->ilv_got) {
      p->ilv[p->ilv_got++] = b[i++];
      if (p->ilv_got == 4) p->ilv_got = 0, p->ilv_pos = 0, p->ilv_left = p->ilv[2] << 8 | p->ilv[3];
      continue;
    }
    if (p->body_want) {
      size_t k = n - i < p->body_want ? n - i : p->body_want;
      size_t room = sizeof p->head_buf - 1 - p->head_len;
      memcpy(p->head_buf + p->head_len, b + i, k < room ? k : room);
      p->head_len += k < room ? k : room;
      p->body_want -= k, i += k;
      if (p->body_want == 0) rtsp_answered(p);
      continue;
    }
    if (p->head_len == 0 && b[i] == '$') {
      p->ilv[p->ilv_got++] = b[i++];
      continue;
    }
    static const char end[] = "\r\n\r\n";
    uint8_t c = b[i++];
    if (p->head_len < (int)sizeof p->head_buf - 1) p->head_buf[p->head_len++] = c;
    p->head_match = c == end[p->head_match] ? p->head_match + 1 : c == '\r' ? 1 : 0;
    if (p->head_match < 4) continue;
    p->head_match = 0;
    p->head_buf[p->head_len] = 0;
    char *length = strcasestr((char *)p->head_buf, "\ncontent-length:");
    p->body_want = length ? (uint32_t)atoi(length + 16) : 0;
    if (p->body_want == 0) rtsp_answered(p);
    if (p->state == S_DEAD) return;
  }
}

/* ---- the loop ---- */

static int epfd;

static void start(Player *p) {
  p->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (p->fd < 0) die("socket");
  int one = 1;
  setsockopt(p->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  /* Spread the players over source addresses 127.1.x.y, PLAYERS_PER_SOURCE each, so a
     server's per-address connection limit does not cap the load. */
  int source = (int)(p - players) / PLAYERS_PER_SOURCE + 1;
  struct sockaddr_in src = {.sin_family = AF_INET};
  src.sin_addr.s_addr = htonl(0x7f010000u | (uint32_t)((source >> 8) & 0xff) << 8 | (source & 0xff));
  if (bind(p->fd, (struct sockaddr *)&src, sizeof src) < 0) die("bind");
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
  inet_pton(AF_INET, host, &sa.sin_addr);
  p->counts.started_ms = now_ms();
  p->chunk_size = 128;
  p->cs = calloc(320, sizeof(ChunkStream));
  if (connect(p->fd, (struct sockaddr *)&sa, sizeof sa) < 0 && errno != EINPROGRESS) die("connect");
  struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN, .data.ptr = p};
  epoll_ctl(epfd, EPOLL_CTL_ADD, p->fd, &ev);
  p->state = -1; /* connecting */
}

static void connected(Player *p) {
  int err = 0;
  socklen_t len = sizeof err;
  getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &err, &len);
  if (err) { p->state = S_DEAD; return; }
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = p};
  epoll_ctl(epfd, EPOLL_CTL_MOD, p->fd, &ev);
  if (mode == RTMP) {
    static uint8_t c0c1[1 + 1536] = {3};
    p->state = S_HANDSHAKE;
    send_all(p, c0c1, sizeof c0c1);
  } else if (mode == RTSP) {
    p->state = S_RTSP;
    rtsp_request(p, "DESCRIBE", "", "Accept: application/sdp\r\n");
  } else {
    char req[512];
    int n = snprintf(req, sizeof req,
                     "GET /%s/%s.flv HTTP/1.1\r\nHost: %s:%d\r\nUser-Agent: arcly-load\r\n\r\n", app,
                     stream, host, port);
    p->state = S_HTTP_HEAD;
    send_all(p, (uint8_t *)req, n);
  }
}

int main(int argc, char **argv) {
  if (argc != 10) {
    fprintf(stderr, "usage: %s rtmp|flv|rtsp HOST PORT APP STREAM PLAYERS RAMP_PER_S WARMUP_S WINDOW_S\n", argv[0]);
    return 2;
  }
  mode = strcmp(argv[1], "flv") == 0 ? FLV : strcmp(argv[1], "rtsp") == 0 ? RTSP : RTMP;
  host = argv[2], port = atoi(argv[3]), app = argv[4], stream = argv[5];
  nplayers = atoi(argv[6]);
  LoadSchedule schedule = load_schedule(nplayers, atof(argv[7]), atof(argv[8]), atof(argv[9]));
  struct rlimit rl = {nplayers + 64, nplayers + 64};
  setrlimit(RLIMIT_NOFILE, &rl);
  players = calloc(nplayers, sizeof(Player));
  epfd = epoll_create1(0);
  static uint8_t buf[256 * 1024];
  struct epoll_event events[256];
  for (;;) {
    double t = now_ms();
    int due = due_players(&schedule, t);
    while (schedule.started < due) start(&players[schedule.started++]);
    if (window_closed(&schedule, t, counts_of)) break;
    int n = epoll_wait(epfd, events, 256, 10);
    for (int e = 0; e < n; e++) {
      Player *p = events[e].data.ptr;
      if (p->state == S_DEAD) continue;
      if (p->state == -1) {
        connected(p);
        continue;
      }
      for (;;) {
        ssize_t r = recv(p->fd, buf, sizeof buf, 0);
        if (r <= 0) {
          if (r < 0 && (errno == EAGAIN || errno == EINTR)) break;
          p->state = S_DEAD;
          break;
        }
        p->counts.bytes += r;
        if (mode == RTMP) {
          rtmp_feed(p, buf, r);
          p->unacked += r;
          if (p->unacked > 1000000) p->acked += p->unacked, p->unacked = 0, rtmp_ack(p);
        } else if (mode == RTSP) {
          rtsp_feed(p, buf, r);
        } else {
          http_feed(p, buf, r);
        }
        if (p->state == S_DEAD || r < (ssize_t)sizeof buf) break;
      }
      if (p->state == S_DEAD) {
        epoll_ctl(epfd, EPOLL_CTL_DEL, p->fd, NULL);
        close(p->fd);
        p->fd = -1;
      }
    }
  }
  print_result(counts_of, nplayers, schedule.window_at);
  return 0;
}
