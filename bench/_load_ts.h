/*
 * What the SRT load readers (bench/_load_srt.c on libsrt, bench/_load_srt_lite.c without)
 * count of the MPEG-TS they receive: payload bytes, and video frames as TS packets on the
 * video PID (0x100, the server's muxer) that start a PES (payload_unit_start). Nothing is
 * decoded.
 */
#pragma once

#include <stdint.h>

#include "_load_result.h"

enum { VIDEO_PID = 0x100, TS_PACKET = 188 };

/** Count one payload of whole TS packets into `c`. */
static void count_ts(LoadCounts *c, const uint8_t *p, int n) {
  c->bytes += n;
  for (int at = 0; at + TS_PACKET <= n; at += TS_PACKET) {
    const uint8_t *ts = p + at;
    if (ts[0] != 0x47 || !(ts[1] & 0x40)) continue;
    if ((((ts[1] & 0x1f) << 8) | ts[2]) != VIDEO_PID) continue;
    if (c->frames++ == 0) c->joined_ms = now_ms();
  }
}
