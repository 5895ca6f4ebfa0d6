"""
imageprovider.testing._batches
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~

The Files and Batch API as the stand-in server keeps them: uploaded files in
memory, and batches that move from ``validating`` through ``in_progress`` to
``completed`` after a configurable time, when every input line is run through
the same request handling as a live call and real output and error files are
written.
"""

import json
import threading
import time
import uuid
from typing import Any, Callable, Dict, List, Optional, Tuple

__all__ = ["BatchStore", "FileStore", "MAX_BATCH_LINES"]

#: Largest number of requests in one batch input file.
MAX_BATCH_LINES = 50_000
#: Endpoints a batch may target.
BATCH_ENDPOINTS = ("/v1/images/generations", "/v1/images/edits")

#: Runs one batch line: (endpoint, body) -> (status, request id, response body).
LineRunner = Callable[[str, Dict[str, Any]], Tuple[int, str, Dict[str, Any]]]


class BatchInputError(ValueError):
    """A create-batch request the API would refuse with a 400."""

    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.param = param


class FileStore:
    """Files uploaded with ``POST /v1/files``, kept in memory."""

    def __init__(self) -> None:
        self._files: Dict[str, Tuple[Dict[str, Any], bytes]] = {}
        self._lock = threading.Lock()

    def add(self, filename: str, purpose: str, data: bytes) -> Dict[str, Any]:
        """Store ``data`` and return its file object."""
        file_id = "file-" + uuid.uuid4().hex[:24]
        meta: Dict[str, Any] = {
            "id": file_id,
            "object": "file",
            "bytes": len(data),
            "created_at": int(time.time()),
            "expires_at": None,
            "filename": filename,
            "purpose": purpose,
            "status": "processed",
            "status_details": None,
        }
        with self._lock:
            self._files[file_id] = (meta, data)
        return meta

    def get(self, file_id: str) -> Optional[Tuple[Dict[str, Any], bytes]]:
        """The file object and content, or ``None``."""
        with self._lock:
            return self._files.get(file_id)


class BatchStore:
    """Batches that complete ``completion_seconds`` after creation.

    :param run_line: handles one request line exactly as a live request.
    """

    def __init__(self, files: FileStore, run_line: LineRunner, completion_seconds: float = 2.0) -> None:
        self._files = files
        self._run_line = run_line
        self.completion_seconds = completion_seconds
        self._batches: Dict[str, Dict[str, Any]] = {}
        self._started: Dict[str, float] = {}
        self._lock = threading.Lock()

    def create(self, body: Dict[str, Any]) -> Dict[str, Any]:
        """Create a batch from a ``POST /v1/batches`` body.

        :raises BatchInputError: a field is missing or wrong.
        """
        input_file_id = body.get("input_file_id")
        endpoint = body.get("endpoint")
        stored = self._files.get(input_file_id) if isinstance(input_file_id, str) else None
        if stored is None:
            raise BatchInputError(f"No such file: {input_file_id!r}", "input_file_id")
        if stored[0]["purpose"] != "batch":
            raise BatchInputError("The input file must be uploaded with purpose 'batch'", "input_file_id")
        if endpoint not in BATCH_ENDPOINTS:
            raise BatchInputError("endpoint must be one of {}".format(", ".join(BATCH_ENDPOINTS)), "endpoint")
        if body.get("completion_window") != "24h":
            raise BatchInputError("completion_window must be '24h'", "completion_window")
        metadata = body.get("metadata")
        if metadata is not None and not isinstance(metadata, dict):
            raise BatchInputError("metadata must be an object", "metadata")
        now = int(time.time())
        batch = {
            "id": "batch_" + uuid.uuid4().hex[:24],
            "object": "batch",
            "endpoint": endpoint,
            "errors": None,
            "input_file_id": input_file_id,
            "completion_window": "24h",
            "status": "validating",
            "output_file_id": None,
            "error_file_id": None,
            "created_at": now,
            "in_progress_at": None,
            "expires_at": now + 24 * 3600,
            "finalizing_at": None,
            "completed_at": None,
            "failed_at": None,
            "expired_at": None,
            "cancelling_at": None,
            "cancelled_at": None,
            "request_counts": {"total": 0, "completed": 0, "failed": 0},
            "metadata": metadata,
        }
        with self._lock:
            self._batches[batch["id"]] = batch
            self._started[batch["id"]] = time.monotonic()
        return dict(batch)

    def get(self, batch_id: str) -> Optional[Dict[str, Any]]:
        """The batch, advanced to where time has brought it; ``None`` if unknown."""
        with self._lock:
            batch = self._batches.get(batch_id)
            if batch is None:
                return None
            self._advance(batch)
            return _copy(batch)

    def cancel(self, batch_id: str) -> Optional[Dict[str, Any]]:
        """Cancel a batch that has not finished; ``None`` if unknown."""
        with self._lock:
            batch = self._batches.get(batch_id)
            if batch is None:
                return None
            self._advance(batch)
            if batch["status"] in ("validating", "in_progress"):
                now = int(time.time())
                batch.update(status="cancelled", cancelling_at=now, cancelled_at=now)
            return _copy(batch)

    # -- progress --------------------------------------------------------

    def _advance(self, batch: Dict[str, Any]) -> None:
        if batch["status"] not in ("validating", "in_progress"):
            return
        elapsed = time.monotonic() - self._started[batch["id"]]
        if batch["status"] == "validating":
            lines, problem = self._read_lines(batch["input_file_id"])
            if problem is not None:
                batch.update(status="failed", failed_at=int(time.time()), errors={"object": "list", "data": [problem]})
                return
            batch.update(status="in_progress", in_progress_at=int(time.time()))
            batch["request_counts"]["total"] = len(lines)
        if elapsed >= self.completion_seconds:
            self._complete(batch)

    def _read_lines(self, file_id: str) -> Tuple[List[Dict[str, Any]], Optional[Dict[str, Any]]]:
        stored = self._files.get(file_id)
        data = stored[1] if stored else b""
        lines: List[Dict[str, Any]] = []
        seen = set()
        for number, raw in enumerate(data.decode("utf-8", "replace").splitlines(), start=1):
            if not raw.strip():
                continue
            try:
                line = json.loads(raw)
            except ValueError:
                return [], {
                    "code": "invalid_json_line",
                    "message": f"Line {number} is not valid JSON",
                    "param": None,
                    "line": number,
                }
            if (
                not isinstance(line, dict)
                or not isinstance(line.get("custom_id"), str)
                or not isinstance(line.get("body"), dict)
                or line.get("method") != "POST"
            ):
                return [], {
                    "code": "invalid_request",
                    "message": f"Line {number} needs custom_id, method POST, url and body",
                    "param": None,
                    "line": number,
                }
            if line["custom_id"] in seen:
                return [], {
                    "code": "duplicate_custom_id",
                    "message": "Line {} repeats custom_id {!r}".format(number, line["custom_id"]),
                    "param": "custom_id",
                    "line": number,
                }
            seen.add(line["custom_id"])
            lines.append(line)
        if not lines or len(lines) > MAX_BATCH_LINES:
            return [], {
                "code": "invalid_line_count",
                "message": f"A batch needs 1 to {MAX_BATCH_LINES} requests",
                "param": None,
                "line": None,
            }
        return lines, None

    def _complete(self, batch: Dict[str, Any]) -> None:
        lines, _ = self._read_lines(batch["input_file_id"])
        outputs: List[Dict[str, Any]] = []
        errors: List[Dict[str, Any]] = []
        for line in lines:
            url = line.get("url")
            if url != batch["endpoint"]:
                status, request_id, body = (
                    400,
                    "req_" + uuid.uuid4().hex[:16],
                    {
                        "error": {
                            "message": f"Line url {url!r} differs from the batch endpoint",
                            "type": "invalid_request_error",
                            "param": "url",
                            "code": "invalid_url",
                        }
                    },
                )
            else:
                status, request_id, body = self._run_line(url, line["body"])
            record = {
                "id": "batch_req_" + uuid.uuid4().hex[:24],
                "custom_id": line["custom_id"],
                "response": {"status_code": status, "request_id": request_id, "body": body},
                "error": None,
            }
            (outputs if status == 200 else errors).append(record)
        now = int(time.time())
        if outputs:
            batch["output_file_id"] = self._write(batch["id"] + "_output.jsonl", outputs)
        if errors:
            batch["error_file_id"] = self._write(batch["id"] + "_error.jsonl", errors)
        batch["request_counts"].update(total=len(lines), completed=len(outputs), failed=len(errors))
        batch.update(status="completed", finalizing_at=now, completed_at=now)

    def _write(self, name: str, records: List[Dict[str, Any]]) -> str:
        text = "".join(json.dumps(record, separators=(",", ":")) + "\n" for record in records)
        return str(self._files.add(name, "batch_output", text.encode("utf-8"))["id"])


def _copy(batch: Dict[str, Any]) -> Dict[str, Any]:
    # A deep copy, so callers never hold the live record.
    copied: Dict[str, Any] = json.loads(json.dumps(batch))
    return copied
