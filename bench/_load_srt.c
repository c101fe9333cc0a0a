/*
 * The libsrt SRT load reader of bench/load.ts (`--srt-load libsrt`): N libsrt callers in
 * Stream ID read mode ("#!::r=APP/STREAM,m=request") in one loop on libsrt's epoll, the
 * reference for bench/_load_srt_lite.c, which costs a fraction of its CPU. Each reader
 * connects and then only counts (bench/_load_ts.h): payload bytes, and video frames as PES
 * starts on the video PID. Readers share one UDP port (one libsrt multiplexer, two threads)
 * per READERS_PER_PORT and run without TSBPD (no thread per reader): payloads are counted as
 * they arrive, in order.
 *
 *   _load_srt srt HOST PORT APP STREAM PLAYERS RAMP_PER_S WARMUP_S WINDOW_S
 *
 * It prints "window\n" when the measurement window opens, and when it closes the result
 * line of bench/_load_result.h. Built by bench/load.ts with gcc -O2 against libsrt
 * (Debian: apt-get install libsrt-openssl-dev); loopback only.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <srt/srt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <syslog.h>
#include <time.h>

#include "_load_result.h"
#include "_load_ts.h"

/* A shared port's UDP receive buffer (the kernel caps it at net.core.rmem_max): bursts of
 * its readers' packets must not overflow it, or the load reader's own losses are measured. */
enum { READERS_PER_PORT = 10, UDP_BUFFER = 4 << 20 };
enum { R_IDLE, R_CONNECTING, R_READING, R_DEAD };

typedef struct {
  SRTSOCKET sock;
  int state;
  LoadCounts counts;
} Reader;

static Reader *readers;
static int nreaders;
/* Readers by socket id: open addressing, a power of two at least twice the readers. */
static int *slots;
static unsigned slot_mask;

static LoadCounts *counts_of(int i) { return &readers[i].counts; }

static void remember(int index) {
  unsigned at = (unsigned)readers[index].sock & slot_mask;
  while (slots[at] >= 0) at = (at + 1) & slot_mask;
  slots[at] = index;
}

static Reader *find(SRTSOCKET sock) {
  for (unsigned at = (unsigned)sock & slot_mask; slots[at] >= 0; at = (at + 1) & slot_mask) {
    if (readers[slots[at]].sock == sock) return &readers[slots[at]];
  }
  return NULL;
}

static int start(int index, struct sockaddr_in *server, struct sockaddr_in *local, int eid,
                 const char *stream_id) {
  Reader *r = &readers[index];
  int no = 0, yes = 1, events = SRT_EPOLL_IN | SRT_EPOLL_OUT | SRT_EPOLL_ERR;
  int udp_buffer = UDP_BUFFER;
  r->sock = srt_create_socket();
  srt_setsockflag(r->sock, SRTO_RCVSYN, &no, sizeof no);
  srt_setsockflag(r->sock, SRTO_SNDSYN, &no, sizeof no);
  srt_setsockflag(r->sock, SRTO_TSBPDMODE, &no, sizeof no);
  srt_setsockflag(r->sock, SRTO_REUSEADDR, &yes, sizeof yes);
  srt_setsockflag(r->sock, SRTO_UDP_RCVBUF, &udp_buffer, sizeof udp_buffer);
  srt_setsockflag(r->sock, SRTO_STREAMID, stream_id, (int)strlen(stream_id));
  /* The first reader of a group takes a port; the others share it (one multiplexer). */
  if (index % READERS_PER_PORT == 0) local->sin_port = 0;
  if (srt_bind(r->sock, (struct sockaddr *)local, sizeof *local) == SRT_ERROR) return -1;
  if (index % READERS_PER_PORT == 0) {
    int len = sizeof *local;
    srt_getsockname(r->sock, (struct sockaddr *)local, &len);
  }
  remember(index);
  srt_epoll_add_usock(eid, r->sock, &events);
  r->counts.started_ms = now_ms();
  r->state = R_CONNECTING;
  if (srt_connect(r->sock, (struct sockaddr *)server, sizeof *server) == SRT_ERROR) {
    r->state = R_DEAD;
    return -1;
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 10 || strcmp(argv[1], "srt") != 0) {
    fprintf(stderr, "usage: %s srt HOST PORT APP STREAM PLAYERS RAMP_PER_S WARMUP_S WINDOW_S\n", argv[0]);
    return 2;
  }
  const char *host = argv[2], *app = argv[4], *stream = argv[5];
  nreaders = atoi(argv[6]);
  LoadSchedule schedule = load_schedule(nreaders, atof(argv[7]), atof(argv[8]), atof(argv[9]));
  char stream_id[512];
  snprintf(stream_id, sizeof stream_id, "#!::r=%s/%s,m=request", app, stream);
  struct rlimit rl = {nreaders + 256, nreaders + 256};
  setrlimit(RLIMIT_NOFILE, &rl);
  srt_startup();
  srt_setloglevel(LOG_CRIT);
  struct sockaddr_in server = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[3]))};
  inet_pton(AF_INET, host, &server.sin_addr);
  struct sockaddr_in local = {.sin_family = AF_INET};
  inet_pton(AF_INET, host, &local.sin_addr);
  readers = calloc(nreaders, sizeof(Reader));
  unsigned size = 1;
  while (size < 2u * nreaders) size <<= 1;
  slots = malloc(size * sizeof(int));
  memset(slots, 0xff, size * sizeof(int));
  slot_mask = size - 1;
  int eid = srt_epoll_create();
  srt_epoll_set(eid, SRT_EPOLL_ENABLE_EMPTY);
  SRT_EPOLL_EVENT events[256];
  static uint8_t buf[1500];
  for (;;) {
    double t = now_ms();
    int due = due_players(&schedule, t);
    while (schedule.started < due) start(schedule.started++, &server, &local, eid, stream_id);
    if (window_closed(&schedule, t, counts_of)) break;
    int n = srt_epoll_uwait(eid, events, 256, 10);
    for (int e = 0; e < n; e++) {
      Reader *r = find(events[e].fd);
      if (!r || r->state == R_DEAD) continue;
      if (events[e].events & SRT_EPOLL_ERR) {
        r->state = R_DEAD;
        srt_epoll_remove_usock(eid, r->sock);
        continue;
      }
      if (r->state == R_CONNECTING && (events[e].events & SRT_EPOLL_OUT)) {
        int in = SRT_EPOLL_IN | SRT_EPOLL_ERR;
        r->state = R_READING;
        srt_epoll_update_usock(eid, r->sock, &in);
      }
      if (!(events[e].events & SRT_EPOLL_IN)) continue;
      for (;;) {
        int got = srt_recvmsg(r->sock, (char *)buf, sizeof buf);
        if (got <= 0) break;
        count_ts(&r->counts, buf, got);
      }
    }
  }
  print_result(counts_of, nreaders, schedule.window_at);
  for (int i = 0; i < nreaders; i++) {
    if (readers[i].state != R_IDLE) srt_close(readers[i].sock);
  }
  srt_cleanup();
  return 0;
}
