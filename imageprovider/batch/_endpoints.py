"""
imageprovider.batch._endpoints
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~

OpenAI's files and batches endpoints, which only the Batch API mode uses:
upload an input file, start a batch over it, follow it, cancel it, and
download its result files. Requests go through the provider's transport, so
they get its credentials, retries and timeouts.
"""

import sys
from typing import IO, Any, Dict, Mapping, Optional, Tuple
from urllib.parse import quote

from .. import _multipart, _response
from .._config import TimeoutArg, resolve_timeout
from .._request import encode_json
from ..exceptions import RequestValidationError
from ..provider import OpenAIImageProvider

#: Endpoints OpenAI's Batch API runs for images (JSON bodies only).
BATCH_ENDPOINTS = ("/v1/images/generations", "/v1/images/edits")


class BatchAPIClient:
    """The files and batches endpoints, through ``provider``'s transport.

    Usage::

        >>> client = BatchAPIClient(provider)
        >>> uploaded = client.upload_file(lines, filename="requests.jsonl")
        >>> batch = client.create_batch(uploaded["id"], "/v1/images/generations")
    """

    def __init__(self, provider: OpenAIImageProvider) -> None:
        self._transport = provider.transport
        self._default_timeout = provider.settings.timeout

    def upload_file(
        self, data: bytes, *, filename: str, purpose: str = "batch", timeout: TimeoutArg = None
    ) -> Dict[str, Any]:
        """Upload ``data`` (``POST /files``); returns the file object (``id``, ``bytes``...)."""
        if not isinstance(data, (bytes, bytearray)) or not isinstance(filename, str) or not filename:
            raise RequestValidationError("upload_file needs bytes and a file name", param="file")
        payload, content_type = _multipart.encode(
            {"purpose": purpose}, [("file", (filename, bytes(data), "application/jsonl"))]
        )
        sent = self._transport.request(
            "POST", "/files", body=payload, content_type=content_type, timeout=self._timeout(timeout)
        )
        return _response.read_json(sent, "openai_file")

    def create_batch(
        self,
        input_file_id: str,
        endpoint: str,
        *,
        completion_window: str = "24h",
        metadata: Optional[Mapping[str, str]] = None,
        timeout: TimeoutArg = None,
    ) -> Dict[str, Any]:
        """Start a batch over an uploaded JSONL file (``POST /batches``); returns the batch object."""
        if endpoint not in BATCH_ENDPOINTS:
            raise RequestValidationError(
                "Parameter 'endpoint' must be one of {}".format(", ".join(BATCH_ENDPOINTS)), param="endpoint"
            )
        if completion_window != "24h":
            raise RequestValidationError("Parameter 'completion_window' must be '24h'", param="completion_window")
        body: Dict[str, Any] = {
            "input_file_id": input_file_id,
            "endpoint": endpoint,
            "completion_window": completion_window,
        }
        if metadata:
            body["metadata"] = dict(metadata)
        sent = self._transport.request(
            "POST",
            "/batches",
            body=encode_json(body),
            content_type="application/json",
            timeout=self._timeout(timeout),
        )
        return _response.read_json(sent, "batch")

    def retrieve_batch(self, batch_id: str, *, timeout: TimeoutArg = None) -> Dict[str, Any]:
        """The batch object as it stands (``GET /batches/{id}``)."""
        sent = self._transport.request("GET", "/batches/" + quote(batch_id, safe=""), timeout=self._timeout(timeout))
        return _response.read_json(sent, "batch")

    def cancel_batch(self, batch_id: str, *, timeout: TimeoutArg = None) -> Dict[str, Any]:
        """Ask for a batch to stop (``POST /batches/{id}/cancel``); returns the batch object."""
        sent = self._transport.request(
            "POST", "/batches/{}/cancel".format(quote(batch_id, safe="")), timeout=self._timeout(timeout)
        )
        return _response.read_json(sent, "batch")

    def download_file(
        self, file_id: str, sink: IO[bytes], *, timeout: TimeoutArg = None, max_bytes: Optional[int] = None
    ) -> int:
        """Stream a file's content (``GET /files/{id}/content``) into ``sink``; returns the bytes written.

        :param max_bytes: (optional) most bytes written, counted after decoding.
        :raises ResponseValidationError: the file is larger than ``max_bytes``.
        """
        sent = self._transport.request(
            "GET",
            "/files/{}/content".format(quote(file_id, safe="")),
            timeout=self._timeout(timeout),
            accept="*/*",
        )
        # Result files go to disk, not memory, and may be gigabytes: their lines are bounded when read.
        return _response.copy_body(
            sent,
            sink,
            max_bytes=sys.maxsize if max_bytes is None else max_bytes,
            what="The result file",
            limit="bound of one line per request (Limits.max_batch_line_bytes)",
        )

    def _timeout(self, timeout: TimeoutArg) -> Optional[Tuple[float, float]]:
        return resolve_timeout(timeout, self._default_timeout) if timeout is not None else None
