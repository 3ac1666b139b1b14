"""Options of a preprocessing run (both datasets), each default written once."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from models.retinaface import DEFAULT_THRESHOLD
from utils.align import DEFAULT_ALIGN_MODE, check_align_mode
from utils.errors import GhostError

# liveportrait/README.md §6.4: photos whose long side exceeds this are shrunk before detection.
MAX_IMAGE_SIDE = 1280
FACE_CROP_SIZE = 512


@dataclass
class PreprocessOptions:
    """Run and retargeting options shared by both datasets (defaults are the original project's)."""

    output_dir: Path
    output_dir_resized: Path
    output_dir_retargeted: Path
    detection_threshold: float = DEFAULT_THRESHOLD
    # The original detects the (already shrunk) photo and the variants as they are (faces/README.md §1.3);
    # a limit here is our speed option and only ever shrinks.
    detection_max_size: int | None = None
    min_original_image_size: int = 250
    min_original_face_size: int = 64
    eye_dist_threshold: float = 5.0
    final_crop_size: int = 256
    align_mode: str = DEFAULT_ALIGN_MODE
    stop_if_error: bool = False
    retargeting: bool = True
    number_of_variants_per_face: int = 24
    enhance_output_face: bool = False
    enhance_faces_in_original_image: bool = False
    retargeting_do_crop: bool = False
    retargeting_crop_scale: float = 2.3
    filter_valid_faces: bool = True
    save_full_size: bool = False
    save_retargeted: bool = False
    max_faces_per_image: int = 0  # 0: every face that passes the filters
    seed: int = 0
    render_batch_size: int = 4
    num_workers_total: int = 1
    worker_index: int = 0

    def output_folders(self) -> list[Path]:
        """The folders this run writes to (the others stay untouched)."""
        folders = [self.output_dir_resized]
        if self.save_full_size:
            folders.append(self.output_dir)
        if self.save_retargeted:
            folders.append(self.output_dir_retargeted)
        return folders

    def check(self) -> None:
        """Reject option combinations this implementation cannot honour, with a clear message."""
        check_align_mode(self.align_mode)
        if self.num_workers_total < 1 or not 0 <= self.worker_index < self.num_workers_total:
            raise GhostError(f"--worker_index must be in [0, {self.num_workers_total - 1}] "
                             f"(got {self.worker_index} with --num_workers_total {self.num_workers_total})")
        if self.detection_max_size is not None and self.detection_max_size <= 0:
            raise GhostError(f"--detection_max_size must be positive (got {self.detection_max_size})")
        if self.number_of_variants_per_face < 0:
            raise GhostError("--number_of_variants_per_face must be 0 or more")
        if self.retargeting_crop_scale <= 0:
            raise GhostError(f"--retargeting_crop_scale must be positive (got {self.retargeting_crop_scale})")
        if self.retargeting_do_crop and not self.retargeting:
            raise GhostError("--retargeting_do_crop retargets faces inside the full image; it needs --retargeting")
        if self.save_retargeted and not self.retargeting_do_crop:
            raise GhostError("--save_retargeted writes the full retargeted images of the --retargeting_do_crop mode; "
                             "add --retargeting_do_crop")


