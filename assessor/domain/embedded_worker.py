"""The worker `assessor serve` runs beside the web server: started, restarted when it dies, never left behind."""

import logging
import os
import signal
import subprocess
import sys
import threading
import time

logger = logging.getLogger("assessor.serve")

# A worker that dies is started again after 1 s, then 2 s, 4 s... at most a minute; a worker that ran this long
# before dying starts the count again.
FIRST_DELAY, MAX_DELAY, HEALTHY_AFTER = 1.0, 60.0, 60.0


class EmbeddedWorker:
    """One `assessor worker` child process, watched by a thread: `status()` is what /readyz reports."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.child: subprocess.Popen | None = None
        self.restarts = 0
        self.last_exit: int | None = None
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.watcher: threading.Thread | None = None

    def start(self) -> int:
        with self.lock:
            self.child = subprocess.Popen(
                [sys.executable, "-c", "from assessor.cli import main; main()", "worker", "--workers",
                 str(self.workers), "--parent-pid", str(os.getpid())], start_new_session=True)
            pid = self.child.pid
        if self.watcher is None:
            self.watcher = threading.Thread(target=self._watch, name="embedded-worker", daemon=True)
            self.watcher.start()
        return pid

    def _watch(self) -> None:
        delay = FIRST_DELAY
        started = time.monotonic()
        while not self.stopping.is_set():
            child = self.child
            if child is None or child.poll() is None:
                self.stopping.wait(0.5)
                continue
            self.last_exit = child.returncode
            if self.stopping.is_set():
                return
            if time.monotonic() - started > HEALTHY_AFTER:
                delay = FIRST_DELAY
            logger.error("the worker (pid %s) exited with %s; starting it again in %g s", child.pid,
                         child.returncode, delay)
            if self.stopping.wait(delay):
                return
            delay = min(delay * 2, MAX_DELAY)
            self.restarts += 1
            started = time.monotonic()
            pid = self.start()
            logger.warning("worker restarted (pid %s, restart %s)", pid, self.restarts)

    def status(self) -> dict:
        child = self.child
        alive = child is not None and child.poll() is None
        return {"state": "running" if alive else "restarting", "pid": child.pid if alive else None,
                "restarts": self.restarts, "last_exit": self.last_exit}

    def stop(self, stop_child) -> None:
        """Stop watching, then stop the worker with `stop_child(process)` (graceful first)."""
        self.stopping.set()
        with self.lock:
            child = self.child
        if child is not None:
            stop_child(child)


def stop_with_parent(parent: int, interval: float = 1.0, repeat_every: float = 5.0) -> None:
    """In the worker: when `parent`, the process that started it, is gone (killed outright, perhaps before this
    worker had even started), stop at once, handing running jobs back (SIGINT), so a new `serve` never finds an
    old worker beside its own."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        logger.warning("the server that started this worker is gone; stopping")
        # A SIGINT landing while the worker is still starting up can be lost (the consumer has not set its
        # handlers yet), so it is sent again until the worker has stopped.
        while True:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(repeat_every)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
