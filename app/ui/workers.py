"""Long work off the GUI thread: a QRunnable whose progress and result come back as signals.
The caller must not use the store while a task that uses it runs (one sqlite connection)."""

from __future__ import annotations

import logging
import traceback

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

log = logging.getLogger(__name__)


class _Signals(QObject):
    progress = Signal(int, int)
    done = Signal(object)
    failed = Signal(str)


class Task(QRunnable):
    """Runs fn(progress) on the thread pool; fn receives a progress(done, total) callable."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn
        self.signals = _Signals()
        self.setAutoDelete(False)

    def run(self) -> None:
        try:
            result = self.fn(lambda done, total: self.signals.progress.emit(int(done), int(total)))
        except Exception as exc:  # reported to the window, never swallowed
            log.error("后台任务失败: %s", type(exc).__name__)
            log.debug("%s", traceback.format_exc())
            self.signals.failed.emit(str(exc) or type(exc).__name__)
            return
        self.signals.done.emit(result)


_running: set[Task] = set()


def start(fn, on_done, on_failed, on_progress=None) -> Task:
    task = Task(fn)
    _running.add(task)

    def finished(result):
        _running.discard(task)
        on_done(result)

    def failed(message):
        _running.discard(task)
        on_failed(message)

    task.signals.done.connect(finished)
    task.signals.failed.connect(failed)
    if on_progress:
        task.signals.progress.connect(on_progress)
    QThreadPool.globalInstance().start(task)
    return task
