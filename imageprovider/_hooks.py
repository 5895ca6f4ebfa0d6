"""
imageprovider._hooks
~~~~~~~~~~~~~~~~~~~~

One registry of callbacks for what happens on the wire, in the spirit of
requests' ``hooks``: the command line's progress line and a batch's shared
rate limiter listen here, and so can an application.

Events and what their callbacks receive:

``response``
    ``(status, headers)`` of every response from the API, including those
    urllib3 retries out of sight (a 429 before the retry that succeeded).
``retry``
    ``(delay, reason, attempt)`` before waiting ``delay`` seconds for attempt
    number ``attempt``; ``reason`` is ``"status 503"`` or an error's class name.
"""

import threading
from typing import Any, Callable, Dict, List

#: The events a :class:`Hooks` registry dispatches.
EVENTS = ("response", "retry")

Callback = Callable[..., Any]


class Hooks:
    """Callbacks by event; safe to change while other threads dispatch.

    Usage::

        >>> provider.hooks.register("retry", lambda delay, reason, attempt: print("retrying in", delay))
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._callbacks: Dict[str, List[Callback]] = {event: [] for event in EVENTS}

    def register(self, event: str, callback: Callback) -> None:
        """Call ``callback`` on each ``event``.

        :raises ValueError: ``event`` is not one of :data:`EVENTS`.
        """
        self._check(event)
        with self._lock:
            self._callbacks[event] = [*self._callbacks[event], callback]

    def unregister(self, event: str, callback: Callback) -> None:
        """Stop calling ``callback``; nothing happens if it was not registered."""
        self._check(event)
        with self._lock:
            self._callbacks[event] = [known for known in self._callbacks[event] if known is not callback]

    def dispatch(self, event: str, *args: Any) -> None:
        """Call every callback of ``event`` with ``args``, in the order they were registered."""
        # The list is replaced, never changed, so iterating a snapshot needs no lock.
        for callback in self._callbacks[event]:
            callback(*args)

    def copy(self) -> "Hooks":
        """A registry holding the same callbacks, changed independently from now on."""
        copied = Hooks()
        with self._lock:
            copied._callbacks = {event: list(callbacks) for event, callbacks in self._callbacks.items()}
        return copied

    def __repr__(self) -> str:
        counts = ", ".join(f"{event}: {len(callbacks)}" for event, callbacks in self._callbacks.items())
        return f"Hooks({counts})"

    @staticmethod
    def _check(event: str) -> None:
        if event not in EVENTS:
            raise ValueError("Unknown hook event {!r}; the events are {}".format(event, ", ".join(EVENTS)))
