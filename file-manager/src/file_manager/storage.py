"""Where file bytes live: a small interface and its local-filesystem backend.

The interface is what an object store offers (put a stream, get a byte range, delete, stat) plus
what resumable uploads need (append to a partial object under an exclusive lock, then commit it).
Keys are generated here (random UUIDs), never derived from a user's file name, so no name can
reach outside the storage root.

Writes are atomic: bytes go to a temporary file that is flushed, fsynced and renamed into place;
a write that is aborted (client gone, checksum wrong, limit hit) leaves nothing.

Blocking calls (``write``, ``commit``...) are meant to run in a worker thread
(``asyncio.to_thread``); the async methods do that themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import uuid
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

READ_CHUNK = 1024 * 1024


class StorageError(Exception):
    """A storage operation failed (missing object, I/O error)."""


class UploadLocked(StorageError):
    """Another request is writing to this partial upload right now."""


@dataclass(frozen=True)
class ObjectStat:
    size: int
    modified_at: float


class PendingWrite(ABC):
    """A new object being written; becomes visible only on :meth:`commit`."""

    @abstractmethod
    def write(self, data: bytes | memoryview) -> None: ...

    @abstractmethod
    def commit(self, key: str) -> None:
        """Make the bytes durable and visible under ``key``."""

    @abstractmethod
    def abort(self) -> None:
        """Forget everything written (idempotent)."""


class PartialUpload(ABC):
    """An exclusive handle on a resumable upload's bytes (released on close)."""

    @abstractmethod
    def size(self) -> int: ...

    @abstractmethod
    def append(self, data: bytes | memoryview) -> None: ...

    @abstractmethod
    def truncate(self, size: int) -> None:
        """Drop every byte after ``size`` (a chunk that failed its checksum)."""

    @abstractmethod
    def sync(self) -> None: ...

    @abstractmethod
    def close(self) -> None: ...


class Storage(ABC):
    """What file-manager needs from a storage backend."""

    @staticmethod
    def new_key() -> str:
        name = uuid.uuid4().hex
        return f"{name[:2]}/{name}"

    @abstractmethod
    def begin_write(self) -> PendingWrite: ...

    async def put(self, key: str, chunks: AsyncIterator[bytes]) -> int:
        """Store a stream under ``key`` atomically; returns the byte count."""
        pending = await asyncio.to_thread(self.begin_write)
        total = 0
        try:
            async for chunk in chunks:
                await asyncio.to_thread(pending.write, chunk)
                total += len(chunk)
            await asyncio.to_thread(pending.commit, key)
        except BaseException:
            await asyncio.to_thread(pending.abort)
            raise
        return total

    @abstractmethod
    def read_range(
        self, key: str, start: int = 0, end: int | None = None
    ) -> AsyncGenerator[bytes, None]:
        """The bytes ``start..end`` (inclusive; ``end=None``: to the end), streamed."""

    @abstractmethod
    async def delete(self, key: str) -> None:
        """Remove an object; a missing object is not an error."""

    @abstractmethod
    async def stat(self, key: str) -> ObjectStat | None: ...

    @abstractmethod
    @contextlib.contextmanager
    def local_copy(self, key: str) -> Iterator[Path]:
        """A local path holding the object (the object itself for the local backend)."""

    # --- resumable uploads
    @abstractmethod
    def create_partial(self, key: str) -> None: ...

    @abstractmethod
    def partial_size(self, key: str) -> int | None:
        """Bytes received so far (None if the partial upload is gone)."""

    @abstractmethod
    def open_partial(self, key: str) -> PartialUpload:
        """Lock and open a partial upload; raises :class:`UploadLocked` if already open."""

    @abstractmethod
    def commit_partial(self, key: str, final_key: str) -> None: ...

    @abstractmethod
    async def delete_partial(self, key: str) -> None: ...

    @abstractmethod
    def read_partial(self, key: str, start: int = 0) -> AsyncGenerator[bytes, None]: ...


class _LocalPendingWrite(PendingWrite):
    def __init__(self, storage: LocalStorage) -> None:
        self._storage = storage
        self._path = storage.root / "tmp" / f"{uuid.uuid4().hex}.part"
        self._file: BinaryIO | None = open(self._path, "xb")  # noqa: SIM115 (closed in commit/abort)

    def write(self, data: bytes | memoryview) -> None:
        assert self._file is not None, "write after commit/abort"
        self._file.write(data)

    def commit(self, key: str) -> None:
        assert self._file is not None, "commit after commit/abort"
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        self._file = None
        self._storage.install(self._path, key)

    def abort(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        self._path.unlink(missing_ok=True)


class _LocalPartial(PartialUpload):
    def __init__(self, path: Path) -> None:
        try:
            self._file: BinaryIO = open(path, "r+b")  # noqa: SIM115 (closed in close())
        except FileNotFoundError:
            raise StorageError("the partial upload is gone") from None
        try:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._file.close()
            raise UploadLocked("another request is writing to this upload") from None
        self._file.seek(0, os.SEEK_END)

    def size(self) -> int:
        return self._file.seek(0, os.SEEK_END)

    def append(self, data: bytes | memoryview) -> None:
        self._file.write(data)

    def truncate(self, size: int) -> None:
        self._file.flush()
        self._file.truncate(size)
        self._file.seek(size)

    def sync(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()  # releases the flock


class LocalStorage(Storage):
    """Objects as files under ``root/objects``; partial tus uploads under ``root/partial``."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        for sub in ("objects", "partial", "tmp"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)

    def _object(self, key: str) -> Path:
        return self._inside("objects", key)

    def _partial(self, key: str) -> Path:
        return self._inside("partial", key.replace("/", "_"))

    def _inside(self, area: str, key: str) -> Path:
        path = (self.root / area / key).resolve()
        if not path.is_relative_to(self.root / area):
            raise StorageError("storage key outside the storage root")  # keys are ours; defence
        return path

    def object_path(self, key: str) -> Path:
        return self._object(key)

    def install(self, source: Path, key: str) -> None:
        """Rename a fully written, fsynced file into place and fsync the directory."""
        target = self._object(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, target)
        _fsync_dir(target.parent)

    def begin_write(self) -> PendingWrite:
        return _LocalPendingWrite(self)

    async def read_range(
        self, key: str, start: int = 0, end: int | None = None
    ) -> AsyncGenerator[bytes, None]:
        path = self._object(key)
        async for chunk in _read_file(path, start, end):
            yield chunk

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._object(key).unlink, True)

    async def stat(self, key: str) -> ObjectStat | None:
        try:
            st = await asyncio.to_thread(self._object(key).stat)
        except FileNotFoundError:
            return None
        return ObjectStat(size=st.st_size, modified_at=st.st_mtime)

    @contextlib.contextmanager
    def local_copy(self, key: str) -> Iterator[Path]:
        yield self._object(key)

    def create_partial(self, key: str) -> None:
        self._partial(key).touch(exist_ok=False)

    def open_partial(self, key: str) -> PartialUpload:
        return _LocalPartial(self._partial(key))

    def partial_size(self, key: str) -> int | None:
        try:
            return self._partial(key).stat().st_size
        except FileNotFoundError:
            return None

    def partial_path(self, key: str) -> Path:
        return self._partial(key)

    def commit_partial(self, key: str, final_key: str) -> None:
        path = self._partial(key)
        with open(path, "rb") as f:
            os.fsync(f.fileno())
        self.install(path, final_key)

    async def delete_partial(self, key: str) -> None:
        await asyncio.to_thread(self._partial(key).unlink, True)

    async def read_partial(self, key: str, start: int = 0) -> AsyncGenerator[bytes, None]:
        async for chunk in _read_file(self._partial(key), max(0, start), None):
            yield chunk

    def finish_interrupted_rename(self, key: str) -> bool:
        """A completed upload whose object is missing but whose partial upload is still there
        (a crash between the commit and the rename): rename it now. True if it did."""
        partial = self._partial(key)
        if self._object(key).exists() or not partial.exists():
            return False
        try:
            self.install(partial, key)
        except FileNotFoundError:
            return False  # the completing request renamed it meanwhile
        return True

    def stale_partials(self, older_than: float) -> list[tuple[str, Path]]:
        """``(key, path)`` of partial uploads last written before ``older_than`` (epoch s)."""
        found = []
        for path in (self.root / "partial").iterdir():
            prefix, sep, name = path.name.partition("_")
            if sep and path.is_file() and path.stat().st_mtime < older_than:
                found.append((f"{prefix}/{name}", path))
        return found

    def stale_objects(self, older_than: float) -> list[tuple[str, Path]]:
        """``(key, path)`` of stored objects (and indexes) installed before ``older_than``."""
        area = self.root / "objects"
        return [
            (path.relative_to(area).as_posix(), path)
            for path in area.glob("*/*")
            if path.is_file() and path.stat().st_mtime < older_than
        ]

    def leftovers(self, older_than: float) -> list[Path]:
        """Temporary files older than ``older_than`` (epoch seconds): writes a crash left."""
        return [p for p in (self.root / "tmp").iterdir() if p.stat().st_mtime < older_than]


async def _read_file(path: Path, start: int, end: int | None) -> AsyncGenerator[bytes, None]:
    try:
        handle = await asyncio.to_thread(open, path, "rb")
    except FileNotFoundError:
        raise StorageError("the object is missing") from None
    try:
        await asyncio.to_thread(handle.seek, start)
        remaining = None if end is None else end - start + 1
        while remaining is None or remaining > 0:
            size = READ_CHUNK if remaining is None else min(READ_CHUNK, remaining)
            chunk = await asyncio.to_thread(handle.read, size)
            if not chunk:
                break
            if remaining is not None:
                remaining -= len(chunk)
            yield chunk
    finally:
        await asyncio.to_thread(handle.close)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
