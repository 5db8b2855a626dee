"""`jiandang serve --workers N`: N worker processes serving one listening socket (a PostgreSQL county).

The supervisor (the `serve` process) binds the socket, then starts N processes with
multiprocessing's "spawn" start method, the one that exists on Windows as on Linux (as uvicorn does
for its own workers): each receives the socket (duplicated into it by multiprocessing: a shared
handle on Windows, a passed file descriptor elsewhere), opens its own connection to the county
database, unlocks it and runs the same service as a single process. The kernel hands each new
connection to one of them. The passphrase the supervisor was given (JIANDANG_PASSPHRASE or typed)
reaches the workers only through the pipe multiprocessing starts them with, never through a file or
a command line.

Stopping: the supervisor's stop (Ctrl+C, SIGTERM on POSIX, Ctrl+Break on Windows, or the stop file
of `jiandang serve DB --stop`) sets an event every worker checks twice a second; each finishes its
imports in progress and exits. A worker that dies (killed, or lost its connection to the database:
app.server.app `Service.connection_lost`) is started again and connects anew; the others serve on.
More than RESTARTS_PER_MINUTE restarts in a minute stop the service with an error (exit status 1,
for a service manager to start it again later).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import queue
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger("app.server")

START_SECONDS = 300.0  # every worker unlocks the database (Argon2id) before it serves
STOP_SECONDS = 120.0  # imports in progress finish; then a worker still running is ended
RESTARTS_PER_MINUTE = 5  # a worker dying more often than this stops the service (something is wrong)

# Linux spreads new connections evenly over several sockets listening on one port with SO_REUSEPORT
# (by a hash of the client's address and port). Elsewhere (Windows has no SO_REUSEPORT; macOS and
# the BSDs do not spread by it) the workers share the supervisor's one socket.
SPREAD = sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


def listeners(sock) -> list:
    """The sockets a worker listens on. With `SPREAD` (the supervisor bound `sock` with SO_REUSEPORT):
    a socket of the worker's own on the same address, and `sock` itself; the kernel hands each new
    connection to one of the listening sockets by a hash of the client's address and port, so about
    as many to each worker's own socket. On the shared one, as everywhere else, the worker whose
    event loop wakes first accepts every connection waiting at that moment (with only that socket,
    one worker took 36 % of a 200-upload burst's work among 4); it stays listening while workers
    restart, so a connection made when none is running waits for the next instead of being refused."""
    if not SPREAD or not sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT):
        return [sock]
    own = socket.socket(sock.family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        own.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        own.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        own.bind(sock.getsockname()[:2])
    except OSError:
        own.close()
        raise
    return [own, sock]


class WorkersFailed(Exception):
    """A worker could not start (its message says why, in Chinese)."""


def serve(count: int, sock, target: Callable, args: tuple, *, on_ready=None, on_stopping=None,
          stop_file: Path | None = None, stop_signals=(signal.SIGINT,)) -> None:
    """Run `count` processes of `target(index, sock, stop_event, messages, *args)` until a stop. The
    target puts ("ready", index) on `messages` once it accepts connections, or ("failed", index,
    message) when it cannot start; it returns when `stop_event` is set. Raises WorkersFailed when a
    worker cannot start, or workers keep dying (the others are stopped first)."""
    ctx = multiprocessing.get_context("spawn")
    stop = ctx.Event()
    messages = ctx.Queue()
    processes: dict[int, multiprocessing.process.BaseProcess] = {}
    stopping = threading.Event()

    def start(index: int) -> None:
        proc = ctx.Process(target=target, args=(index, sock, stop, messages, *args), name=f"jiandang-serve-{index}")
        proc.start()
        processes[index] = proc

    def ask_stop(*_args) -> None:
        stopping.set()

    failed = None
    if stop_file is not None:
        with contextlib.suppress(FileNotFoundError):
            stop_file.unlink()  # a request left over from an earlier run
    original = {}
    if threading.current_thread() is threading.main_thread():
        original = {sig: signal.signal(sig, ask_stop) for sig in stop_signals}
    try:
        for index in range(count):
            start(index)
        _wait_ready(count, processes, messages, stopping)
        if on_ready and not stopping.is_set():
            on_ready()
        restarts: list[float] = []
        while not stopping.wait(0.5):
            if stop_file is not None and stop_file.exists():
                log.info("收到停止请求(停止文件)")
                with contextlib.suppress(OSError):
                    stop_file.unlink()
                break
            _drain(messages)
            for index, proc in list(processes.items()):
                if proc.is_alive():
                    continue
                now = time.monotonic()
                restarts = [t for t in restarts if now - t < 60] + [now]
                if len(restarts) > RESTARTS_PER_MINUTE:
                    log.error("工作进程一分钟内退出了 %d 次,县同步服务停止:请查看日志", len(restarts))
                    failed = f"工作进程一分钟内退出了 {len(restarts)} 次(县级数据库连不上?):请查看日志"
                    stopping.set()
                    break
                log.warning("工作进程 %d 意外退出(代码 %s),已重新启动", index, proc.exitcode)
                start(index)
    finally:
        if on_stopping:
            on_stopping()
        stop.set()
        _end(processes)
        for sig, handler in original.items():
            signal.signal(sig, handler)
        messages.close()
    if failed:
        raise WorkersFailed(failed)


def _wait_ready(count: int, processes: dict, messages, stopping: threading.Event) -> None:
    ready: set[int] = set()
    deadline = time.monotonic() + START_SECONDS
    while len(ready) < count:
        if stopping.is_set():
            return
        try:
            message = messages.get(timeout=0.5)
        except queue.Empty:
            dead = [i for i, p in processes.items() if i not in ready and not p.is_alive()]
            if dead:
                raise WorkersFailed(f"工作进程 {dead[0]} 启动时退出了(代码 {processes[dead[0]].exitcode}):请查看日志") from None
            if time.monotonic() > deadline:
                raise WorkersFailed(f"工作进程没有在 {START_SECONDS:g} 秒内启动") from None
            continue
        if message[0] == "failed":
            raise WorkersFailed(message[2])
        ready.add(message[1])


def _drain(messages) -> None:
    """Read the ready messages of restarted workers (nothing waits for them)."""
    with contextlib.suppress(queue.Empty, OSError, ValueError):
        while True:
            messages.get_nowait()


def _end(processes: dict) -> None:
    deadline = time.monotonic() + STOP_SECONDS
    for proc in processes.values():
        proc.join(max(0.0, deadline - time.monotonic()))
    for index, proc in processes.items():
        if proc.is_alive():
            log.error("工作进程 %d 没有在 %g 秒内停止,已结束它", index, STOP_SECONDS)
            proc.kill()
            proc.join(10)
