"""
imageprovider._watchdog
~~~~~~~~~~~~~~~~~~~~~~~

One background thread that runs callbacks at given times: the whole-call
deadline uses it to shut a connection down when a server holds a call open
(a body sent a byte a second, a stream of keep-alives), since a socket
timeout bounds only each silence. The thread starts on first use and sleeps
while nothing is due.
"""

import heapq
import itertools
import os
import threading
import time
from typing import Callable, List, Optional, Set, Tuple

Callback = Callable[[], None]


class Watchdog:
    """Calls ``callback()`` at monotonic time ``when`` unless cancelled first."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._wakeup = threading.Condition(self._lock)
        self._heap: List[Tuple[float, int, Callback]] = []
        self._cancelled: Set[int] = set()
        self._counter = itertools.count()
        self._thread: Optional[threading.Thread] = None

    def call_at(self, when: float, callback: Callback) -> int:
        """Run ``callback`` at ``when`` (``time.monotonic()`` time); returns a handle for :meth:`cancel`."""
        with self._lock:
            handle = next(self._counter)
            heapq.heappush(self._heap, (when, handle, callback))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="imageprovider-deadlines", daemon=True)
                self._thread.start()
            self._wakeup.notify()
        return handle

    def cancel(self, handle: int) -> None:
        """Do not run the callback of ``handle`` (a no-op once it has run)."""
        with self._lock:
            if any(entry[1] == handle for entry in self._heap):
                self._cancelled.add(handle)

    def _run(self) -> None:
        while True:
            with self._lock:
                while True:
                    while self._heap and self._heap[0][1] in self._cancelled:
                        self._cancelled.discard(heapq.heappop(self._heap)[1])
                    if not self._heap:
                        # Nothing due: wait for work (a minute at most, then let the thread end).
                        if not self._wakeup.wait(60.0) and not self._heap:
                            self._thread = None
                            return
                        continue
                    delay = self._heap[0][0] - time.monotonic()
                    if delay <= 0:
                        _, handle, callback = heapq.heappop(self._heap)
                        break
                    self._wakeup.wait(delay)
            try:
                callback()
            except Exception:  # noqa: S110 (a failing callback must not stop the other deadlines)
                pass

    def _forget_after_fork(self) -> None:
        # The thread does not exist in a child process; its callbacks belong to the parent's calls.
        self._lock = threading.Lock()
        self._wakeup = threading.Condition(self._lock)
        self._heap = []
        self._cancelled = set()
        self._thread = None


#: The process's watchdog.
WATCHDOG = Watchdog()

if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=WATCHDOG._forget_after_fork)
