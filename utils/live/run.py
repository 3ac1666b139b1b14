"""A whole live session as live.py runs it: check the cheap things first (the virtual-camera package, the output
path, the camera), then open the swap stream (models, source faces) and the outputs, run the loop, and close
everything whatever happened, so the recorded file is complete and playable after Ctrl+C or a camera disconnect
(after an NSFW frame it is deleted, as for videos).
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from utils.errors import NSFWContentError
from utils.image import check_output_file
from utils.live.camera import Camera, open_camera
from utils.live.capture import FrameGrabber
from utils.live.loop import LiveLoop, LiveStats
from utils.live.options import LiveOptions
from utils.live.outputs import (
    FrameOutput,
    VideoFileOutput,
    VirtualCameraOutput,
    WindowOutput,
    import_pyvirtualcam,
)
from utils.live.stream import LiveStream

logger = logging.getLogger(__name__)

FALLBACK_FPS = 30.0  # the rate announced to a virtual camera or file when the camera does not say its own


def output_fps(camera: Camera, options: LiveOptions) -> float:
    """The frame rate announced to the outputs: the camera's, capped by ``--fps``."""
    fps = camera.fps if camera.fps > 0 else FALLBACK_FPS
    return min(fps, options.fps) if options.fps else fps


def open_outputs(options: LiveOptions, size: tuple[int, int], fps: float) -> list[FrameOutput]:
    """The outputs ``options`` ask for (a window when none is), for ``size`` (width, height) frames."""
    outputs: list[FrameOutput] = []
    try:
        if options.output_file_path is not None:
            outputs.append(VideoFileOutput(options.output_file_path, *size, fps))
        if options.virtual_camera:
            outputs.append(VirtualCameraOutput(*size, fps))
        if options.window or not options.has_output:
            outputs.append(WindowOutput())
    except BaseException:
        close_all(outputs)
        raise
    return outputs


def close_all(outputs: list[FrameOutput]) -> None:
    """Close every output, even when one of them fails to (the file first: it is what must survive)."""
    for output in outputs:
        try:
            output.close()
        except Exception as error:  # noqa: BLE001 - the others must still be closed
            logger.warning("while closing %s: %s", type(output).__name__, error)


def run_live(options: LiveOptions, open_swap: Callable[[], LiveStream], camera: Camera | None = None,
             stop: threading.Event | None = None, outputs: list[FrameOutput] | None = None) -> LiveStats:
    """Swap ``options.camera`` (or ``camera``) with the stream ``open_swap()`` builds until a stop; the stats.

    ``outputs`` replaces the outputs ``options`` ask for (benchmarks: a display stand-in); they are closed too.

    Raises our GhostErrors (no such camera, no backend, a source photo without a face, an NSFW frame) with one
    line; outputs opened before the error are closed first (a file keeps the frames written so far, except after
    an NSFW frame: then it is deleted, as a flagged video writes nothing).
    """
    if options.virtual_camera:
        import_pyvirtualcam()  # before the camera opens: a missing package is the first thing to say
    if options.output_file_path is not None:
        check_output_file(options.output_file_path)
    if camera is None:
        camera = open_camera(options.camera, options.camera_width, options.camera_height)
    given, outputs = outputs, []
    stream: LiveStream | None = None
    grabber: FrameGrabber | None = None
    try:
        stream = open_swap()  # loads the models and finds the source faces: a photo without one stops here
        outputs = given if given is not None else open_outputs(options, camera.size, output_fps(camera, options))
        grabber = FrameGrabber(camera, options.queue_size).start()
        loop = LiveLoop(grabber, stream.swap, outputs, options)
        try:
            return loop.run(stop)
        except NSFWContentError:
            for output in outputs:  # as for videos, a flagged stream leaves no file
                if isinstance(output, VideoFileOutput):
                    output.discard()
            raise
        finally:
            loop.stats.files_written = {str(output.path): output.frames for output in outputs
                                        if isinstance(output, VideoFileOutput)}
    finally:
        if grabber is not None:
            grabber.stop()
        camera.close()
        if stream is not None:
            stream.close()
        close_all(outputs)
