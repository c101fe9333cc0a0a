/*
 * The libsrt reference of bench/load.ts's SRT row: a fan-out server on libsrt's own
 * sockets and UDP path, doing no more than a relay must. One listener (libsrt's defaults:
 * live mode, 120 ms latency, TSBPD); a caller whose Stream ID asks to publish
 * ("publish:..." or "#!::...m=publish...") is the source, any other caller a reader. Every
 * message the source delivers is sent, as it is, to every reader connected then; a send
 * libsrt cannot take (its buffer full) is dropped. Nothing is parsed or muxed.
 *
 *   _srt_fanout HOST PORT
 *
 * On SIGTERM it prints what it did to stderr and exits. Built by bench/load.ts with gcc -O2
 * against libsrt (Debian: apt-get install libsrt-openssl-dev).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <srt/srt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <syslog.h>

enum { MAX_READERS = 16384, MESSAGE = 1500 };

static volatile sig_atomic_t stopping = 0;
static void on_term(int sig) { (void)sig; stopping = 1; }

static SRTSOCKET readers[MAX_READERS];
static int nreaders;
static SRTSOCKET source = SRT_INVALID_SOCK;
static unsigned long long received, sent, dropped;

/** Whether a Stream ID asks to publish: the simple form or the access control syntax. */
static int publishes(const char *id) {
  if (strncmp(id, "publish:", 8) == 0) return 1;
  return strncmp(id, "#!::", 4) == 0 && strstr(id, "m=publish") != NULL;
}

static void forget(int eid, SRTSOCKET s) {
  srt_epoll_remove_usock(eid, s);
  srt_close(s);
  if (s == source) {
    source = SRT_INVALID_SOCK;
    return;
  }
  for (int i = 0; i < nreaders; i++) {
    if (readers[i] == s) {
      readers[i] = readers[--nreaders];
      return;
    }
  }
}

static void accept_all(int eid, SRTSOCKET listener) {
  for (;;) {
    struct sockaddr_storage peer;
    int len = sizeof peer;
    SRTSOCKET s = srt_accept(listener, (struct sockaddr *)&peer, &len);
    if (s == SRT_INVALID_SOCK) return;
    char id[513] = {0};
    int idlen = sizeof id - 1;
    srt_getsockflag(s, SRTO_STREAMID, id, &idlen);
    int no = 0;
    srt_setsockflag(s, SRTO_SNDSYN, &no, sizeof no);
    srt_setsockflag(s, SRTO_RCVSYN, &no, sizeof no);
    int events = SRT_EPOLL_ERR;
    if (publishes(id) && source == SRT_INVALID_SOCK) {
      source = s;
      events |= SRT_EPOLL_IN;
    } else if (publishes(id) || nreaders == MAX_READERS) {
      srt_close(s);
      continue;
    } else {
      readers[nreaders++] = s;
    }
    srt_epoll_add_usock(eid, s, &events);
  }
}

static void forward(int eid) {
  static char buf[MESSAGE];
  for (;;) {
    int n = srt_recvmsg(source, buf, sizeof buf);
    if (n <= 0) {
      if (srt_getlasterror(NULL) != SRT_EASYNCRCV) forget(eid, source);
      return;
    }
    received++;
    for (int i = 0; i < nreaders; i++) {
      if (srt_sendmsg(readers[i], buf, n, -1, 0) == n) sent++;
      else dropped++;
    }
  }
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s HOST PORT\n", argv[0]);
    return 2;
  }
  struct rlimit rl = {MAX_READERS + 256, MAX_READERS + 256};
  setrlimit(RLIMIT_NOFILE, &rl);
  signal(SIGTERM, on_term);
  srt_startup();
  srt_setloglevel(LOG_CRIT);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[2]))};
  inet_pton(AF_INET, argv[1], &addr.sin_addr);
  SRTSOCKET listener = srt_create_socket();
  int no = 0;
  srt_setsockflag(listener, SRTO_RCVSYN, &no, sizeof no);
  if (srt_bind(listener, (struct sockaddr *)&addr, sizeof addr) == SRT_ERROR ||
      srt_listen(listener, 1024) == SRT_ERROR) {
    fprintf(stderr, "listen: %s\n", srt_getlasterror_str());
    return 1;
  }
  int eid = srt_epoll_create();
  int in = SRT_EPOLL_IN;
  srt_epoll_add_usock(eid, listener, &in);
  SRT_EPOLL_EVENT events[256];
  while (!stopping) {
    int n = srt_epoll_uwait(eid, events, 256, 100);
    for (int e = 0; e < n; e++) {
      SRTSOCKET s = events[e].fd;
      if (s == listener) accept_all(eid, listener);
      else if (events[e].events & SRT_EPOLL_ERR) forget(eid, s);
      else if (s == source) forward(eid);
    }
  }
  fprintf(stderr, "received %llu, sent %llu, dropped %llu, readers %d\n", received, sent, dropped,
          nreaders);
  srt_close(listener);
  srt_cleanup();
  return 0;
}
