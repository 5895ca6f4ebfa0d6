"""
imageprovider.batch._batch_api
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~

Batches through OpenAI's own Batch API: the items become JSONL request lines
(validated with the same rules as live calls), split where the API's limits
require, uploaded and started; the file and batch ids are recorded in the
output folder before anything else happens, so a later run resumes instead
of submitting twice. Finished batches' result files are downloaded, read line
by line, and written to the same manifest as online runs.
"""

import json
import os
import re
import tempfile
import time
from pathlib import Path
from typing import IO, Any, Callable, Dict, Iterator, List, Optional, Sequence, Set, Tuple

from .. import _schemas
from .._errors import Redactor, bounded
from .._files import PathLike, open_no_follow, write_atomic
from .._inputs import image_data_url
from .._saving import expected_images
from ..exceptions import ImageProviderError, ResponseValidationError
from ..model_specs import MASK_MAX_BYTES
from ..provider import OpenAIImageProvider
from ..results import ImageResponse, total_tokens
from ._common import (
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
from ._endpoints import BatchAPIClient
from ._input import BatchItem
from ._manifest import Manifest

#: The Batch API's limits per input file.
MAX_REQUESTS_PER_BATCH = 50_000
MAX_BYTES_PER_BATCH = 200 * 1000 * 1000
#: Where the submitted batches are recorded in the output folder.
STATE_NAME = "batch_api.json"
#: Batch states after which nothing more will happen.
TERMINAL = ("completed", "expired", "cancelled", "failed")

_ENDPOINTS = {"generate": "/v1/images/generations", "edit": "/v1/images/edits"}


class _State:
    """The record of submitted batches, rewritten atomically after every change."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / STATE_NAME
        self.batches: List[Dict[str, Any]] = []
        if os.path.lexists(self.path):
            with os.fdopen(open_no_follow(self.path, os.O_RDONLY), "rb") as stream:
                self.batches = list(json.loads(stream.read().decode("utf-8")).get("batches", []))

    def save(self) -> None:
        write_atomic(self.path, json.dumps({"batches": self.batches}, indent=2).encode("utf-8"), overwrite=True)

    def claimed(self) -> Set[str]:
        """Ids in batches that are running or whose results were collected."""
        ids = set()
        for entry in self.batches:
            if not entry.get("released"):
                ids.update(entry["ids"])
        return ids


def request_line(provider: OpenAIImageProvider, item: BatchItem) -> Tuple[str, Dict[str, Any]]:
    """The endpoint and validated JSON body of an item, as a Batch API line needs them.

    Built by ``provider.prepare_request``, as an online call would be. Edits
    use the JSON form: local images travel as data URLs.
    """
    params = dict(item.params, prompt=item.prompt)
    extra_body = params.pop("extra_body", None)
    if item.kind == "edit":
        # Each input is size-checked before it is read, as in an online edit.
        model = params.get("model") or provider.default_model
        spec = provider.models.get(model) if provider.settings.check_model_rules else None
        limit = spec.inputs.max_bytes if spec is not None and spec.inputs is not None else None
        params["images"] = [{"image_url": image_data_url(path, limit, "images")} for path in item.images]
        if item.mask:
            params["mask"] = {"image_url": image_data_url(item.mask, MASK_MAX_BYTES, "mask")}
        prepared = provider.prepare_request("edit_refs", extra_body=extra_body, **params)
    else:
        prepared = provider.prepare_request("generate", extra_body=extra_body, **params)
    return _ENDPOINTS[item.kind], dict(prepared.body)


def chunk_lines(lines: Sequence[Tuple[str, bytes]], max_requests: int, max_bytes: int) -> List[List[Tuple[str, bytes]]]:
    """Split ``(id, encoded line)`` pairs into files within both limits."""
    chunks: List[List[Tuple[str, bytes]]] = [[]]
    size = 0
    for item_id, line in lines:
        if chunks[-1] and (len(chunks[-1]) >= max_requests or size + len(line) > max_bytes):
            chunks.append([])
            size = 0
        chunks[-1].append((item_id, line))
        size += len(line)
    return [chunk for chunk in chunks if chunk]


def run_batch_api(
    items: Items,
    out_dir: PathLike,
    *,
    provider: OpenAIImageProvider,
    wait: bool = False,
    poll_interval: float = 5.0,
    max_poll_interval: float = 60.0,
    max_requests: int = MAX_REQUESTS_PER_BATCH,
    max_bytes: int = MAX_BYTES_PER_BATCH,
    retry_failed: bool = True,
    max_attempts: int = 3,
    metadata: bool = False,
    input_format: Optional[str] = None,
    progress: Optional[Callable[[List[Dict[str, Any]]], None]] = None,
    sleep: Callable[[float], None] = time.sleep,
) -> BatchSummary:
    """Submit the items not yet done to the Batch API, and collect any finished batches.

    Run it again later (or with ``wait=True``) to collect: it never submits
    an item twice while its batch is running, and resubmits the items of
    expired or cancelled batches that produced no result for them.

    :param items: as :func:`run_batch` takes them: a path to a JSONL, CSV or
        text file; a :class:`BatchInput`; or a list of prompt strings, dicts
        with the fields of a JSONL line and :class:`BatchItem` objects.
    :raises RequestValidationError: ``items`` is none of these (``param="items"``),
        or two items share an id (``param="id"``); nothing is sent.
    """
    started = time.monotonic()
    batch_input = load_input(items, input_format)
    folder = Path(str(out_dir))
    summary = BatchSummary(total=len(batch_input.items))
    by_id = {item.id: item for item in batch_input.items}
    with Manifest(str(folder)) as manifest:
        Manifest.clean_partial_files(str(folder))
        record_problems(manifest, batch_input.problems, summary)
        state = _State(folder)
        initial = manifest.load()
        summary.skipped = sum(
            1 for item in batch_input.items if item.id in initial and initial[item.id].state == "done"
        )
        _collect(provider, state, manifest, by_id, folder, metadata, summary)
        # Done items were counted above; select_work's own count would include this run's collections.
        scratch = BatchSummary()
        # Items whose failure this run just collected wait for the next run, as online failures do.
        just_failed = {failure["id"] for failure in summary.failures}
        work = [
            item
            for item in select_work(
                batch_input, manifest, retry_failed=retry_failed, max_attempts=max_attempts, summary=scratch
            )
            if item.id not in state.claimed() and item.id not in just_failed
        ]
        summary.failed += scratch.failed
        _submit(provider, state, manifest, work, max_requests, max_bytes, summary)
        delay = poll_interval
        while wait and any(entry.get("status") not in TERMINAL for entry in state.batches if entry.get("batch_id")):
            sleep(delay)
            delay = min(delay * 1.5, max_poll_interval)
            _collect(provider, state, manifest, by_id, folder, metadata, summary)
            if progress is not None:
                progress([dict(entry) for entry in state.batches])
        records = manifest.load()
        done_now = sum(1 for item in batch_input.items if records.get(item.id) and records[item.id].state == "done")
        summary.done = done_now - summary.skipped
        summary.pending = sum(
            1
            for item in batch_input.items
            if item.id not in records or (records[item.id].state != "done" and item.id in state.claimed())
        )
        summary.batches = [dict(entry) for entry in state.batches]
    summary.elapsed = time.monotonic() - started
    summary.images_per_minute = summary.images / summary.elapsed * 60 if summary.elapsed > 0 else 0.0
    write_summary(folder, summary)
    return summary


def _submit(
    provider: OpenAIImageProvider,
    state: _State,
    manifest: Manifest,
    work: Sequence[BatchItem],
    max_requests: int,
    max_bytes: int,
    summary: BatchSummary,
) -> None:
    # A file uploaded by an earlier run that crashed before creating its batch is used, not re-uploaded.
    for entry in state.batches:
        if entry.get("input_file_id") and not entry.get("batch_id"):
            _create(provider, state, entry)
    grouped: Dict[str, List[Tuple[str, bytes]]] = {}
    for item in work:
        try:
            endpoint, body = request_line(provider, item)
        except ImageProviderError as exc:
            manifest.failed(
                item.id,
                error_class=type(exc).__name__,
                message=exc.message,
                request_id=None,
                attempts=previous_attempts(manifest.load(), item.id) + 1,
                line=item.line,
            )
            summary.failed += 1
            summary.failures.append({"id": item.id, "error_class": type(exc).__name__, "message": exc.message})
            continue
        line = {"custom_id": item.id, "method": "POST", "url": endpoint, "body": body}
        grouped.setdefault(endpoint, []).append(
            (item.id, json.dumps(line, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n")
        )
    for endpoint, lines in grouped.items():
        for chunk in chunk_lines(lines, max_requests, max_bytes):
            data = b"".join(line for _, line in chunk)
            uploaded = BatchAPIClient(provider).upload_file(data, filename="imageprovider-batch.jsonl", purpose="batch")
            entry = {
                "input_file_id": uploaded["id"],
                "batch_id": None,
                "endpoint": endpoint,
                "ids": [item_id for item_id, _ in chunk],
                "status": None,
            }
            state.batches.append(entry)
            state.save()
            _create(provider, state, entry)


def _create(provider: OpenAIImageProvider, state: _State, entry: Dict[str, Any]) -> None:
    batch = BatchAPIClient(provider).create_batch(
        entry["input_file_id"], entry["endpoint"], metadata={"created_by": "imageprovider"}
    )
    entry.update(batch_id=batch["id"], status=batch["status"])
    state.save()


def _collect(
    provider: OpenAIImageProvider,
    state: _State,
    manifest: Manifest,
    by_id: Dict[str, BatchItem],
    folder: Path,
    metadata: bool,
    summary: BatchSummary,
) -> None:
    for entry in state.batches:
        if not entry.get("batch_id") or entry.get("collected"):
            continue
        batch = BatchAPIClient(provider).retrieve_batch(entry["batch_id"])
        entry.update(status=batch["status"], request_counts=batch.get("request_counts"))
        if batch["status"] not in TERMINAL:
            continue
        records = manifest.load()
        for file_key in ("output_file_id", "error_file_id"):
            if batch.get(file_key):
                limit = provider.transport.limits.max_batch_line_bytes
                # A result file holds one line per request of the batch: anything larger is not one.
                most = len(entry["ids"]) * (limit + 2)
                for line, whole in _download_lines(provider, batch[file_key], folder, most):
                    _record_line(
                        line,
                        whole,
                        records,
                        manifest,
                        by_id,
                        folder,
                        metadata,
                        summary,
                        limit,
                        provider.transport.redactor,
                    )
        if batch["status"] == "failed":
            message = json.dumps(batch.get("errors") or {})[:500]
            records = manifest.load()
            for item_id in entry["ids"]:
                if item_id not in records or records[item_id].state != "done":
                    item = by_id.get(item_id)
                    manifest.failed(
                        item_id,
                        error_class="BatchFailed",
                        message=message,
                        request_id=None,
                        attempts=previous_attempts(records, item_id) + 1,
                        line=item.line if item is not None else None,
                    )
                    summary.failed += 1
                    summary.failures.append({"id": item_id, "error_class": "BatchFailed", "message": message})
        entry.update(collected=True, released=True)
        state.save()


def _download_lines(
    provider: OpenAIImageProvider, file_id: str, folder: Path, max_bytes: int
) -> Iterator[Tuple[bytes, bool]]:
    """The non-blank lines of a result file, as ``(line, whole)``: a line over the limit comes as its first
    bytes with ``whole`` false, and is never held whole."""
    # Result files hold one image per line and can be very large: spool to disk, then read line by line.
    handle, temporary = tempfile.mkstemp(prefix=".imageprovider-", suffix=".part", dir=str(folder))
    try:
        with os.fdopen(handle, "w+b") as spool:
            BatchAPIClient(provider).download_file(file_id, spool, max_bytes=max_bytes)
            spool.seek(0)
            yield from _bounded_lines(spool, provider.transport.limits.max_batch_line_bytes)
    finally:
        os.unlink(temporary)


#: Bytes kept of a line too long to read, to find the item it belongs to.
_HEAD_BYTES = 4096
_CUSTOM_ID = re.compile(rb'"custom_id"\s*:\s*"([A-Za-z0-9._-]{1,100})"')


def _bounded_lines(stream: IO[bytes], limit: int) -> Iterator[Tuple[bytes, bool]]:
    pieces: List[bytes] = []
    size = 0
    whole = True
    while True:
        block = stream.read(1024 * 1024)
        start = 0
        while True:
            newline = block.find(b"\n", start) if block else -1
            end = newline if newline >= 0 else len(block)
            piece = block[start:end]
            if whole and size + len(piece) > limit:
                # Too long: keep the head (for the item's id) and skip the rest of the line.
                head = b"".join(pieces)[:_HEAD_BYTES]
                pieces, whole = [head + piece[: max(0, _HEAD_BYTES - len(head))]], False
            elif whole:
                pieces.append(piece)
            size += len(piece)
            if newline < 0:
                break
            line = b"".join(pieces)
            if line.strip():
                yield line, whole
            pieces, size, whole, start = [], 0, True, newline + 1
        if not block:
            line = b"".join(pieces)
            if line.strip():
                yield line, whole
            return


def _record_line(
    raw: bytes,
    whole: bool,
    records: Dict[str, Any],
    manifest: Manifest,
    by_id: Dict[str, BatchItem],
    folder: Path,
    metadata: bool,
    summary: BatchSummary,
    limit: int,
    redactor: Redactor,
) -> None:
    line: Any = None
    reason = None
    if not whole:
        reason = f"its result line is longer than the limit of {limit:,} bytes"
    else:
        try:
            line = json.loads(raw)
        except (ValueError, RecursionError) as exc:
            reason = "its result line is not valid JSON ({})".format(
                "nested too deeply" if isinstance(exc, RecursionError) else str(exc)[:100]
            )
    if reason is not None:
        # A hostile or broken line: fail the item it names (if any), and go on with the others.
        found = _CUSTOM_ID.search(raw[:_HEAD_BYTES])
        item = by_id.get(found.group(1).decode("ascii")) if found else None
        if item is not None and not (item.id in records and records[item.id].state == "done"):
            attempts = previous_attempts(records, item.id) + 1
            _failed(manifest, summary, item, "ResponseValidationError", reason, None, attempts, {})
        return
    # Result lines come from the server: every level is checked before use.
    custom_id = line.get("custom_id") if isinstance(line, dict) else None
    item = by_id.get(custom_id) if isinstance(custom_id, str) else None
    if item is None or (item.id in records and records[item.id].state == "done"):
        return
    attempts = previous_attempts(records, item.id) + 1
    response = line.get("response")
    response = response if isinstance(response, dict) else {}
    status = response.get("status_code")
    body = response.get("body")
    request_id = response.get("request_id") if isinstance(response.get("request_id"), str) else None
    # Server text: a proxy reflecting a credential must not put it into the manifest.
    request_id = redactor.redact(request_id)[:128] if request_id is not None else None
    if status == 200 and isinstance(body, dict) and _schemas.find_violation("images_response", body) is None:
        try:
            result, files = _save_result(body, request_id, item, folder, metadata)
        except (ImageProviderError, OSError) as exc:
            # This item only: the other lines are still collected, and a later run retries it.
            message = exc.message if isinstance(exc, ImageProviderError) else str(exc)
            _failed(manifest, summary, item, type(exc).__name__, message, request_id, attempts, {"status_code": status})
            return
        manifest.done(
            item.id,
            files=files,
            usage=body.get("usage"),
            request_id=request_id,
            revised_prompts=[image.revised_prompt for image in result.images],
            attempts=attempts,
            extra=svg_usage_of(body),
        )
        summary.images += len(files)
        summary.tokens += total_tokens(body)
        return
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        error = line.get("error") if isinstance(line.get("error"), dict) else {}
    message = bounded(redactor.redact(str(error.get("message") or f"status {status}")))
    error_class = "ResponseValidationError" if status == 200 else "APIStatusError"
    extra = {
        "status_code": status if isinstance(status, int) else None,
        "code": bounded(redactor.redact(str(error["code"])), 200) if error.get("code") is not None else None,
        "param": bounded(redactor.redact(str(error["param"])), 200) if error.get("param") is not None else None,
    }
    _failed(manifest, summary, item, error_class, message, request_id, attempts, extra)


def _save_result(
    body: Dict[str, Any], request_id: Optional[str], item: BatchItem, folder: Path, metadata: bool
) -> Tuple[ImageResponse, List[str]]:
    """Save the images of a result line that passed the schema; return the response and the file names.

    Every image is checked before any is written: the Batch API returns
    base64, so a URL-only image (which would need a download) or invalid
    base64 fails the item with nothing saved.

    :raises ResponseValidationError: an image is URL-only, not valid base64, or not a format the library saves.
    :raises OSError: writing a file failed.
    """
    result = ImageResponse.from_body(
        body, {"x-request-id": request_id or ""}, request=dict(item.params, prompt=item.prompt)
    )
    asked = expected_images(item.params)
    if len(result.images) > asked:
        # Names beyond the item's own would be another item's files.
        raise ResponseValidationError(
            f"The result holds {len(result.images)} images where {asked} were asked for; nothing is saved"
        )
    for image in result.images:
        # Decoding here checks the base64 (ResponseValidationError) before any file is written.
        if not image.has_data or image.data is None:
            raise ResponseValidationError(
                f"Image {image.index} of the result has only a URL, no base64 data; the Batch API returns "
                "base64, so it is not downloaded",
                path=("data", image.index),
            )
    return result, save_item_images(result, item, folder, metadata)


def _failed(
    manifest: Manifest,
    summary: BatchSummary,
    item: BatchItem,
    error_class: str,
    message: str,
    request_id: Optional[str],
    attempts: int,
    extra: Dict[str, Any],
) -> None:
    manifest.failed(
        item.id,
        error_class=error_class,
        message=message,
        request_id=request_id,
        attempts=attempts,
        line=item.line,
        extra=extra,
    )
    summary.failed += 1
    summary.failures.append({"id": item.id, "error_class": error_class, "message": message})
