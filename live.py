"""Swap faces live: read a camera, swap every frame it can, show the result, send it to a virtual camera or record it.

Examples:
  python live.py --source_file_path me.jpg --camera 0                       # a window (q or Esc stops)
  python live.py --source_file_path me.jpg --camera 0 --virtual_camera      # for video calls (pip install -r requirements-live.txt)
  python live.py --source_file_path me.jpg --camera /dev/video2 --output_file_path take.mp4 --no-window
  python live.py --source_file_path me.jpg --camera rtsp://cam.local/stream --enhance_output --enhance_every 3

Runs until Ctrl+C (or q in the window, or the camera ends); a recorded file stays playable. When the swap is
slower than the camera, frames are dropped, never queued: the summary counts them. Live flags are in
utils/live/options.py; model and face flags are inference.py's, with faster live defaults.
"""
from __future__ import annotations

import sys

from utils.cli import add_option_arguments, configure_logging, make_parser, options_from_arguments, run_cli
from utils.inference.inference_arguments import (
    add_selection_arguments,
    add_swap_arguments,
    selection_from_arguments,
    swap_options_from_arguments,
)
from utils.inference.stream import STREAM_HELP, StreamOptions
from utils.live.options import LIVE_HELP, LIVE_SWAP_DEFAULTS, LiveOptions


def build_parser():
    parser = make_parser("live.py", __doc__)
    parser.add_argument("--source_file_path", nargs="+", required=True, metavar="IMAGE",
                        help="photo(s) giving the identity; several go with --target_faces_paths")
    add_option_arguments(parser.add_argument_group("live"), LiveOptions, LIVE_HELP)
    # --detection_upscale is a swap flag already (inference.py's); StreamOptions reads that one.
    add_option_arguments(parser.add_argument_group("stream"), StreamOptions,
                         {name: text for name, text in STREAM_HELP.items() if name != "detection_upscale"})
    add_selection_arguments(parser)
    add_swap_arguments(parser)
    parser.set_defaults(**LIVE_SWAP_DEFAULTS)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.verbose)

    def body() -> None:
        from utils.inference.swap import FaceSwapper
        from utils.live.run import run_live
        from utils.live.stream import open_live_stream

        options, stream = options_from_arguments(LiveOptions, args), options_from_arguments(StreamOptions, args)
        swap_options, selection = swap_options_from_arguments(args), selection_from_arguments(args)

        def open_swap():
            return open_live_stream(FaceSwapper(swap_options), args.source_file_path, selection, stream)

        stats = run_live(options, open_swap)
        print(f"stopped ({stats.stopped_by}): {stats.summary()}", flush=True)

    return run_cli(body)


if __name__ == "__main__":
    sys.exit(main())
