"""Reading request bodies under the service's limits, and spooling uploads to a temporary file.

`Body` reads the ASGI messages of one request: a total time limit from the first byte to the last,
a minimum rate in every `rate_window` (so a client trickling a byte every few seconds is dropped
after one window; a stall timer that restarts with every byte would keep it forever), and a size
cap. `Spool` is the temporary file an upload goes to: created owner-only beside the county
database, holding the bundle exactly as the laptop sent it (signed and encrypted: nothing decrypted
is ever written), and removed in every path; an upload of at most SMALL_UPLOAD bytes stays in memory
instead (`MemorySpool`). `receive_bundle` checks the frame from the first 48
bytes (magic, framing lengths, signer key) before the rest is read, so junk is refused at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import mmap
import os
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from starlette.requests import ClientDisconnect

from app.server.limits import KIB, MIB, Limits
from app.sync import wire

log = logging.getLogger("app.server")

SPOOL_PREFIX = ".jiandang-upload-"
SPOOL_SUFFIX = ".part"
DRAIN_IDLE_SECONDS = 1.0


class Refused(Exception):
    """The request is answered with this error (after the rest of the body is drained when `drain`)."""

    def __init__(self, status: int, code: str, message: str, *, drain: bool = False, report: bool = False):
        super().__init__(message)
        self.status, self.code, self.message, self.drain, self.report = status, code, message, drain, report


def too_large(limits: Limits, what: str = "同步包") -> Refused:
    mb = limits.max_upload / MIB
    return Refused(413, "too_large", f"{what}过大(上限 {mb:g} MB):请改用U盘同步,或请县里调大服务的上传上限"
                                     "(jiandang serve --max-upload-mb)", drain=True)


class Body:
    """The body of one request, read under `limits` (no more than `cap` bytes)."""

    def __init__(self, receive: Callable[[], Awaitable[dict]], limits: Limits, cap: int, *, clock=time.monotonic,
                 stopping: Callable[[], bool] = lambda: False):
        self.receive, self.limits, self.cap, self.clock = receive, limits, cap, clock
        self.stopping = stopping  # the service is stopping: give up at once (a slow client must not hold the stop)
        self.started = clock()
        self.deadline = self.started + limits.upload_seconds
        self.window_end = self.started + limits.rate_window
        self.window_bytes = 0
        self.received = 0
        self.done = False

    async def chunk(self) -> bytes | None:
        """The next piece of the body, None at its end. Raises Refused (408/413) or ClientDisconnect."""
        while not self.done:
            now = self.clock()
            if self.stopping():
                raise Refused(503, "busy", "县同步服务正在停止,未导入任何内容:请稍后再试(程序会自动重试),或改用U盘同步")
            if now >= self.deadline:
                raise Refused(408, "timeout", f"上传超时(超过 {self.limits.upload_seconds:g} 秒仍未传完),未导入任何内容:"
                                              "网络太慢时请改用U盘同步,或请县里调大 jiandang serve --upload-timeout")
            if now >= self.window_end:
                need = self.limits.min_rate * self.limits.rate_window
                if self.window_bytes < need:
                    raise Refused(408, "timeout", f"上传太慢(最近 {self.limits.rate_window:g} 秒只收到 {self.window_bytes} 字节,"
                                                  f"至少应有 {need / KIB:g} KB),已断开,未导入任何内容:请检查网络后重试,"
                                                  "或改用U盘同步")
                self.window_bytes = 0
                self.window_end = now + self.limits.rate_window
            try:
                message = await asyncio.wait_for(self.receive(), min(self.deadline, self.window_end, now + 1) - now)
            except asyncio.TimeoutError:
                continue  # the checks above decide
            if message["type"] == "http.disconnect":
                raise ClientDisconnect
            data = message.get("body", b"")
            self.done = not message.get("more_body", False)
            self.received += len(data)
            self.window_bytes += len(data)
            if self.received > self.cap:
                raise too_large(self.limits)
            if data:
                return data
        return None

    async def read(self) -> bytes:
        """The whole (small) body: for the fetch request, a few hundred bytes."""
        parts = []
        while (data := await self.chunk()) is not None:
            parts.append(data)
        return b"".join(parts)

    async def drain(self) -> bool:
        """Read and discard the rest of a refused body, for at most `linger_seconds` and
        `drain_bytes`, so that a client still sending hears the answer instead of a reset. A client
        that sends nothing for a second is taken to be waiting for the answer. True when the whole
        body was read."""
        end = min(self.deadline, self.clock() + self.limits.linger_seconds)
        limit = self.received + self.limits.drain_bytes
        while not self.done:
            now = self.clock()
            if now >= end or self.stopping():
                return False
            try:
                message = await asyncio.wait_for(self.receive(), min(end - now, DRAIN_IDLE_SECONDS))
            except asyncio.TimeoutError:
                return False
            if message["type"] == "http.disconnect":
                return False
            self.received += len(message.get("body", b""))
            self.done = not message.get("more_body", False)
            if self.received > limit:
                return False
        return True


class Spool:
    """An owner-only temporary file for one upload, beside the county database. `remove()` deletes
    it; the handler and the import worker both call it, the file goes away on the first call."""

    def __init__(self, folder: Path):
        self.fd, name = tempfile.mkstemp(prefix=SPOOL_PREFIX, suffix=SPOOL_SUFFIX, dir=folder)  # mode 0600
        self.path = Path(name)
        self.size = 0

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self.fd, view)
            view = view[written:]
        self.size += len(data)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def remove(self) -> None:
        self.close()
        with contextlib.suppress(FileNotFoundError):
            try:
                self.path.unlink()
            except PermissionError:  # Windows: still mapped by a view that outlived its import; swept at the next start
                log.warning("无法删除临时上传文件 %s(仍在使用),下次启动时清理", self.path.name)

    @contextlib.contextmanager
    def mapped(self):
        """The file as a read-only buffer (a memory map: the bundle is not copied into the heap)."""
        self.close()
        with open(self.path, "rb") as fh:
            mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
            view = memoryview(mm)
            try:
                yield view
            finally:
                view.release()
                try:
                    mm.close()
                except BufferError:  # a slice of the view is still referenced somewhere: let the collector close it
                    import gc  # noqa: PLC0415

                    gc.collect()
                    with contextlib.suppress(BufferError):
                        mm.close()


class MemorySpool:
    """A small upload (at most SMALL_UPLOAD bytes: a day's bundle is 2-40 KB) kept in memory instead
    of a file: no file to create, write, map and remove per upload (about 0.1 ms of the service's
    processor time each). It holds the bundle as sent (signed and encrypted) like `Spool`, and what
    all of them hold together is bounded by `--max-uploads` x SMALL_UPLOAD."""

    path = None

    def __init__(self):
        self.parts: list[bytes] = []
        self.size = 0
        self.data = b""

    def write(self, data: bytes) -> None:
        self.parts.append(bytes(data))
        self.size += len(data)

    def close(self) -> None:
        if self.parts:
            self.data = self.parts[0] if len(self.parts) == 1 else b"".join(self.parts)
            self.parts = []

    def remove(self) -> None:
        self.parts, self.data = [], b""

    @contextlib.contextmanager
    def mapped(self):
        self.close()
        yield memoryview(self.data)


SMALL_UPLOAD = 256 * KIB  # uploads up to this size stay in memory (MemorySpool); larger ones go to a file


def spool_folder(store) -> Path:
    """Where a service spools its uploads: beside a county database file; for a county on a
    PostgreSQL server (a URL, not a file), an owner-only folder per database in this computer's data
    folder (app.settings.data_dir: serve-spool/<database id>)."""
    if getattr(store.path, "url", None) is None:  # a file (a PostgreSQL location carries its URL)
        return Path(store.path).resolve().parent
    from app import settings  # noqa: PLC0415

    folder = settings.data_dir() / "serve-spool" / store.db_id
    folder.mkdir(parents=True, exist_ok=True)
    if os.name == "posix":
        folder.chmod(0o700)
    return folder


def sweep(folder: Path) -> int:
    """Remove upload files a killed service left behind; the number removed."""
    removed = 0
    for path in Path(folder).glob(f"{SPOOL_PREFIX}*{SPOOL_SUFFIX}"):
        with contextlib.suppress(OSError):
            path.unlink()
            removed += 1
    return removed


async def receive_bundle(body: Body, declared: int | None, check_signer: Callable[[bytes], Awaitable[None]],
                         make_spool: Callable[[int], "Spool | MemorySpool"]) -> "Spool | MemorySpool":
    """Stream an upload into a new spool file and return it (closed; the caller removes it). From the
    first bytes: the magic (junk is refused at its first wrong byte), the framing lengths (over the
    size limit: 413; not what Content-Length says: 422), then `check_signer(raw key)` (raises
    Refused for a key that is not an enrolled device's); only then is the file created. The body
    must end exactly where the framing says. On any refusal the file is already gone.
    `make_spool(total)` is given the bundle's size as its framing announces it."""
    head = bytearray()
    frame = spool = None
    try:
        while (data := await body.chunk()) is not None:
            if frame is None:
                head += data
                if head[: len(wire.MAGIC)] != wire.MAGIC[: len(head)]:
                    raise Refused(422, "bad_bundle", wire.NOT_A_BUNDLE, drain=True, report=True)
                if len(head) < wire.PREFIX:
                    continue
                try:
                    frame = wire.check_prefix(bytes(head[: wire.PREFIX]))
                except wire.BundleError as exc:
                    raise Refused(422, "bad_bundle", str(exc), drain=True, report=True) from None
                if frame.total > body.limits.max_upload:
                    raise too_large(body.limits)
                if declared is not None and declared != frame.total:
                    message = wire.TRUNCATED if declared < frame.total else wire.TOO_LONG
                    raise Refused(422, "bad_bundle", message, drain=True, report=True)
                await check_signer(frame.signer)
                data, head = bytes(head), None
                spool = make_spool(frame.total)
            if body.received > frame.total:
                raise Refused(422, "bad_bundle", wire.TOO_LONG, drain=True, report=True)
            spool.write(data)
        if frame is None:
            if head:
                raise Refused(422, "bad_bundle", wire.TRUNCATED if head == wire.MAGIC[: len(head)] else wire.NOT_A_BUNDLE,
                              report=True)
            raise Refused(400, "no_bundle", "请求中没有同步包:请求体应为一个 .jdb 同步包文件的内容。"
                                            "请用“立即同步”或 jiandang sync now 上传")
        if spool.size < frame.total:
            raise Refused(422, "bad_bundle", wire.TRUNCATED, report=True)
        spool.close()
        return spool
    except BaseException:
        if spool is not None:
            spool.remove()
        raise
