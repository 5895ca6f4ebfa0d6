"""
imageprovider.batch
~~~~~~~~~~~~~~~~~~~

Thousands of prompts to files: online, with a thread pool at the rate limit
(:func:`run_batch`), or through OpenAI's Batch API (:func:`run_batch_api`).
Both are resumable: ``manifest.jsonl`` in the output folder records every
item as ``done`` or ``failed``, and a rerun finishes what is left.
"""

from ._batch_api import MAX_BYTES_PER_BATCH, MAX_REQUESTS_PER_BATCH, run_batch_api
from ._common import BatchSummary
from ._endpoints import BATCH_ENDPOINTS, BatchAPIClient
from ._input import BatchInput, BatchItem, DuplicateIdError, InputProblem, item_id, parse_objects, read_items
from ._limiter import BatchLimiter
from ._manifest import MANIFEST_NAME, ItemRecord, Manifest
from ._online import BatchProgress, run_batch

__all__ = [
    "BATCH_ENDPOINTS",
    "BatchAPIClient",
    "BatchInput",
    "BatchItem",
    "BatchLimiter",
    "BatchProgress",
    "BatchSummary",
    "DuplicateIdError",
    "InputProblem",
    "ItemRecord",
    "MANIFEST_NAME",
    "MAX_BYTES_PER_BATCH",
    "MAX_REQUESTS_PER_BATCH",
    "Manifest",
    "item_id",
    "parse_objects",
    "read_items",
    "run_batch",
    "run_batch_api",
]
