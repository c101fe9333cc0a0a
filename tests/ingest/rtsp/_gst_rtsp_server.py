"""GStreamer's RTSP server (GstRtspServer) on 127.0.0.1, a free port, serving a live test
pattern at /test for the RTSP pull client's tests. Prints "port N" once it listens, then
serves until killed (or for --seconds).

  --video h264|h265   --audio aac|latm|opus|none   --protocols tcp|udp|both
  --user U --password P   (Basic authentication; both or neither)
  --shared   one pipeline for every client (later ones join mid-stream, as with a camera);
             by default each client gets its own
"""

import argparse
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402

VIDEO = {
    "h264": "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=25 bframes=0 "
    "! video/x-h264,profile=baseline ! rtph264pay name=pay0 pt=96 config-interval=1",
    "h265": "x265enc tune=zerolatency speed-preset=ultrafast key-int-max=25 "
    "! rtph265pay name=pay0 pt=96 config-interval=1",
}
AUDIO = {
    "aac": "voaacenc bitrate=64000 ! rtpmp4gpay name=pay1 pt=97",
    "latm": "voaacenc bitrate=64000 ! rtpmp4apay name=pay1 pt=97",
    "opus": "opusenc ! rtpopuspay name=pay1 pt=97",
}


def main() -> None:
    args = argparse.ArgumentParser()
    args.add_argument("--video", default="h264", choices=VIDEO)
    args.add_argument("--audio", default="aac", choices=[*AUDIO, "none"])
    args.add_argument("--protocols", default="both", choices=["tcp", "udp", "both"])
    args.add_argument("--user")
    args.add_argument("--password")
    args.add_argument("--seconds", type=float, default=60)
    args.add_argument("--shared", action="store_true", help="one pipeline for every client")
    opts = args.parse_args()

    Gst.init(None)
    launch = (
        "( videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,"
        f"framerate=25/1 ! videoconvert ! {VIDEO[opts.video]}"
    )
    if opts.audio != "none":
        launch += (
            " audiotestsrc is-live=true wave=sine ! audio/x-raw,rate=48000,channels=2 "
            f"! audioconvert ! audioresample ! {AUDIO[opts.audio]}"
        )
    launch += " )"

    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service("0")
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(launch)
    factory.set_shared(opts.shared)
    lower = {
        "tcp": GstRtsp.RTSPLowerTrans.TCP,
        "udp": GstRtsp.RTSPLowerTrans.UDP,
        "both": GstRtsp.RTSPLowerTrans.TCP | GstRtsp.RTSPLowerTrans.UDP,
    }[opts.protocols]
    factory.set_protocols(lower)

    if opts.user:
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken()
        token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, "viewer")
        auth.add_basic(GstRtspServer.RTSPAuth.make_basic(opts.user, opts.password), token)
        server.set_auth(auth)
        permissions = GstRtspServer.RTSPPermissions()
        permissions.add_role_from_structure(
            Gst.Structure.from_string(
                "viewer, media.factory.access=(boolean)true, media.factory.construct=(boolean)true"
            )[0]
        )
        factory.set_permissions(permissions)

    server.get_mount_points().add_factory("/test", factory)
    if server.attach(None) == 0:
        sys.exit("could not attach the RTSP server")
    print(f"port {server.get_bound_port()}", flush=True)
    loop = GLib.MainLoop()
    GLib.timeout_add(int(opts.seconds * 1000), loop.quit)
    loop.run()


if __name__ == "__main__":
    main()
