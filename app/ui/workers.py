"""The one way to run long work off the GUI thread (in the manner of Anki's CollectionOp/QueryOp).

    op = workers.start(lambda progress: importer.run(store, plan, progress),
                       on_done, on_failed, on_progress)

- `fn(progress)` runs on the thread pool; `progress(done, total)` may be called from it freely.
- `on_progress(done, total)`, then exactly one of `on_done(result)` or `on_failed(message)`, run on
  the GUI thread. With `on_part`, the work is called as `fn(progress, part)`: each `part(obj)` hands
  a piece of the result to `on_part(obj)` on the GUI thread, in order, all before `on_done` (the
  household list shows its first rows while the rest are decrypted). Every exception ends in `on_failed` with a Chinese sentence (`error_text`): the
  program's own errors carry their message, anything else is logged and named as an internal error.
- Store change notifications are delivered on the GUI thread. A window subscribes with
  `workers.listen(store, callback)` (not `store.listeners`): changes committed on the GUI thread reach
  it at once; changes committed by a worker are held and handed over on the GUI thread when the work
  ends, before `on_done`/`on_failed`, so a listener never touches Qt objects from a worker thread and
  never reads the store while a worker is still using it.

The caller must not use the store while a task that uses it runs (one sqlite connection)."""

from __future__ import annotations

import functools
import logging
import threading
import traceback
import weakref

from PySide6.QtCore import QCoreApplication, QElapsedTimer, QObject, QRunnable, QThread, QThreadPool, Signal

log = logging.getLogger(__name__)


@functools.cache
def _expected_errors() -> tuple[type[BaseException], ...]:
    """Errors that carry a message written for the user (Chinese, naming the file or record)."""
    from app.reports.common import ReportError
    from app.server.client import SyncError
    from app.services.backup import BackupError
    from app.services.households import InputError, ValidationFailed
    from app.services.proposals import ProcedureError
    from app.services.reference import ReferenceDataError
    from app.store.db import StoreError
    from app.sync.wire import BundleError
    from app.tables import TableError

    return (ReportError, SyncError, BackupError, InputError, ValidationFailed, ProcedureError, ReferenceDataError,
            StoreError, BundleError, TableError)


def error_text(exc: BaseException) -> str:
    """The one sentence a window shows when background work fails."""
    if isinstance(exc, _expected_errors()):
        return str(exc) or type(exc).__name__
    if isinstance(exc, OSError):
        where = f"({exc.filename})" if getattr(exc, "filename", None) else ""
        return f"文件或磁盘出错{where}:{exc.strerror or exc}"
    return f"程序内部错误({type(exc).__name__}:{exc});详情已写入日志,请告诉技术支持。"


def on_gui_thread() -> bool:
    app = QCoreApplication.instance()
    return app is None or QThread.currentThread() is app.thread()


# ---------------------------------------------------------------------- store notifications

class _Notices(QObject):
    """One per store: the store's only UI listener. Hands changes to the window callbacks on the
    GUI thread (held while a worker commits them)."""

    arrived = Signal()  # emitted from a worker thread; the slot runs on the GUI thread (queued)

    def __init__(self, store):
        super().__init__()
        self.store_ref = weakref.ref(store)
        self.callbacks: list = []
        self.pending: list = []
        self.guard = threading.Lock()
        self.arrived.connect(self._arrived)
        app = QCoreApplication.instance()
        if app is not None:
            self.moveToThread(app.thread())

    def on_commit(self, changes) -> None:  # called on whichever thread committed
        if on_gui_thread():
            self.flush()
            self._deliver(list(changes))
            return
        with self.guard:
            self.pending.extend(changes)
        self.arrived.emit()

    def _arrived(self) -> None:
        if not _running:  # a commit from a thread that is not one of ours: deliver now
            self.flush()

    def flush(self) -> None:
        with self.guard:
            changes, self.pending = self.pending, []
        if changes:
            self._deliver(changes)

    def _deliver(self, changes) -> None:
        for callback in list(self.callbacks):
            try:
                callback(changes)
            except Exception:  # one window's fault must not stop the others' refresh
                log.error("刷新窗口时出错:\n%s", traceback.format_exc())


_notices: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _hub(store) -> _Notices:
    hub = _notices.get(store)
    if hub is None:
        hub = _notices[store] = _Notices(store)
        store.listeners.append(hub.on_commit)
    return hub


def listen(store, callback) -> None:
    """Call `callback(changes)` on the GUI thread after each commit of `store`."""
    hub = _hub(store)
    if callback not in hub.callbacks:
        hub.callbacks.append(callback)


def unlisten(store, callback) -> None:
    hub = _notices.get(store)
    if hub is not None and callback in hub.callbacks:
        hub.callbacks.remove(callback)


def listening(store, callback) -> bool:
    hub = _notices.get(store)
    return hub is not None and callback in hub.callbacks


def _flush_all() -> None:
    for hub in list(_notices.values()):
        hub.flush()


# ---------------------------------------------------------------------- background work

class _Signals(QObject):
    progress = Signal(int, int)
    part = Signal(object)
    done = Signal(object)
    failed = Signal(str)


class Task(QRunnable):
    """Runs fn(progress) on the thread pool. Use `start`, not this class."""

    def __init__(self, fn, parts: bool = False):
        super().__init__()
        self.fn = fn
        self.parts = parts
        self.signals = _Signals()
        self.running = True
        self.setAutoDelete(False)

    def run(self) -> None:
        try:
            progress = lambda done, total: self.signals.progress.emit(int(done), int(total))  # noqa: E731
            result = self.fn(progress, self.signals.part.emit) if self.parts else self.fn(progress)
        except Exception as exc:  # reported to the window, never swallowed
            expected = isinstance(exc, _expected_errors())
            log.log(logging.INFO if expected else logging.ERROR, "后台任务未完成: %s", type(exc).__name__)
            if not expected:
                log.debug("%s", traceback.format_exc())
            self.signals.failed.emit(error_text(exc))
            return
        self.signals.done.emit(result)

    def wait(self, timeout_ms: int = 120000) -> bool:
        """For tests and scripts: process events until the work has ended and its callback ran."""
        timer = QElapsedTimer()
        timer.start()
        while self.running and timer.elapsed() < timeout_ms:
            QCoreApplication.processEvents()
            QThread.msleep(5)
        QCoreApplication.processEvents()
        return not self.running


_running: set[Task] = set()


def start(fn, on_done, on_failed, on_progress=None, on_part=None) -> Task:
    """Run `fn(progress)` (with `on_part`: `fn(progress, part)`) off the GUI thread; see the module
    docstring."""
    task = Task(fn, parts=on_part is not None)
    _running.add(task)

    def end():
        _running.discard(task)
        task.running = False
        _flush_all()  # changes the work committed reach the windows first, on this (GUI) thread

    def finished(result):
        end()
        _call(on_done, result)

    def failed(message):
        end()
        _call(on_failed, message)

    task.signals.done.connect(finished)
    task.signals.failed.connect(failed)
    if on_progress:
        task.signals.progress.connect(lambda done, total: _call(on_progress, done, total))
    if on_part:
        task.signals.part.connect(lambda obj: _call(on_part, obj))
    QThreadPool.globalInstance().start(task)
    return task


def _call(callback, *args) -> None:
    """Run a window's callback; a window closed while its work ran (its widgets already deleted by
    Qt) simply misses the result: the work itself has ended and its changes were delivered."""
    try:
        callback(*args)
    except RuntimeError as exc:
        if "already deleted" not in str(exc):
            raise
        log.debug("后台任务结束时窗口已关闭: %s", exc)


def busy() -> bool:
    """True while any background work started here is running."""
    return bool(_running)
