#!/usr/bin/python3
"""An RTSP camera for the daemon's tests: GStreamer's test pattern, H.264, at
rtsp://127.0.0.1:PORT/cam, live at the given size and rate, until killed.

Runs on Debian's Python (python3-gi, gir1.2-gst-rtsp-server-1.0; scripts/setup.sh --test).

    /usr/bin/python3 scripts/rtsp-test-server.py PORT [WIDTH HEIGHT FPS]
"""
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main():
    port = sys.argv[1]
    width, height, fps = (sys.argv[2:5] + ["480", "270", "25"][len(sys.argv[2:5]):])
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(port)
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(
        f"( videotestsrc is-live=true pattern=ball ! video/x-raw,width={width},height={height},framerate={fps}/1 "
        f"! x264enc tune=zerolatency speed-preset=ultrafast key-int-max={fps} ! rtph264pay name=pay0 pt=96 )"
    )
    factory.set_shared(True)
    server.get_mount_points().add_factory("/cam", factory)
    if server.attach(None) == 0:
        sys.exit(f"rtsp-test-server: cannot listen on 127.0.0.1:{port}")
    print(f"rtsp-test-server: rtsp://127.0.0.1:{port}/cam", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()
