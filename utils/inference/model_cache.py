"""Models (and detections) loaded so far, shared by swappers with different options."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

DETECTION_CACHE_SIZE = 64  # pictures whose detections are kept (demo grids reuse each picture many times)


class ModelCache:
    """Models loaded so far, keyed by what they were loaded from; shared by swappers with different options."""

    def __init__(self) -> None:
        self._models: dict[tuple, Any] = {}
        self._detections: dict[tuple, list] = {}

    def __contains__(self, key: tuple) -> bool:
        return key in self._models

    def get(self, key: tuple, load: Callable[[], Any]) -> Any:
        """The model stored under ``key``, loading it with ``load()`` the first time."""
        if key not in self._models:
            self._models[key] = load()
        return self._models[key]

    def detections(self, key: tuple, detect: Callable[[], list]) -> list:
        """The detections stored under ``key`` (an image's content and the detector settings), else ``detect()``."""
        if key not in self._detections:
            if len(self._detections) >= DETECTION_CACHE_SIZE:
                self._detections.pop(next(iter(self._detections)))  # forget the oldest picture
            self._detections[key] = detect()
        return self._detections[key]

    def put(self, key: tuple, model: Any) -> None:
        """Store an already built model under ``key`` (e.g. a stand-in in tests)."""
        self._models[key] = model

    def copy(self) -> ModelCache:
        """A new cache holding the same models and detections (adding to it leaves this one unchanged)."""
        clone = ModelCache()
        clone._models.update(self._models)
        clone._detections.update(self._detections)
        return clone

    def models(self) -> list[Any]:
        """The models in memory."""
        return list(self._models.values())

    def loaded(self) -> list[str]:
        """Names of the models in memory (for logs and tests)."""
        return [key[0] for key in self._models]
