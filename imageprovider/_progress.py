"""
imageprovider._progress
~~~~~~~~~~~~~~~~~~~~~~~

Progress for the command line, on stderr, only when stderr is a terminal:
elapsed time while waiting, partial images as they stream in, and retries as
they happen with their wait. Retries are learnt from the library's own log
records, so nothing in the transport knows about the command line.
"""

import logging
import threading
import time
from types import TracebackType
from typing import IO, Optional, Type

#: Seconds between updates of the elapsed-time line.
TICK = 0.5


class _RetryWatcher(logging.Handler):
    def __init__(self, progress: "Progress") -> None:
        super().__init__(logging.DEBUG)
        self._progress = progress

    def emit(self, record: logging.LogRecord) -> None:
        if isinstance(record.msg, str) and record.msg.startswith("Retrying in"):
            args = tuple(record.args) if isinstance(record.args, tuple) else ()
            if len(args) >= 2 and isinstance(args[0], (int, float)):
                self._progress.retry(float(args[0]), str(args[1]))


class Progress:
    """A one-line status on a terminal; silent when ``enabled`` is false."""

    def __init__(self, stream: IO[str], enabled: bool, label: str = "Waiting for the image") -> None:
        self._stream = stream
        self.enabled = enabled
        self._label = label
        self._note = ""
        self._started = time.monotonic()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: Optional[threading.Thread] = None
        self._watcher = _RetryWatcher(self)
        self._logger = logging.getLogger("imageprovider")
        self._previous_level = self._logger.level

    def __enter__(self) -> "Progress":
        if self.enabled:
            # Retry records are DEBUG; the watcher needs them even when nothing else is logged.
            self._logger.addHandler(self._watcher)
            if self._logger.getEffectiveLevel() > logging.DEBUG:
                self._logger.setLevel(logging.DEBUG)
            self._thread = threading.Thread(target=self._tick, name="imageprovider-progress", daemon=True)
            self._thread.start()
        return self

    def __exit__(
        self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException], traceback: Optional[TracebackType]
    ) -> None:
        if not self.enabled:
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2)
        self._logger.removeHandler(self._watcher)
        self._logger.setLevel(self._previous_level)
        with self._lock:
            self._stream.write("\r\033[K")
            self._stream.flush()

    def partial(self, index: int) -> None:
        """A partial image arrived."""
        self.note(f"partial image {index + 1} received")

    def retry(self, delay: float, reason: str) -> None:
        """A retry is about to wait ``delay`` seconds."""
        self.note("retrying in {:.1f} s after {}".format(delay, reason.strip("[]'")))

    def note(self, text: str) -> None:
        """Show ``text`` beside the elapsed time."""
        if not self.enabled:
            return
        self._note = text
        self._draw()

    def _tick(self) -> None:
        while not self._stop.wait(TICK):
            self._draw()

    def _draw(self) -> None:
        elapsed = time.monotonic() - self._started
        line = f"{self._label}... {elapsed:.0f}s" + (f" ({self._note})" if self._note else "")
        with self._lock:
            self._stream.write("\r\033[K" + line)
            self._stream.flush()
