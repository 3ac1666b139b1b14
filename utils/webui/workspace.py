"""The page's private temporary folder: Gradio's uploads, face thumbnails and results, removed when the page stops."""
from __future__ import annotations

import logging
import shutil
import tempfile
import uuid
from pathlib import Path

logger = logging.getLogger(__name__)


class Workspace:
    """A fresh folder under the system's temporary directory; :meth:`close` removes it with everything in it.

    Nothing the page handles is written anywhere else, so the repository and the user's files stay untouched.
    """

    def __init__(self, parent: str | Path | None = None) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="ghostv2-webui-", dir=parent))
        self.uploads = self.root / "uploads"
        self.faces = self.root / "faces"
        self.results = self.root / "results"
        for folder in (self.uploads, self.faces, self.results):
            folder.mkdir()

    def new_folder(self, under: Path) -> Path:
        """A new empty folder inside ``under`` (one per job, so files keep readable names)."""
        folder = under / uuid.uuid4().hex
        folder.mkdir()
        return folder

    def result_path(self, target_path: str | Path, suffix: str) -> Path:
        """Where the result of swapping into ``target_path`` goes: ``<job folder>/<target name>_swapped<suffix>``."""
        return self.new_folder(self.results) / f"{Path(target_path).stem}_swapped{suffix}"

    def close(self) -> None:
        """Remove the folder and everything in it."""
        shutil.rmtree(self.root, ignore_errors=True)
        logger.debug("removed %s", self.root)
