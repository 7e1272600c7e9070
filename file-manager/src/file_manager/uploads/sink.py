"""Where an upload's bytes go while they stream in: storage, MD5 + SHA-256, limits, VCF checks.

Chunks are gathered into ~1 MiB buffers and handed to worker threads that write them and update
both digests (hashlib and file writes release the GIL), so the event loop keeps serving and memory
stays at a few buffers whatever the file size. A buffer's work runs while the next buffer is being
received (:class:`Overlap`): the network, MD5 (the slowest step) and SHA-256 + the write each keep
a core busy instead of taking turns. For a VCF the first blocks are inflated
on the way to check the BGZF container and the header, so a file that is not bgzip, not a VCF,
has no ``#CHROM`` line or duplicate sample ids is refused before the upload ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fedimpute_shared.problems import ProblemError, Unprocessable
from file_manager.storage import PendingWrite, Storage
from file_manager.vcf import messages as msg
from file_manager.vcf.bgzf import BGZF_EOF, BgzfError, HeadInflater
from file_manager.vcf.header import HeaderParser, Rejected, check_head_bytes

FLUSH_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Received:
    size: int
    md5: str
    sha256: str


class Overlap:
    """Runs one buffer's work in the background while the caller receives the next one.

    At most one piece of work is in flight, so the work happens in order (the digests see the
    bytes in order) and memory is two buffers. An error of the work surfaces at the next
    :meth:`submit` or at :meth:`wait`, one buffer late."""

    def __init__(self) -> None:
        self._running: asyncio.Task[None] | None = None

    async def submit(self, work: Callable[[], Awaitable[None]]) -> None:
        await self.wait()

        async def run() -> None:
            await work()

        self._running = asyncio.create_task(run())

    async def wait(self) -> None:
        """Until the work in flight is done; raises what it raised."""
        running, self._running = self._running, None
        if running is not None:
            await running

    async def settle(self) -> None:
        """Until the work in flight is done, whatever it raised (before undoing its writes)."""
        running, self._running = self._running, None
        if running is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(running)


class VcfHeadCheck:
    """Checks a bgzipped VCF's container and header from the bytes as they arrive."""

    def __init__(self, max_header_bytes: int) -> None:
        self._inflater = HeadInflater()
        self._header = HeaderParser(max_header_bytes)
        self._text = bytearray()  # the partial line after the last newline seen
        self._tail = b""
        self._size = 0

    def feed(self, data: bytes) -> None:
        self._size += len(data)
        self._tail = (self._tail + data)[-len(BGZF_EOF) :]
        if self._inflater.done:
            return
        try:
            for piece in self._inflater.feed(data):
                self._lines(piece)
                if self._header.complete:
                    self._inflater.stop()
                    break
        except BgzfError:
            check_head_bytes(self._inflater.first_bytes)
            raise Rejected(msg.malformed(msg.BAD_BGZF_BLOCK)) from None

    @property
    def header_done(self) -> bool:
        return self._inflater.done

    def feed_tail(self, tail: bytes) -> None:
        """The file's last bytes, when the middle was not fed (only the EOF marker matters)."""
        self._tail = tail[-len(BGZF_EOF) :]

    def _lines(self, piece: bytes) -> None:
        """Hand the complete lines of ``piece`` to the header parser one at a time.

        Lines are cut one by one (never ``split`` of the whole piece), so a block of 64 KiB of
        newlines costs one line at a time: the parser refuses the first line that cannot be a
        header line, or the header once it passes its size cap, and nothing more is cut.
        """
        text = self._text
        text += piece
        start = 0
        try:
            while (end := text.find(b"\n", start)) >= 0:
                line = bytes(text[start:end])
                start = end + 1
                if self._header.add(line.rstrip(b"\r")):
                    text.clear()
                    return
        finally:
            del text[:start]
        if len(text) > self._header.max_header_bytes:
            self._header.add(bytes(text))  # raises: header too large

    def finish(self) -> None:
        if self._size == 0:
            raise Rejected(msg.EMPTY_FILE)
        check_head_bytes(self._inflater.first_bytes)
        if self._tail != BGZF_EOF:
            raise Rejected(msg.malformed(msg.TRUNCATED))
        self._header.finish()
        if self._header.duplicates:
            raise Rejected(msg.duplicate_sample(self._header.duplicates[0]), self._header.lines)


def vcf_problem(rejected: Rejected) -> Unprocessable:
    """The 422 for a file refused at upload, with the validator's message and line."""
    issue = rejected.issue
    return Unprocessable(
        issue.message,
        title="The file is not a valid bgzipped VCF",
        report={"status": "invalid", "errors": [issue.__dict__], "warnings": []},
    )


class UploadSink:
    """Receives one upload; call :meth:`write` per chunk, then :meth:`finish` or :meth:`abort`."""

    def __init__(
        self,
        storage: Storage,
        *,
        limit: int,
        over_limit: Callable[[int], ProblemError],
        vcf_check: VcfHeadCheck | None = None,
    ) -> None:
        self._storage = storage
        self._limit = limit
        self._over_limit = over_limit
        self._vcf = vcf_check
        self._pending: PendingWrite | None = None
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._sha256 = hashlib.sha256()
        self._buffer: list[bytes] = []
        self._buffered = 0
        self._overlap = Overlap()
        self.size = 0

    async def start(self) -> None:
        self._pending = await asyncio.to_thread(self._storage.begin_write)

    async def write(self, chunk: bytes) -> None:
        if not chunk:
            return
        self.size += len(chunk)
        if self.size > self._limit:
            raise self._over_limit(self.size)
        self._buffer.append(chunk)
        self._buffered += len(chunk)
        if self._buffered >= FLUSH_BYTES:
            await self._flush()

    async def _flush(self) -> None:
        data = b"".join(self._buffer)
        self._buffer, self._buffered = [], 0
        if data:
            await self._checked(self._overlap.submit(lambda: self._digest_and_write(data)))

    async def _digest_and_write(self, data: bytes) -> None:
        # MD5 is the slowest step: it runs on a second thread beside the rest
        await asyncio.gather(
            asyncio.to_thread(self._md5.update, data),
            asyncio.to_thread(self._consume, data),
        )

    @staticmethod
    async def _checked(step: Awaitable[None]) -> None:
        try:
            await step
        except Rejected as rejected:
            raise vcf_problem(rejected) from None

    def _consume(self, data: bytes) -> None:
        if self._vcf is not None:
            self._vcf.feed(data)
        assert self._pending is not None
        self._pending.write(data)
        self._sha256.update(data)

    async def finish(self) -> Received:
        """Flush the rest and run the end-of-file checks; the bytes are still pending."""
        await self._flush()
        await self._checked(self._overlap.wait())
        if self._vcf is not None:
            try:
                self._vcf.finish()
            except Rejected as rejected:
                raise vcf_problem(rejected) from None
        return Received(self.size, self._md5.hexdigest(), self._sha256.hexdigest())

    async def commit(self, key: str) -> None:
        assert self._pending is not None
        await asyncio.to_thread(self._pending.commit, key)
        self._pending = None

    async def abort(self) -> None:
        await self._overlap.settle()  # a write still running must end before the bytes go
        if self._pending is not None:
            pending, self._pending = self._pending, None
            await asyncio.to_thread(pending.abort)
