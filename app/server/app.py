"""The county sync service: a Starlette application over the county database, run by uvicorn.

The process holds the county database open (a file: with its exclusive lock) for its lifetime. Every
import and export runs on ONE thread of the process, so two uploads never merge at once here and a
fetch never sees half an import; the event loop only reads request bodies and answers. The fetch
challenges and rate limits live in the county database (app.store.service_state), reached through a
connection of their own on a second thread, so that every worker process of `serve --workers N` (a
county on PostgreSQL, app.server.workers; there the database's write lock orders the imports of all
workers) and a restarted service share them. Imports go through
`app.sync.exchange.import_bundles`, the code of USB imports: the uploads waiting for the database
thread are merged as one group in one transaction, each bundle in a savepoint (group commit: a
refused bundle, a dropped connection or a killed process keeps nothing of that bundle; a killed
process nothing of its group; a replayed bundle is reported as a duplicate), and each is answered
after the commit.

Order of checks for an upload (docs/serve.md, "Limits"): a slot for the client's address, the
declared size; then, while the body streams to an owner-only temporary file (app.server.receive),
the magic, framing lengths and signer key from the first 48 bytes, a total time limit and a minimum
rate; then on the worker, with the file memory-mapped: framing and Ed25519 signature against the
enrolled devices' keys (nothing is parsed or decrypted before), revocation and expiry, the per-site
rate limit, then the import. A body is never held whole in memory, and nothing decrypted is written.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import math
import os
import signal
import socket
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
import orjson
from starlette.responses import JSONResponse as _StarletteJSON
from starlette.responses import Response
from starlette.routing import Route

from app import __version__
from app.core import dictionary
from app.server import memory, protocol
from app.server.limits import MIB, Challenges, Limits, RateLimiter, Slots  # noqa: F401 - re-exported
from app.server.receive import (SMALL_UPLOAD, Body, MemorySpool, Refused, Spool, receive_bundle, spool_folder, sweep,
                                too_large)
from app.store import Store, StoreError, service_state
from app.sync import exchange, identity, wire
from app.sync import status as status_texts

log = logging.getLogger("app.server")

FETCH_REQUEST_LIMIT = 4096  # bytes of the JSON fetch request
BUSY_RETRY_SECONDS = 5
TRIM_INTERVAL = 1.0  # seconds between two hand-backs of freed memory
LOST_MESSAGE = "县同步服务与县级数据库的连接中断了,未导入任何内容:请稍后再试(程序会自动重试),或改用U盘同步"
CLEAN_INTERVAL = 60.0  # seconds between two clean-ups of expired challenges and full rate buckets


class JSONResponse(_StarletteJSON):
    """Starlette's JSON answer written by orjson (the same compact UTF-8 text, in a fraction of the time)."""

    def render(self, content) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)


def _error(status: int, code: str, message: str, headers: dict | None = None, **extra) -> JSONResponse:
    return JSONResponse({"ok": False, "error": code, "message": message, **extra}, status, headers=headers)


def _address(request: Request) -> str:
    return request.client.host if request.client else "?"


GROUP_BUNDLES = 32  # uploads merged in one transaction at most (group commit)
GROUP_BYTES = 8 * MIB  # and their size together (a larger upload is merged on its own)


class _Waiting:
    """An upload received and waiting for the database thread; `answer` or `error` once merged, and
    then `done` (a future of the event loop) is resolved."""

    __slots__ = ("spool", "name", "answer", "error", "loop", "done")

    def __init__(self, spool: Spool, name: str, loop: asyncio.AbstractEventLoop | None = None):
        self.spool, self.name, self.answer, self.error, self.loop = spool, name, None, None, loop
        self.done = loop.create_future() if loop is not None else None

    def finish(self) -> None:
        """On the event loop: wake the request waiting for this upload."""
        if not self.done.done():
            self.done.set_result(None)


def _finish_all(group: list[_Waiting]) -> None:
    """From the database thread: wake the requests waiting for a group's uploads, with ONE call into
    their event loop (a wake-up of the loop is a system call and a switch of threads: one per upload
    before, about a thirtieth of the service's processor time per upload)."""
    waiting = [item for item in group if item.done is not None]
    if waiting:
        with contextlib.suppress(RuntimeError):  # the event loop is gone (the service stopped): nobody waits
            waiting[0].loop.call_soon_threadsafe(lambda: [item.finish() for item in waiting])


def _log_failure(job: asyncio.Future) -> None:
    if not job.cancelled() and job.exception() is not None:
        log.error("合并上传时出错:%s", type(job.exception()).__name__)


class _Checked:
    """What the checks before the merge found: the verified bundle and certificate (None when the
    signature or signer did not pass: the import then says why) and the refusal status they imply."""

    __slots__ = ("verified", "cert", "status", "error")

    def __init__(self):
        self.verified, self.cert, self.status, self.error = None, None, 200, None


class Service:
    """State of one running service: the county store, its worker thread, limits, challenges."""

    def __init__(self, store: Store, limits: Limits | None = None, spool_dir: Path | None = None,
                 sweep_spool: bool = True):
        if store.role != "county":
            raise StoreError(f"同步服务只能在县级数据库上运行,{store.path} 是 {store.role} 数据库")
        self.store = store
        self.limits = limits or Limits()
        self.county = store.site_id
        self.county_key = identity.county_sign_public(store)
        self.fingerprint = identity.fingerprint(self.county_key)
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="jiandang-import")
        # challenges and rate limits live in the county database (shared by every worker process and
        # kept over a restart), reached through a connection of their own on a thread of their own:
        # a challenge is not queued behind the imports
        self.state = service_state.connect(store)
        self.state_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="jiandang-state")
        self.uploads = RateLimiter(self.state, "upload", self.limits.uploads_per_minute)
        self.fetches = RateLimiter(self.state, "fetch", self.limits.fetches_per_minute)
        self.challenge_rate = RateLimiter(self.state, "challenge", self.limits.challenges_per_minute)
        self.challenges = Challenges(self.state, protocol.CHALLENGE_SECONDS, self.limits.challenges_per_address,
                                     self.limits.max_challenges)
        self.cleaned = time.monotonic()
        self.slots = Slots(self.limits.uploads_per_address, self.limits.max_uploads)
        self.spool_dir = Path(spool_dir or spool_folder(store))
        if sweep_spool and sweep(self.spool_dir):  # a worker of several leaves this to the supervisor
            log.info("已清理上次停止时留下的临时上传文件")
        # enrolled devices' signing keys, to refuse a foreign key from an upload's first bytes; the
        # worker checks the certificate itself again (a device enrolled meanwhile is looked up there)
        self.signers = {bytes(raw) for (raw,) in store.conn.execute("SELECT sign_public FROM certificates")}
        identity.check_certificates(store)  # each device's certificate checked once now, not at its first upload
        # the form definitions (forms/*.toml) are read here, once, rather than by the first merge while it
        # holds the county's write lock (10-40 ms of each new worker's first group, issue 23's seventh pass)
        dictionary.default()
        self.queued = 0
        self.waiting: collections.deque[_Waiting] = collections.deque()  # uploads received, not yet merged
        self.merge_queued = False  # a merge job is queued on the database thread and has not yet taken its group
        self.trimmed = 0.0
        self.stopping = False  # set when the server begins to stop: bodies still arriving are given up
        self.lost = False  # the connection to a county on PostgreSQL broke: the service stops (connection_lost)

    async def shared(self, fn, *args):
        """Run fn (challenges, rate limits: statements on the database) on the state thread. Now and
        then expired challenges and full buckets are dropped there too."""
        loop = asyncio.get_running_loop()
        if time.monotonic() - self.cleaned > CLEAN_INTERVAL:
            self.cleaned = time.monotonic()
            loop.run_in_executor(self.state_executor, self._clean)
        return await loop.run_in_executor(self.state_executor, fn, *args)

    def connection_lost(self) -> bool:
        """Whether the connection to a county on PostgreSQL broke (the server restarted or went away).
        Then the service stops (`lost`): a worker of several is started again by its supervisor and
        connects anew; a single service exits with status 1 for its service manager to restart it."""
        if not self.lost:
            for conn in (self.store.conn, self.state.raw):
                raw = getattr(conn, "raw", None)  # a PostgreSQL connection (sqlite3's has none)
                if raw is not None and (raw.closed or raw.broken):
                    log.error("与县级数据库的连接中断了(PostgreSQL 服务器重启或不可达):县同步服务停止,以便重新连接")
                    self.lost = True
        return self.lost

    def _clean(self) -> None:
        try:
            self.challenges.expire()
            for limiter in (self.uploads, self.fetches, self.challenge_rate):
                limiter.forget_full()
        except Exception as exc:  # noqa: BLE001 - tidying up only: the next round tries again
            log.warning("清理过期的取件请求码时出错:%s", type(exc).__name__)

    async def serial(self, fn, *args):
        """Run fn on the single database thread (imports never overlap). When the queue empties, the
        memory freed by the burst is handed back to the system (app.server.memory)."""
        self.queued += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)
        finally:
            self.queued -= 1
            self._trim_when_idle()

    def _trim_when_idle(self) -> None:
        """Once nothing is queued or arriving, hand the memory freed by the burst back (app.server.memory)."""
        if self.queued == 0 and self.slots.count == 0 and time.monotonic() - self.trimmed > TRIM_INTERVAL:
            self.trimmed = time.monotonic()
            asyncio.get_running_loop().run_in_executor(self.executor, memory.trim)

    def _give_back(self, address: str) -> None:
        self.slots.give_back(address)
        self._trim_when_idle()

    def close(self) -> None:
        self.executor.shutdown(wait=True)
        self.state_executor.shutdown(wait=True)
        self.state.close()

    # ------------------------------------------------------------------ endpoints

    async def health(self, request: Request) -> JSONResponse:
        return JSONResponse({"ok": True, "service": protocol.SERVICE, "version": __version__, "county": self.county,
                             "county_name": self.store.site_name, "fingerprint": self.fingerprint,
                             "max_upload": self.limits.max_upload, "queue": self.queued})

    def _busy(self, which: str, address: str) -> JSONResponse:
        headers = {"Retry-After": str(BUSY_RETRY_SECONDS), "Connection": "close"}
        if which == "address":
            log.warning("来自 %s 的同时请求超过 %d 个,已拒绝", address, self.limits.uploads_per_address)
            return _error(429, "busy", f"这台电脑(地址 {address})同时进行的上传过多(上限 {self.limits.uploads_per_address} 个):"
                                       "请稍后再试(程序会自动重试)", headers)
        log.warning("同时进行的上传已达上限 %d 个,来自 %s 的请求已拒绝", self.limits.max_uploads, address)
        return _error(503, "busy", f"县同步服务正忙(同时进行的上传已达上限 {self.limits.max_uploads} 个):"
                                   "请稍后再试(程序会自动重试)", headers)

    async def _refuse(self, refusal: Refused, body: Body, name: str, address: str,
                      declared: int | None) -> JSONResponse:
        """The answer to a refused request, after the rest of its body is drained (bounded) so that
        a client still sending hears it rather than a reset. The connection is closed afterwards."""
        if refusal.drain and (declared is None or declared - body.received <= self.limits.drain_bytes):
            await body.drain()
        log.warning("来自 %s 的 %s 被拒绝:%s", address, name, refusal.message)
        headers = {"Connection": "close"}
        if refusal.report:
            report = exchange.Report(name, "refused", refusal.message)
            return JSONResponse(self._answer(report, refusal.code), refusal.status, headers=headers)
        return _error(refusal.status, refusal.code, refusal.message, headers)

    async def _check_signer(self, raw: bytes) -> None:
        """From an upload's first bytes: the county's own key (a downstream bundle or enrollment
        package sent back) and keys of no enrolled device are refused before the rest is read."""
        if raw == self.county_key:
            raise Refused(422, "wrong_kind", exchange.COUNTY_OWN_BUNDLE, drain=True, report=True)
        if raw in self.signers:
            return
        if await self.serial(identity.certificate_by_key, self.store, raw) is None:
            raise Refused(403, "unknown_site", wire.UNKNOWN_SIGNER, drain=True, report=True)
        self.signers.add(raw)

    def _spool_for(self, total: int) -> "Spool | MemorySpool":
        """Where an upload of `total` bytes waits for its merge: in memory when small, else a file."""
        return MemorySpool() if total <= SMALL_UPLOAD else Spool(self.spool_dir)

    async def upload(self, request: Request) -> Response:
        name = protocol.safe_name(request.headers.get(protocol.NAME_HEADER))
        address = _address(request)
        declared = request.headers.get("content-length")
        if declared is not None and not declared.isdigit():
            return _error(400, "bad_request", "请求的 Content-Length 不对:请用“立即同步”或 jiandang sync now 上传",
                          {"Connection": "close"})
        declared = int(declared) if declared is not None else None
        full = self.slots.take(address)
        if full:
            return self._busy(full, address)
        body = Body(request.receive, self.limits, self.limits.max_upload, stopping=lambda: self.stopping)
        try:
            if declared is not None and declared > self.limits.max_upload:
                raise too_large(self.limits)
            spool = await receive_bundle(body, declared, self._check_signer, self._spool_for)
            # the worker removes the file once the import is done (also when this request is given up)
            status, content, headers = await self._merged(spool, name)
            return JSONResponse(content, status, headers=headers)
        except Refused as refusal:
            return await self._refuse(refusal, body, name, address, declared)
        except ClientDisconnect:
            log.warning("上传 %s 时对方(%s)断开了连接,只收到部分数据:未导入任何内容", name, address)
            return Response(status_code=400)  # nobody is listening any more
        except OSError as exc:  # the temporary file: disk full, folder not writable
            log.error("无法保存上传的 %s 到临时文件(%s):%s", name, self.spool_dir, exc.strerror or exc)
            return _error(503, "server_error", "县同步服务暂时无法保存上传(县里电脑的磁盘已满或文件夹不可写),"
                                               "未导入任何内容:请稍后再试,或改用U盘同步", {"Connection": "close"})
        finally:
            self._give_back(address)

    async def _merged(self, spool: Spool, name: str) -> tuple[int, dict, dict]:
        """The upload merged (or refused) and committed: queued for the database thread, which takes
        every upload waiting at that moment as one group (`_merge_waiting`). The answer comes only
        after the transaction holding the merge has committed."""
        loop = asyncio.get_running_loop()
        item = _Waiting(spool, name, loop)
        self.waiting.append(item)
        # a job on the database thread unless one is already queued and has not yet taken its group
        # (it will take this upload too: `_merge_waiting` clears the flag before it takes). The
        # answer is awaited, not the job (an upload merged early must not wait for a later group).
        if not self.merge_queued:
            self._schedule_merge()
        await item.done
        if item.error is not None:
            raise item.error
        return item.answer

    def _schedule_merge(self) -> None:
        """On the event loop: queue a job that merges the uploads waiting when it runs."""
        self.merge_queued = True
        job = asyncio.ensure_future(self.serial(self._merge_waiting))
        job.add_done_callback(_log_failure)

    def _merge_waiting(self) -> None:
        """On the database thread: the uploads waiting now (at most GROUP_BUNDLES, GROUP_BYTES), checked
        one by one (signature, certificate, rate limit: `_check`), then merged in ONE transaction, each
        bundle in a savepoint of its own (app.sync.exchange.import_bundles): one write lock and one
        commit for the group; a refused bundle rolls back its own part only. The uploaded files are
        removed afterwards in every case."""
        self.merge_queued = False  # before taking: an upload added from now on queues a job of its own
        group, size = [], 0
        while self.waiting and len(group) < GROUP_BUNDLES and (not group or size + self.waiting[0].spool.size <= GROUP_BYTES):
            item = self.waiting.popleft()
            group.append(item)
            size += item.spool.size
        if not group:
            return
        if self.waiting and not self.merge_queued and group[0].loop is not None:
            self.merge_queued = True  # more than a group's worth was waiting: the rest in the next job
            with contextlib.suppress(RuntimeError):  # the event loop is gone (the service stopped)
                group[0].loop.call_soon_threadsafe(self._schedule_merge)
        try:
            with contextlib.ExitStack() as mapped:
                self._check_and_merge(group, mapped)  # holds no view of a map once it returns
        finally:
            for item in group:
                item.spool.remove()
                if item.answer is None and item.error is None:
                    item.error = RuntimeError("upload left unanswered")
            _finish_all(group)

    def _check_and_merge(self, group: list, mapped: contextlib.ExitStack) -> None:
        merging, opened = [], []
        for item in group:
            try:
                opened.append((item, mapped.enter_context(item.spool.mapped())))
            except Exception as exc:  # noqa: BLE001 - answered as the request's own error (500)
                item.error = exc
        try:  # the signers' certificates of the whole group in one statement (a round trip on PostgreSQL)
            known = identity.certificates_by_keys(self.store, (bytes(data[len(wire.MAGIC): len(wire.MAGIC) + 32])
                                                               for _, data in opened if len(data) >= wire.PREFIX))
        except Exception as exc:  # noqa: BLE001 - as a failed check of each upload (500)
            for item, _ in opened:
                item.error = exc
            return
        for item, data in opened:
            try:
                checked = self._check(data, item.name, known)
            except Exception as exc:  # noqa: BLE001 - answered as the request's own error (500)
                item.error = exc
                continue
            if isinstance(checked, tuple):
                item.answer = checked  # refused before the merge (rate limit)
            else:
                merging.append((item, data, checked))
        if merging:
            self._merge_group(merging)

    def _check(self, data, name: str, known: dict):
        """Before the merge: the bundle's signature against the enrolled devices' keys (`known`: the
        certificates of the group's signers, read together), revocation, expiry, the site's rate limit.
        An answer (status, content, headers) when refused here, else what the merge needs (`_Checked`)."""
        looked_up: dict = {}

        def lookup(raw: bytes):
            looked_up["found"] = known.get(bytes(raw))
            return looked_up["found"]

        checked = _Checked()
        try:
            checked.verified = wire.verify(data, lookup)
            checked.cert = checked.verified[1][0]
        except wire.BundleError:  # the import says why, in its report
            checked.status, checked.error = (403, "unknown_site") if looked_up.get("found", 0) is None else (422, "bad_bundle")
        cert = checked.cert
        if cert is not None:
            revoked = checked.verified[1][1]
            if revoked:
                checked.status, checked.error = 403, "revoked"
            elif cert.expired():
                checked.status, checked.error = 403, "expired"
            wait = self.uploads.take(cert.site_id)
            if wait:
                seconds = math.ceil(wait)
                log.warning("站点 %s 上传过于频繁,%s 被拒绝(%d 秒后可再试)", cert.site_id, name, seconds)
                report = exchange.Report(name, "refused", f"站点 {cert.site_id} 上传过于频繁:请 {seconds} 秒后再试"
                                                          "(程序会自动重试),此包未导入")
                return 429, self._answer(report, "rate_limited"), {"Retry-After": str(seconds)}
        return checked

    def _merge_group(self, merging: list) -> None:
        reports = exchange.import_bundles(self.store, [(data, item.name, checked.verified)
                                                       for item, data, checked in merging])
        lost = self.connection_lost()
        for (item, _, checked), report in zip(merging, reports):
            checked.verified = None  # it holds views of the mapped file
            if lost:  # nothing was imported: the laptop is told to try again later
                item.answer = (503, {"ok": False, "error": "server_error", "message": LOST_MESSAGE},
                               {"Retry-After": str(BUSY_RETRY_SECONDS)})
            else:
                item.answer = self._answer_for(report, checked)

    def _answer_for(self, report: exchange.Report, checked: "_Checked") -> tuple[int, dict, dict]:
        status, error, cert = checked.status, checked.error, checked.cert
        if not report.refused:
            status, error = 200, None
        elif error is None:
            status, error = 422, "refused"
        line = report.line(self._sender_label(report, cert))
        log.info("%s", line.splitlines()[0])
        if cert is not None and report.household_labels:
            report.household_labels = self._labels_for(cert, report.household_labels)
            line = report.line(self._sender_label(report, cert))
        return status, self._answer(report, error, line), {}

    def _sender_label(self, report: exchange.Report, cert) -> str:
        """The sender as `status.site_label` names it; from the certificate the upload was checked
        against when it is the sender's (no query of every certificate per upload)."""
        if not report.sender:
            return ""
        if cert is not None and cert.site_id == report.sender:
            return f"{cert.body['site_name']}({report.sender})"
        return status_texts.site_label(self.store, report.sender)

    def _labels_for(self, cert, labels: dict) -> dict:
        """Household names the uploading device may see: those of its own villages; a household
        elsewhere (the other holder of a duplicate ID number) is not named to it."""
        out = {}
        for household_id, label in labels.items():
            record = self.store.get(household_id)
            out[household_id] = label if record is not None and cert.covers(record.village_code) else "另一村的一户(请联系县扶贫办核实)"
        return out

    @staticmethod
    def _answer(report: exchange.Report, error: str | None, line: str | None = None) -> dict:
        return {"ok": not report.refused, "error": error, "message": report.message,
                "report": protocol.report_to_dict(report), "line": line or report.line()}

    def _new_challenge(self, address: str) -> tuple[float, str | None]:
        wait = self.challenge_rate.take(address)
        return (wait, None) if wait else (0.0, self.challenges.new(address))

    async def challenge(self, request: Request) -> JSONResponse:
        address = _address(request)
        wait, value = await self.shared(self._new_challenge, address)
        if wait:
            seconds = math.ceil(wait)
            return _error(429, "rate_limited", f"这台电脑(地址 {address})索取取件请求码过于频繁:请 {seconds} 秒后再试",
                          {"Retry-After": str(seconds)})
        if value is None:
            log.warning("未用的取件请求码已达上限 %d 个,来自 %s 的请求已拒绝", self.limits.max_challenges, address)
            return _error(503, "busy", "县同步服务正忙(未用的取件请求码过多):请稍后再试(程序会自动重试)",
                          {"Retry-After": str(BUSY_RETRY_SECONDS)})
        return JSONResponse({"challenge": value, "expires_in": protocol.CHALLENGE_SECONDS})

    async def downstream(self, request: Request) -> Response:
        address = _address(request)
        full = self.slots.take(address)
        if full:
            return self._busy(full, address)
        body = Body(request.receive, self.limits, FETCH_REQUEST_LIMIT, stopping=lambda: self.stopping)
        try:
            raw = await body.read()
        except Refused as refusal:
            if refusal.code == "too_large":
                refusal.message = "取件请求过大:请用“立即同步”或 jiandang sync now"
            return await self._refuse(refusal, body, "取件请求", address, None)
        except ClientDisconnect:
            return Response(status_code=400)
        finally:
            self._give_back(address)
        try:
            request_data = json.loads(raw)
            site, challenge, signature = (str(request_data[k]) for k in ("site", "challenge", "signature"))
            part = _part(request_data)
        except (ValueError, KeyError, TypeError, RecursionError):
            return _error(400, "bad_request", "取件请求格式不对(应为含 site、challenge、signature 的 JSON):"
                                              "请用“立即同步”或 jiandang sync now")
        if not await self.shared(self.challenges.take, challenge, address):
            return _error(401, "challenge", "取件请求码已过期或已用过:请重试(程序会自动取新的请求码)")
        status, content, headers = await self.serial(self._downstream, site, challenge, signature, part)
        if status != 200:
            return JSONResponse(content, status, headers=headers)
        return Response(content, 200, headers=headers, media_type="application/octet-stream")

    def _downstream(self, site: str, challenge: str, signature: str, part: tuple = (None, None)):
        """On the worker thread: check the device's signature over the challenge (and the part asked
        for), then export the first bundle of an export or, with `part` (after, part_of), the next one."""
        def refuse(status, code, message, headers=None):
            log.warning("站点 %s 取件被拒绝:%s", protocol.safe_name(site, "?"), code)
            return status, {"ok": False, "error": code, "message": message}, headers or {}

        found = identity.certificate_of(self.store, site)
        if found is None:
            return refuse(403, "unknown_site", f"站点 {site} 未在本县登记:此电脑不能从县同步服务取数据。请联系县扶贫办")
        cert, revoked = found
        try:
            Ed25519PublicKey.from_public_bytes(cert.sign_public).verify(
                bytes.fromhex(signature), protocol.fetch_message(self.county, site, challenge, *part))
        except (InvalidSignature, ValueError):
            return refuse(403, "bad_signature", f"取件请求的签名与站点 {site} 登记的密钥不符:已拒绝。"
                                                "此电脑的数据库可能不是登记时的那一个,请联系县扶贫办")
        if revoked:
            return refuse(403, "revoked", f"站点 {site}({cert.body['site_name']})的证书已于 {revoked} 吊销,"
                                          "县里不再向它发送数据。请联系县扶贫办")
        if cert.expired():
            return refuse(403, "expired", f"站点 {site}({cert.body['site_name']})的证书已于 {cert.body['not_after']} "
                                          "过期,请到县扶贫办为该电脑重新登记")
        wait = self.fetches.take(site)
        if wait:
            seconds = math.ceil(wait)
            return refuse(429, "rate_limited", f"站点 {site} 取件过于频繁:请 {seconds} 秒后再试",
                          {"Retry-After": str(seconds)})
        after, part_of = part
        name, data = exchange.export_downstream(self.store, site, budget=self.limits.attachment_budget,
                                                after=after, part_of=part_of)
        log.info("站点 %s 取走县级包 %s(%d 字节)", site, name, len(data))
        return 200, data, {protocol.NAME_HEADER: name}


def _part(request_data: dict) -> tuple:
    """(after, part_of) of a downstream request that asks for the next part of an export, else (None, None)."""
    if request_data.get("after") is None:
        return None, None
    after, part_of = request_data["after"], request_data.get("part_of") or 0
    if type(after) is not int or type(part_of) is not int or after < 0 or part_of < 0:
        raise ValueError("after")
    return after, part_of or None


async def _not_found(request: Request, exc: HTTPException) -> JSONResponse:
    if exc.status_code == 405:
        return _error(405, "method", f"{request.url.path} 不接受 {request.method} 请求(见 docs/serve.md)")
    return _error(exc.status_code, "not_found", f"县同步服务没有地址 {request.url.path}(见 docs/serve.md)")


async def _server_error(request: Request, exc: Exception) -> JSONResponse:
    if request.app.state.service.connection_lost():
        return _error(503, "server_error", LOST_MESSAGE, {"Retry-After": str(BUSY_RETRY_SECONDS)})
    log.error("处理 %s 时出错:%s", request.url.path, type(exc).__name__)
    return _error(500, "server_error", "县同步服务内部错误,未导入任何内容:请稍后再试,或改用U盘同步;"
                                       "如反复出现,请县里查看服务日志")


def create_app(store: Store, limits: Limits | None = None, *, spool_dir: Path | None = None,
               sweep_spool: bool = True) -> Starlette:
    """The ASGI application over an open, unlocked county store."""
    service = Service(store, limits, spool_dir, sweep_spool)

    @asynccontextmanager
    async def lifespan(app):
        yield
        service.close()

    app = Starlette(
        routes=[
            Route(protocol.HEALTH, service.health, methods=["GET"]),
            Route(protocol.BUNDLES, service.upload, methods=["POST"]),
            Route(protocol.CHALLENGE, service.challenge, methods=["GET"]),
            Route(protocol.DOWNSTREAM, service.downstream, methods=["POST"]),
        ],
        exception_handlers={404: _not_found, 405: _not_found, 500: _server_error},
        lifespan=lifespan,
    )
    app.state.service = service
    return app


# ---------------------------------------------------------------------- running it


def bind(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """The listening socket (port 0 = any free port). Raises OSError when it is taken. `reuse_port`:
    SO_REUSEPORT, so that worker processes may each listen on the port with a socket of their own
    (app.server.workers.listeners; the caller checks `workers.SPREAD` first). A port is still one
    service's: it is first bound without SO_REUSEPORT, which fails while any other service listens on
    it (with or without), so a second service on the same port is refused as before instead of
    sharing the first one's connections."""
    if reuse_port and port:
        bind(host, port).close()  # the port is free (a service listening there makes this fail)
    # IPPROTO_TCP named explicitly: asyncio sets TCP_NODELAY only on sockets that say so, and without it an
    # answer's body waits for the client's delayed ACK of its headers (about 40 ms on every request)
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    if os.name != "nt":  # on Windows SO_REUSEADDR would let two programs share the port
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def _http_base():
    """uvicorn's HTTP protocol on httptools (its C parser: about a fifth of the event loop's processor
    time per upload less than h11 in pure Python, docs/serve.md "Figures"), or on h11 where httptools
    is not installed."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol  # noqa: PLC0415

        return HttpToolsProtocol
    except ImportError:
        from uvicorn.protocols.http.h11_impl import H11Protocol  # noqa: PLC0415

        return H11Protocol


def _event_loop() -> str:
    """uvloop where it exists (Linux, macOS: it is not made for Windows), else asyncio's own loop."""
    try:
        import uvloop  # noqa: F401, PLC0415
    except ImportError:
        return "asyncio"
    return "uvloop"


def _protocol(header_seconds: float):
    """uvicorn's HTTP protocol (`_http_base`), closing a connection that has not sent a complete
    request's headers within `header_seconds` of connecting or of the previous answer (uvicorn
    itself waits for ever: a client trickling its headers would hold the connection)."""
    class Protocol(_http_base()):
        _header_timer = None

        def _arm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
            cycle = self.cycle
            self._header_timer = self.loop.call_later(header_seconds, self._headers_late, cycle)

        def _headers_late(self, cycle) -> None:
            self._header_timer = None
            if self.cycle is cycle and (cycle is None or cycle.response_complete) and not self.transport.is_closing():
                self.transport.close()  # no new request began since the timer was set

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self._arm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm()

        def connection_lost(self, exc) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None
            super().connection_lost(exc)

    return Protocol


# Signals that stop `serve` gracefully. On Windows SIGTERM cannot be caught (another process's
# "terminate" is TerminateProcess, a hard kill): Ctrl+C, Ctrl+Break (CTRL_BREAK_EVENT sent to the
# service's process group) or the stop file (`jiandang serve DB --stop`) stop it cleanly there.
STOP_SIGNALS = (signal.SIGINT, signal.SIGBREAK) if sys.platform == "win32" else (signal.SIGINT, signal.SIGTERM)


class SyncServer:
    """uvicorn serving `create_app(store)` on host:port, with TLS when a certificate is given.
    `run()` blocks (the `serve` command); `start()`/`stop()` run it on a thread (tests, bench)."""

    def __init__(self, store: Store, host: str = "127.0.0.1", port: int = protocol.DEFAULT_PORT, *,
                 tls_cert=None, tls_key=None, limits: Limits | None = None, access_log: bool = True,
                 sock: socket.socket | None = None, spool_dir: Path | None = None, sweep_spool: bool = True):
        """`sock`: a listening socket (or a list of them, the first naming the port) to serve on instead
        of binding host:port (a worker process of several, app.server.workers.listeners); `spool_dir`,
        `sweep_spool`: see `Service`."""
        import uvicorn  # noqa: PLC0415 - only the service needs the server

        self.app = create_app(store, limits, spool_dir=spool_dir, sweep_spool=sweep_spool)
        self.config = uvicorn.Config(
            self.app, host=host, port=port, ssl_certfile=str(tls_cert) if tls_cert else None,
            ssl_keyfile=str(tls_key) if tls_key else None, loop=_event_loop(),
            http=_protocol((limits or Limits()).header_seconds), ws="none", lifespan="on",
            log_config=None, access_log=access_log, server_header=False, timeout_keep_alive=5,
            timeout_graceful_shutdown=None,
            proxy_headers=False)  # the client's address is the socket's: per-address limits must not trust a header
        self.config.load()  # a bad certificate or key fails here, before the port is taken
        self.socks = list(sock) if isinstance(sock, (list, tuple)) else [sock if sock is not None else bind(host, port)]
        self.sock = self.socks[0]
        self.host, self.port = host, self.sock.getsockname()[1]
        self.tls = bool(tls_cert)
        self.ready = threading.Event()
        outer = self

        class _Server(uvicorn.Server):
            @contextlib.contextmanager
            def capture_signals(self):
                """The stop signals (`STOP_SIGNALS`) stop the service gracefully (in-flight imports finish)
                and `run` returns, so the database is closed and the process exits 0 (uvicorn would
                re-raise the signal afterwards and skip the caller's clean-up)."""
                if threading.current_thread() is not threading.main_thread():
                    yield
                    return
                original = {sig: signal.signal(sig, self.handle_exit) for sig in STOP_SIGNALS}
                try:
                    yield
                finally:
                    for sig, handler in original.items():
                        signal.signal(sig, handler)

            async def on_tick(self, counter: int) -> bool:
                if counter % 5 == 0 and outer.stop_file is not None and outer.stop_file.exists():
                    log.info("收到停止请求(停止文件)")
                    with contextlib.suppress(OSError):
                        outer.stop_file.unlink()
                    self.should_exit = True
                if counter % 5 == 0 and outer.stop_when is not None and outer.stop_when():
                    self.should_exit = True  # a worker of several: the supervisor stops
                if outer.app.state.service.lost:
                    self.should_exit = True  # reconnecting is starting again (`Service.connection_lost`)
                return await super().on_tick(counter)

            async def startup(self, sockets=None):
                await super().startup(sockets=sockets)
                if not self.should_exit:
                    outer.ready.set()
                    if outer.on_ready:
                        outer.on_ready()

            async def shutdown(self, sockets=None):
                outer.app.state.service.stopping = True  # uploads still arriving end within a second
                if outer.on_stopping:
                    outer.on_stopping()
                await super().shutdown(sockets=sockets)

        self.server = _Server(self.config)
        self.on_ready = self.on_stopping = None
        self.stop_file: Path | None = None  # `run(stop_file=)`: its appearance stops the service
        self.stop_when = None  # `run(stop_when=)`: a check, twice a second, that stops the service when true
        self._thread: threading.Thread | None = None

    @property
    def lost(self) -> bool:
        """The service stopped because its connection to a county on PostgreSQL broke."""
        return self.app.state.service.lost

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}"

    def run(self, on_ready=None, on_stopping=None, stop_file=None, stop_when=None) -> None:
        """Serve until a stop signal (Ctrl+C; SIGTERM on POSIX; Ctrl+Break on Windows), until `stop_file`
        appears (checked twice a second; removed when seen), or `stop`. `on_ready()` is called once
        connections are accepted, `on_stopping()` when shutting down begins (before in-flight requests
        are waited for)."""
        self.on_ready, self.on_stopping = on_ready, on_stopping
        self.stop_when = stop_when
        self.stop_file = Path(stop_file) if stop_file else None
        if self.stop_file is not None:
            with contextlib.suppress(FileNotFoundError):
                self.stop_file.unlink()  # a request left over from an earlier run
        try:
            self.server.run(sockets=self.socks)
        finally:
            for sock in self.socks:
                sock.close()

    def start(self, timeout: float = 20) -> "SyncServer":
        self._thread = threading.Thread(target=self.run, name="jiandang-serve", daemon=True)
        self._thread.start()
        if not self.ready.wait(timeout):
            raise RuntimeError("同步服务没有启动")
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        if self._thread:
            self._thread.join(30)
