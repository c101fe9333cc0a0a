/*
 * What the load players of bench/load.ts (bench/_load_player.c, bench/_load_srt.c,
 * bench/_load_srt_lite.c) share: the clock, and the one JSON line
 * each prints when its window closes (players asked for, joined, per-player video frames in
 * the window (sorted), bytes in the window, join times (connect to first video frame, ms,
 * sorted) and its own CPU time), read by bench/load.ts; and when players start and the
 * window opens.
 */
#pragma once

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

/** One player's counts: kept by the player, read for the result. */
typedef struct {
  double started_ms, joined_ms;
  uint64_t bytes, frames;
  uint64_t window_frames_at, window_bytes_at;
} LoadCounts;

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/** When players start (RAMP_PER_S a second, all at once if 0) and the window opens and closes. */
typedef struct {
  int players, started;
  double ramp, warmup_ms, window_ms, t0, ramp_done, window_at;
} LoadSchedule;

static LoadSchedule load_schedule(int players, double ramp, double warmup_s, double window_s) {
  return (LoadSchedule){players, 0, ramp, warmup_s * 1e3, window_s * 1e3, now_ms(), -1, -1};
}

/** How many players should have started by `t`. */
static int due_players(const LoadSchedule *s, double t) {
  int due = s->ramp <= 0 ? s->players : (int)((t - s->t0) / 1e3 * s->ramp) + 1;
  return due < s->players ? due : s->players;
}

/** The window opens: what each player has counted so far is left out of it. */
static void open_window(LoadCounts *(*counts)(int), int n) {
  for (int i = 0; i < n; i++) {
    LoadCounts *c = counts(i);
    c->window_frames_at = c->frames;
    c->window_bytes_at = c->bytes;
  }
  printf("window\n");
  fflush(stdout);
}

/**
 * Note the end of the ramp and open the window `warmup` later (see open_window); true once
 * the window has closed.
 */
static int window_closed(LoadSchedule *s, double t, LoadCounts *(*counts)(int)) {
  if (s->started == s->players && s->ramp_done < 0) s->ramp_done = t;
  if (s->ramp_done >= 0 && s->window_at < 0 && t - s->ramp_done >= s->warmup_ms) {
    s->window_at = t;
    open_window(counts, s->players);
  }
  return s->window_at >= 0 && t - s->window_at >= s->window_ms;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/** Print the result line for `n` players whose window opened at `window_at`. */
static void print_result(LoadCounts *(*counts)(int), int n, double window_at) {
  double elapsed = now_ms() - window_at;
  uint64_t *frames = calloc(n, sizeof(uint64_t));
  double *joins = calloc(n, sizeof(double));
  uint64_t window_bytes = 0;
  int joined = 0;
  for (int i = 0; i < n; i++) {
    LoadCounts *c = counts(i);
    frames[i] = c->frames - c->window_frames_at;
    window_bytes += c->bytes - c->window_bytes_at;
    if (c->frames) joins[joined++] = c->joined_ms - c->started_ms;
  }
  qsort(frames, n, sizeof(uint64_t), cmp_u64);
  qsort(joins, joined, sizeof(double), cmp_d);
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  double cpu_ms = ru.ru_utime.tv_sec * 1e3 + ru.ru_utime.tv_usec / 1e3 + ru.ru_stime.tv_sec * 1e3 +
                  ru.ru_stime.tv_usec / 1e3;
  printf("{\"players\":%d,\"joined\":%d,\"windowMs\":%.0f,\"windowBytes\":%llu,\"cpuMs\":%.0f,\"frames\":[",
         n, joined, elapsed, (unsigned long long)window_bytes, cpu_ms);
  for (int i = 0; i < n; i++) printf("%s%llu", i ? "," : "", (unsigned long long)frames[i]);
  printf("],\"joinMs\":[");
  for (int i = 0; i < joined; i++) printf("%s%.1f", i ? "," : "", joins[i]);
  printf("]}\n");
  fflush(stdout);
}
