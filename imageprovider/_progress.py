"""
imageprovider._progress
~~~~~~~~~~~~~~~~~~~~~~~

Progress for the command line, on stderr, only when stderr is a terminal:
elapsed time while waiting, partial images as they stream in, and retries as
they happen with their wait. Retries arrive through the provider's ``retry``
hook, so nothing in the transport knows about the command line.
"""

import threading
import time
from types import TracebackType
from typing import IO, Optional, Type

#: Seconds between updates of the elapsed-time line.
TICK = 0.5


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

    def __enter__(self) -> "Progress":
        if self.enabled:
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
        with self._lock:
            self._stream.write("\r\033[K")
            self._stream.flush()

    def partial(self, index: int) -> None:
        """A partial image arrived."""
        self.note(f"partial image {index + 1} received")

    def retry(self, delay: float, reason: str, attempt: int) -> None:
        """The ``retry`` hook: attempt ``attempt`` follows after ``delay`` seconds, because of ``reason``."""
        self.note(f"retrying in {delay:.1f} s after {reason} (attempt {attempt})")

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
