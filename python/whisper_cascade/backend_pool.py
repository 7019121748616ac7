"""A pool of resident whisper.cpp models, bounded by memory, least recently used out first.

Loading a model costs seconds and every loaded context holds its own weights, so models stay
resident between calls. A model handed out by :meth:`ModelPool.get` is pinned until
:meth:`ModelPool.release` (or use :meth:`ModelPool.use`); pinned models are never freed, even
when that leaves the pool over its budget for a while.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict, Unpack

from whisper_cascade.backend import ContextOptions, LoadedModel
from whisper_cascade.errors import InvalidArgumentError, StateError

__all__ = ["ModelPool", "PoolKey"]


@dataclass(frozen=True)
class PoolKey:
    """What makes two loaded models interchangeable."""

    path: str
    sha256: str | None
    context: ContextOptions
    audio_ctx: int


class _GetOptions(TypedDict, total=False):
    """The keyword arguments of :meth:`ModelPool.get`."""

    name: str | None
    sha256: str | None
    context: ContextOptions | None
    audio_ctx: int


@dataclass
class _Entry:
    model: LoadedModel
    refs: int = 0


class ModelPool:
    """Keeps loaded models resident; evicts unpinned ones, least recently used first.

    ``max_bytes`` bounds the estimated memory of resident models (None: no bound);
    ``max_models`` bounds their number. Thread-safe; loading happens under the pool lock, so
    two threads asking for the same model load it once.
    """

    def __init__(self, max_bytes: int | None = None, *, max_models: int | None = None) -> None:
        if max_bytes is not None and max_bytes <= 0:
            raise InvalidArgumentError(f"max_bytes must be positive, got {max_bytes}")
        if max_models is not None and max_models <= 0:
            raise InvalidArgumentError(f"max_models must be positive, got {max_models}")
        self.max_bytes = max_bytes
        self.max_models = max_models
        self._lock = threading.Lock()
        self._entries: OrderedDict[PoolKey, _Entry] = OrderedDict()
        self._closed = False
        self.loads = 0
        self.evictions = 0

    def get(
        self,
        path: str | os.PathLike[str],
        *,
        name: str | None = None,
        sha256: str | None = None,
        context: ContextOptions | None = None,
        audio_ctx: int = 0,
    ) -> LoadedModel:
        """The resident model for these settings, loading it if needed; pinned until release."""
        key = PoolKey(str(Path(path).resolve()), sha256, context or ContextOptions(), audio_ctx)
        with self._lock:
            if self._closed:
                raise StateError("model pool is closed")
            entry = self._entries.get(key)
            if entry is None:
                model = LoadedModel(
                    path, name=name, sha256=sha256, context=key.context, audio_ctx=audio_ctx
                )
                self.loads += 1
                entry = _Entry(model)
                self._entries[key] = entry
            self._entries.move_to_end(key)
            entry.refs += 1
            self._evict_locked()
            return entry.model

    def release(self, model: LoadedModel) -> None:
        """Unpin a model returned by :meth:`get` (it stays resident until evicted)."""
        with self._lock:
            for entry in self._entries.values():
                if entry.model is model:
                    if entry.refs <= 0:
                        raise StateError(f"model {model.name} released more often than taken")
                    entry.refs -= 1
                    break
            else:
                return  # already evicted by close(): nothing pinned any more
            self._evict_locked()

    @contextmanager
    def use(
        self, path: str | os.PathLike[str], **options: Unpack[_GetOptions]
    ) -> Iterator[LoadedModel]:
        """``with pool.use(path) as model:`` — :meth:`get` and release around the block."""
        model = self.get(path, **options)
        try:
            yield model
        finally:
            self.release(model)

    @property
    def resident_bytes(self) -> int:
        """Estimated memory of all resident models."""
        with self._lock:
            return sum(e.model.memory_bytes for e in self._entries.values())

    def resident(self) -> list[LoadedModel]:
        """Resident models, least recently used first."""
        with self._lock:
            return [e.model for e in self._entries.values()]

    def _over_budget(self) -> bool:
        if self.max_models is not None and len(self._entries) > self.max_models:
            return True
        if self.max_bytes is None:
            return False
        return sum(e.model.memory_bytes for e in self._entries.values()) > self.max_bytes

    def _evict_locked(self) -> None:
        while self._over_budget():
            victim = next((k for k, e in self._entries.items() if e.refs == 0), None)
            if victim is None:
                return  # everything left is pinned: stay over budget until a release
            self._entries.pop(victim).model.close()
            self.evictions += 1

    def close(self) -> None:
        """Free every resident model (each waits for its running call); idempotent."""
        with self._lock:
            entries = list(self._entries.values())
            self._entries.clear()
            self._closed = True
        for entry in entries:
            entry.model.close()

    def __enter__(self) -> ModelPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
