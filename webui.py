"""Swap faces from a local web page: upload photos or a video, click the faces, see and download the result; or
swap your camera live in the "Live camera" tab.

Examples:
  python webui.py                                  # then open the address it prints
  python webui.py --port 8080 --no-inpaint_output  # start-up values of the page's advanced panel
  python webui.py --host 0.0.0.0                   # reachable from other machines (only when you mean it)

The page is served on 127.0.0.1 unless --host says otherwise; it has no share link and sends no analytics.
Model and video flags are inference.py's (utils/inference/inference_arguments.py); page flags are in
utils/webui/settings.py. Uploads and results live in a temporary folder removed when the page stops (Ctrl+C).
"""
from __future__ import annotations

import signal
import sys

from utils.cli import (
    add_option_arguments,
    configure_logging,
    make_parser,
    options_from_arguments,
    run_cli,
)
from utils.inference.inference_arguments import (
    VIDEO_HELP,
    add_swap_arguments,
    swap_options_from_arguments,
)
from utils.inference.video import VideoOptions
from utils.webui.settings import WEBUI_HELP, WebUISettings


def main(argv: list[str] | None = None) -> int:
    parser = make_parser("webui.py", __doc__)
    add_option_arguments(parser.add_argument_group("page"), WebUISettings, WEBUI_HELP)
    add_option_arguments(parser.add_argument_group("videos"), VideoOptions, VIDEO_HELP)
    add_swap_arguments(parser)
    args = parser.parse_args(argv)
    configure_logging(args.verbose)

    def body() -> None:
        from utils.webui.app import WebUI

        # A plain `kill` stops the page like Ctrl+C, so its temporary folder is removed.
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        settings, video = options_from_arguments(WebUISettings, args), options_from_arguments(VideoOptions, args)
        with WebUI(swap_options_from_arguments(args), settings, video) as page:
            print(f"GhostV2 web UI: {page.url} (Ctrl+C stops it)", flush=True)
            page.wait()

    return run_cli(body)


if __name__ == "__main__":
    sys.exit(main())
