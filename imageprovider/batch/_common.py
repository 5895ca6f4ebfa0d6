"""
imageprovider.batch._common
~~~~~~~~~~~~~~~~~~~~~~~~~~~

What both batch modes (online, and OpenAI's Batch API) share: reading the
items, choosing the work of a run from the manifest, recording malformed
lines, saving an item's images under names derived from its id, and the
summary.
"""

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

from .. import _saving
from .._files import PathLike, write_atomic
from ..exceptions import RequestValidationError
from ..results import ImageResponse
from ._input import BatchInput, BatchItem, DuplicateIdError, InputProblem, parse_objects, read_items, refuse_duplicates
from ._manifest import Manifest

#: Attempts per item, across runs, before a failed item is left alone.
DEFAULT_MAX_ATTEMPTS = 3


@dataclass
class BatchSummary:
    """What a batch run did; also written to ``summary.json`` in the output folder."""

    total: int = 0
    done: int = 0
    failed: int = 0
    #: Items already done by an earlier run, not redone.
    skipped: int = 0
    #: Items left for a later run (interrupted, or still running in the Batch API).
    pending: int = 0
    images: int = 0
    tokens: int = 0
    elapsed: float = 0.0
    images_per_minute: float = 0.0
    interrupted: bool = False
    #: Malformed input lines: ``{"line": n, "message": ...}``.
    problems: List[Dict[str, Any]] = field(default_factory=list)
    #: ``{"id", "error_class", "message"}`` for each item that failed in this run.
    failures: List[Dict[str, Any]] = field(default_factory=list)
    #: Batch API mode: the batches submitted or followed.
    batches: List[Dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> Dict[str, Any]:
        """A JSON-ready copy."""
        return asdict(self)


Items = Union[PathLike, BatchInput, Sequence[Union[str, Mapping[str, Any], BatchItem]]]

_ITEMS_ACCEPTED = (
    "a path to a JSONL, CSV or text file, a BatchInput, or a list whose entries are prompt strings, "
    "dicts of item fields (prompt, id, parameters, images, mask, extra_body) or BatchItem objects"
)


def load_input(items: Items, input_format: Optional[str] = None) -> BatchInput:
    """The items of a batch, from any of the forms the runners take:

    * a path (``str`` or ``os.PathLike``) to a JSONL, CSV or text file (see :func:`read_items`);
    * a :class:`BatchInput` (from :func:`read_items` or :func:`parse_items`);
    * a list (or tuple) whose entries are prompt strings (as the lines of a
      text file), dicts with the fields of a JSONL line, or :class:`BatchItem`
      objects, mixed as you like. Malformed strings and dicts become
      problems at their 1-based position, as malformed lines do in a file.

    :raises RequestValidationError: ``items`` is none of these (``param="items"``),
        or two items share an id (``param="id"``); nothing is sent.
    """
    try:
        if isinstance(items, BatchInput):
            refuse_duplicates(items.items)
            return items
        if isinstance(items, BatchItem):
            raise RequestValidationError(
                f"items must be {_ITEMS_ACCEPTED}; got a single BatchItem: put it in a list", param="items"
            )
        if isinstance(items, (list, tuple)):
            return parse_objects(items, "items")
        if isinstance(items, (str, os.PathLike)):
            return read_items(os.fspath(items), format=input_format)
    except DuplicateIdError as exc:
        raise RequestValidationError(str(exc), param="id") from exc
    raise RequestValidationError(f"items must be {_ITEMS_ACCEPTED}, not {type(items).__name__}", param="items")


def svg_usage_of(body: Mapping[str, Any]) -> Optional[Dict[str, Any]]:
    """The manifest's extra field for a response that carries ``svg_usage``, else ``None``."""
    svg_usage = body.get("svg_usage")
    return {"svg_usage": svg_usage} if isinstance(svg_usage, dict) else None


def save_item_images(response: ImageResponse, item: BatchItem, out_dir: Path, metadata: bool) -> List[str]:
    """Save an item's images atomically (replacing leftovers of an unfinished earlier try); return file names."""
    names = _saving.image_names(item.id, len(response.images))
    saved = _saving.save_all(response, out_dir, names=names, overwrite=True, metadata=metadata)
    return [path.name for path in saved]


def record_problems(manifest: Manifest, problems: Sequence[InputProblem], summary: BatchSummary) -> None:
    """Malformed lines go to the manifest as failed (once), so none is silently dropped."""
    records = manifest.load()
    for problem in problems:
        key = f"line-{problem.line}"
        known = records.get(key)
        if known is None or known.data.get("message") != problem.message:
            manifest.failed(
                key, error_class="InputError", message=problem.message, request_id=None, attempts=0, line=problem.line
            )
        summary.problems.append({"line": problem.line, "message": problem.message})


def select_work(
    batch_input: BatchInput, manifest: Manifest, *, retry_failed: bool, max_attempts: int, summary: BatchSummary
) -> List[BatchItem]:
    """The items this run should do: not done yet, and failed ones if retried and under the cap."""
    records = manifest.load()
    work = []
    for item in batch_input.items:
        record = records.get(item.id)
        if record is not None and record.state == "done":
            summary.skipped += 1
        elif record is not None and record.state == "failed" and (not retry_failed or record.attempts >= max_attempts):
            summary.failed += 1
        else:
            work.append(item)
    return work


def previous_attempts(manifest_records: Dict[str, Any], item_id: str) -> int:
    """Attempts an item had before this run."""
    record = manifest_records.get(item_id)
    return int(record.attempts) if record is not None else 0


def write_summary(out_dir: Path, summary: BatchSummary) -> None:
    """``summary.json`` next to the manifest, written atomically."""
    write_atomic(
        out_dir / "summary.json",
        json.dumps(summary.as_dict(), indent=2, sort_keys=True).encode("utf-8"),
        overwrite=True,
    )
