"""
imageprovider.batch._online
~~~~~~~~~~~~~~~~~~~~~~~~~~~

Online batches: a pool of threads sharing one provider and one rate limiter
works through the items, writes each item's images atomically and then its
``done`` line to the manifest, so that a rerun after a crash finishes the
batch with every item done exactly once.
"""

import threading
import time
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Sequence, Set

from .._files import PathLike
from ..exceptions import ImageProviderError, RateLimitError, RequestValidationError
from ..provider import EDIT_PARAMETERS, GENERATION_PARAMETERS, OpenAIImageProvider
from ..results import total_tokens
from ._common import (
    DEFAULT_MAX_ATTEMPTS,
    BatchSummary,
    Items,
    load_input,
    previous_attempts,
    record_problems,
    save_item_images,
    select_work,
    svg_usage_of,
    write_summary,
)
from ._input import BatchItem
from ._limiter import BatchLimiter
from ._manifest import Manifest

#: Worker threads by default.
DEFAULT_CONCURRENCY = 4
#: Times an item goes back in the queue after running out of retries on 429s, before it counts as failed.
MAX_RATE_LIMIT_REQUEUES = 10
#: Parameters each kind of item takes (the keywords of generate_image and edit_image, ``extra_body`` included).
_KIND_PARAMS = {
    "generate": frozenset(GENERATION_PARAMETERS) | {"extra_body"},
    "edit": frozenset(EDIT_PARAMETERS) | {"extra_body"},
}


def check_item_params(item: BatchItem) -> None:
    """Refuse a parameter the item's kind does not take (``style`` on an edit, say) before any request."""
    for name in item.params:
        if name not in _KIND_PARAMS[item.kind]:
            raise RequestValidationError(
                "Parameter {!r} does not apply to {} (item {!r}, line {})".format(
                    name, "generations" if item.kind == "generate" else "edits", item.id, item.line
                ),
                param=name,
            )


@dataclass
class BatchProgress:
    """A snapshot passed to the progress callback."""

    done: int
    failed: int
    total: int
    images_per_minute: float
    eta_seconds: Optional[float]
    waiting_seconds: float


#: What the batch runners take as ``items``: see :func:`load_input`.
def run_batch(
    items: Items,
    out_dir: PathLike,
    *,
    provider: OpenAIImageProvider,
    concurrency: int = DEFAULT_CONCURRENCY,
    requests_per_minute: Optional[float] = None,
    images_per_minute: Optional[float] = None,
    retry_failed: bool = True,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    metadata: bool = False,
    input_format: Optional[str] = None,
    stop: Optional[threading.Event] = None,
    progress: Optional[Callable[[BatchProgress], None]] = None,
    notify: Optional[Callable[[str], None]] = None,
) -> BatchSummary:
    """Generate (or edit) every item, at the rate limit, resumably.

    Each item's images go to ``out_dir`` named after its id; ``manifest.jsonl``
    there records every item as ``done`` or ``failed``. Running the same call
    again skips done items and retries failed ones (up to ``max_attempts`` in
    all). Setting ``stop`` stops taking new items; those in flight finish and
    are recorded.

    Ctrl-C (``KeyboardInterrupt`` in the calling thread) does the same, and
    says so through ``notify``; a second one tells how many items are in flight
    and how long they may take; a third abandons them: their connections are
    shut, and they are left unrecorded (pending) for a rerun, so the folder and
    the manifest always agree.

    :param items: a path to a JSONL, CSV or text file; a :class:`BatchInput`;
        or a list of prompt strings (like a text file's lines), dicts with the
        fields of a JSONL line (``prompt``, ``id``, parameters, ``images``,
        ``mask``, ``extra_body``) and :class:`BatchItem` objects, mixed as you
        like. Malformed entries are reported in ``summary.problems`` (and the
        manifest) with their line, or their 1-based position in a list.
    :param provider: shared by all worker threads.
    :param concurrency: worker threads.
    :param requests_per_minute: client-side limit shared by all workers.
    :param images_per_minute: client-side image limit shared by all workers.
    :param notify: told, in a sentence, what each Ctrl-C did (the command line prints it).
    :raises RequestValidationError: ``items`` is none of the forms above
        (``param="items"``), or two items share an id (``param="id"``); nothing is sent.

    Usage::

        >>> with OpenAIImageProvider() as provider:
        ...     summary = run_batch(["A red fox", {"id": "owl", "prompt": "An owl", "size": "1024x1024"}],
        ...                         "out", provider=provider)
    """
    if concurrency < 1:
        raise RequestValidationError("Parameter 'concurrency' must be at least 1", param="concurrency")
    started = time.monotonic()
    batch_input = load_input(items, input_format)
    folder = Path(str(out_dir))
    stop = stop or threading.Event()
    summary = BatchSummary(total=len(batch_input.items))
    limiter = BatchLimiter(requests_per_minute=requests_per_minute, images_per_minute=images_per_minute)
    # The workers' own provider: it shares the caller's connections, hands every 429 back
    # (the shared limiter schedules the item again, where a private retry would jump its
    # queue) and tells the limiter of every response. The caller's provider is left as it was,
    # so runs that overlap on it cannot undo each other's settings.
    workers = provider.with_options(retry_rate_limits=False)
    workers.hooks.register("response", limiter.observe)
    limiter.low_water = concurrency
    with Manifest(str(folder)) as manifest:
        Manifest.clean_partial_files(str(folder))
        record_problems(manifest, batch_input.problems, summary)
        records = manifest.load()
        work = select_work(batch_input, manifest, retry_failed=retry_failed, max_attempts=max_attempts, summary=summary)
        lock = threading.Lock()
        finished: Set[str] = set()
        requeues: Dict[str, int] = {}
        abandoned = threading.Event()

        def report() -> None:
            if progress is None:
                return
            elapsed = max(time.monotonic() - started, 1e-9)
            rate = summary.images / elapsed * 60
            left = len(work) - len(finished)
            per_item = elapsed / len(finished) if finished else None
            progress(
                BatchProgress(
                    done=summary.done + summary.skipped,
                    failed=summary.failed,
                    total=summary.total,
                    images_per_minute=rate,
                    eta_seconds=None if per_item is None else per_item * left / max(concurrency, 1),
                    waiting_seconds=limiter.current_wait,
                )
            )

        def do(item: BatchItem) -> bool:
            """Run one item; ``True`` hands it back to the queue (the server asked to slow down)."""
            if stop.is_set():
                return False
            limiter.acquire(images=int(item.params.get("n") or 1), stop=stop)
            if stop.is_set():
                return False
            attempts = previous_attempts(records, item.id) + 1
            try:
                check_item_params(item)
                if item.kind == "edit":
                    response = workers.edit_image(item.prompt, list(item.images), mask=item.mask, **item.params)
                else:
                    response = workers.generate_image(item.prompt, **item.params)
                files = save_item_images(response, item, folder, metadata)
            except RateLimitError as exc:
                # A 429 is a request to slow down, not a failure of the item: the shared
                # limiter has heard it and paused everyone; try the item again later.
                with lock:
                    requeues[item.id] = requeues.get(item.id, 0) + 1
                    again = requeues[item.id] <= MAX_RATE_LIMIT_REQUEUES
                if again:
                    return True
                return fail(item, exc, attempts)
            except (ImageProviderError, OSError) as exc:
                if abandoned.is_set():
                    return False  # cut off by the third Ctrl-C: left pending, for a rerun
                return fail(item, exc, attempts)
            manifest.done(
                item.id,
                files=files,
                usage=response.fields.get("usage"),
                request_id=response.request_id,
                revised_prompts=[image.revised_prompt for image in response.images],
                attempts=attempts,
                extra=svg_usage_of(response.fields),
            )
            with lock:
                summary.done += 1
                summary.images += len(files)
                summary.tokens += total_tokens(response.fields)
                finished.add(item.id)
            return False

        def fail(item: BatchItem, exc: Exception, attempts: int) -> bool:
            message = exc.message if isinstance(exc, ImageProviderError) else str(exc)
            manifest.failed(
                item.id,
                error_class=type(exc).__name__,
                message=message,
                request_id=getattr(exc, "request_id", None),
                attempts=attempts,
                line=item.line,
            )
            with lock:
                summary.failed += 1
                summary.failures.append({"id": item.id, "error_class": type(exc).__name__, "message": message})
                finished.add(item.id)
            return False

        def abandon() -> None:
            abandoned.set()
            workers.transport.shut_connections()

        interrupts = _Interrupts(notify or (lambda message: None), workers.transport, abandon)
        try:
            _run_pool(work, do, concurrency, stop, report, interrupts)
        except KeyboardInterrupt:
            summary.interrupted = True
        summary.interrupted = summary.interrupted or stop.is_set()
        summary.pending = len(work) - len(finished)
    summary.elapsed = time.monotonic() - started
    summary.images_per_minute = summary.images / summary.elapsed * 60 if summary.elapsed > 0 else 0.0
    write_summary(folder, summary)
    return summary


class _Interrupts:
    """What each Ctrl-C of a run does: stop taking items, then say how long those in flight may take, then
    abandon them."""

    def __init__(self, notify: Callable[[str], None], transport: Any, abandon: Callable[[], None]) -> None:
        self.notify = notify
        self.transport = transport
        self.abandon = abandon
        self.count = 0

    def pressed(self, in_flight: int) -> None:
        self.count += 1
        if self.count == 1:
            self.notify(
                f"Stopping: no new items are started; {in_flight} in flight will finish and be recorded. "
                "Press Ctrl-C again to see how long they may take."
            )
        elif self.count == 2:
            connect, read = self.transport.timeout
            deadline = self.transport.deadline
            longest = f"the deadline of {deadline:g} s" if deadline is not None else f"the read timeout of {read:g} s"
            self.notify(
                f"{in_flight} items are still in flight; each may take up to {longest} (no answer for "
                f"{read:g} s ends one sooner). Press Ctrl-C once more to abandon them: they are not recorded, "
                "and a rerun does them again."
            )
        elif self.count == 3:
            self.notify(f"Abandoning {in_flight} items in flight; a rerun does them again.")
            self.abandon()


def _run_pool(
    work: Sequence[BatchItem],
    do: Callable[[BatchItem], bool],
    concurrency: int,
    stop: threading.Event,
    report: Callable[[], None],
    interrupts: _Interrupts,
) -> None:
    # Items are handed out as workers free up, so a stop leaves the rest unstarted;
    # an item handed back (rate limited) joins the end of the queue.
    pending = deque(work)
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="imageprovider-batch") as pool:
        running: Dict["Future[bool]", BatchItem] = {}  # noqa: UP037 (Future is subscriptable from 3.9 only)
        try:
            while True:
                while not stop.is_set() and len(running) < concurrency and pending:
                    item = pending.popleft()
                    running[pool.submit(do, item)] = item
                if not running:
                    return
                finished, _ = wait(set(running), timeout=1.0, return_when=FIRST_COMPLETED)
                for future in finished:
                    item = running.pop(future)
                    if future.result():
                        pending.append(item)
                report()
        except KeyboardInterrupt:
            # Stop taking items; let those in flight finish and be recorded (see _Interrupts for more presses).
            stop.set()
            interrupts.pressed(len(running))
            while running:
                try:
                    finished, _ = wait(set(running), timeout=0.5, return_when=FIRST_COMPLETED)
                    for future in finished:
                        running.pop(future)
                        future.result()  # a requeue no longer matters (the run stops); an error still shows
                except KeyboardInterrupt:
                    interrupts.pressed(len(running))
            report()
            raise
