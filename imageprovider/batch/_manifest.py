"""
imageprovider.batch._manifest
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~

The crash-safe record of a batch run: ``<out_dir>/manifest.jsonl``, one
compact JSON object per finished item, appended with a single ``os.write`` on
an ``O_APPEND`` descriptor and fsynced before the call returns. A line without
its newline was never committed (the process died mid-write), so reading
ignores it and cuts it off before anything new is appended. A rerun after
``kill -9`` at any moment therefore sees every item as done, failed, or not
recorded (to be done again), and never as something in between.

Usage::

    with Manifest("out") as manifest:
        Manifest.clean_partial_files("out")
        finished = manifest.load()
        manifest.done("cat", files=["out/cat.png"], usage=None, request_id="req_1",
                      revised_prompts=[None], attempts=1)
"""

import datetime
import fnmatch
import json
import os
import threading
import warnings
from pathlib import Path
from typing import Any, Dict, List, Mapping, NamedTuple, Optional

from .._files import PathLike, ensure_folder, fsync_folder, open_no_follow

#: File name of the manifest inside the output folder.
MANIFEST_NAME = "manifest.jsonl"
#: States a record can end in.
STATES = ("done", "failed")
#: Names of the temporary files :mod:`imageprovider._files` writes before renaming.
PARTIAL_FILE_PATTERN = ".imageprovider-*.part"

_RESERVED_KEYS = frozenset(
    (
        "id",
        "state",
        "attempts",
        "time",
        "files",
        "usage",
        "request_id",
        "revised_prompts",
        "error_class",
        "message",
        "line",
    )
)
#: Bytes read per step when looking backwards for the last complete line.
_TAIL_CHUNK = 64 * 1024


class ItemRecord(NamedTuple):
    """The latest recorded state of one item."""

    #: The item's id, as given to :meth:`Manifest.done` / :meth:`Manifest.failed`.
    id: str
    #: ``"done"`` or ``"failed"``.
    state: str
    #: Attempts so far for this item, across runs (0 if the line did not say).
    attempts: int
    #: The whole line as written.
    data: Dict[str, Any]


class Manifest:
    """Append-only, fsynced record of finished items in ``<out_dir>/manifest.jsonl``.

    Thread-safe: each record is written whole under a lock, so lines from
    several threads never interleave. One run (process) should own a manifest
    at a time: :meth:`load` may cut off a line another process is still writing.

    :param out_dir: the batch's output folder; created if missing.
    """

    def __init__(self, out_dir: PathLike) -> None:
        ensure_folder(out_dir)
        #: The folder the manifest lives in.
        self.out_dir: str = os.fspath(out_dir)
        #: Full path of ``manifest.jsonl``.
        self.path: str = os.path.join(self.out_dir, MANIFEST_NAME)
        self._lock = threading.Lock()
        # O_BINARY matters on Windows only: no "\r\n" translation, so a line is
        # exactly the bytes we hand to os.write.
        # Never through a symbolic link: a planted one would have us truncate and append to its target.
        self._fd: Optional[int] = open_no_follow(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        # Until the tail has been checked, a torn line left by a killed run may
        # end the file; the first append checks, so it never continues that line.
        self._tail_checked = False
        # A new file's name is durable only once its folder is synced.
        fsync_folder(Path(self.out_dir))

    def __repr__(self) -> str:
        return "<Manifest {!r}{}>".format(self.path, "" if self._fd is not None else " (closed)")

    def __enter__(self) -> "Manifest":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        # Like an unclosed file: warn, then release the descriptor.
        if getattr(self, "_fd", None) is not None:
            warnings.warn(f"unclosed {self!r}", ResourceWarning, stacklevel=2)
            self.close()

    def close(self) -> None:
        """Close the manifest; safe to call more than once."""
        with self._lock:
            if self._fd is not None:
                fd, self._fd = self._fd, None
                os.close(fd)

    def load(self) -> Dict[str, ItemRecord]:
        """The latest record per item id, in file order.

        A torn last line is ignored and cut off the file. Lines that are not
        JSON objects with a string ``"id"`` and a ``"state"`` of ``"done"`` or
        ``"failed"`` are ignored (and left in place).

        :raises ValueError: the manifest is closed.
        """
        with self._lock:
            self._require_open()
            self._repair_tail()
            with os.fdopen(open_no_follow(self.path, os.O_RDONLY), "rb") as stream:
                content = stream.read()
        records: Dict[str, ItemRecord] = {}
        # Only newline-terminated lines are committed.
        for raw in content[: content.rfind(b"\n") + 1].split(b"\n"):
            record = _parse_line(raw)
            if record is not None:
                records[record.id] = record
        return records

    def done(
        self,
        item_id: str,
        *,
        files: List[str],
        usage: Optional[Dict[str, Any]],
        request_id: Optional[str],
        revised_prompts: List[Optional[str]],
        attempts: int,
        extra: Optional[Dict[str, Any]] = None,
    ) -> None:
        """Record ``item_id`` as done, durably, before returning.

        :param files: paths of the saved images.
        :param usage: the response's token usage, if any.
        :param request_id: the last request's ``x-request-id``.
        :param revised_prompts: one per image (``None`` where the API gave none).
        :param attempts: attempts so far for this item, across runs.
        :param extra: further keys for the line; must not reuse the manifest's own keys.
        """
        self._append(
            item_id,
            "done",
            attempts,
            {"files": list(files), "usage": usage, "request_id": request_id, "revised_prompts": list(revised_prompts)},
            extra,
        )

    def failed(
        self,
        item_id: str,
        *,
        error_class: str,
        message: str,
        request_id: Optional[str],
        attempts: int,
        line: Optional[int] = None,
        extra: Optional[Dict[str, Any]] = None,
    ) -> None:
        """Record ``item_id`` as failed, durably, before returning.

        :param error_class: the exception's class name (``"RateLimitError"``).
        :param message: the error message.
        :param request_id: the last request's ``x-request-id``, if a response came.
        :param attempts: attempts so far for this item, across runs.
        :param line: (optional) the item's line number in the batch input.
        :param extra: further keys for the line; must not reuse the manifest's own keys.
        """
        self._append(
            item_id,
            "failed",
            attempts,
            {"error_class": error_class, "message": message, "request_id": request_id, "line": line},
            extra,
        )

    @staticmethod
    def clean_partial_files(out_dir: PathLike) -> List[str]:
        """Remove temporary files a killed atomic write left in ``out_dir``; return their names, sorted.

        Only regular files named ``.imageprovider-*.part`` directly in
        ``out_dir`` are removed. Call it before the run writes anything: a
        write in progress has such a file too.
        """
        folder = os.fspath(out_dir)
        removed: List[str] = []
        try:
            entries = list(os.scandir(folder))
        except FileNotFoundError:
            return removed
        for entry in entries:
            # fnmatchcase: the pattern is exact on every platform.
            if not fnmatch.fnmatchcase(entry.name, PARTIAL_FILE_PATTERN):
                continue
            try:
                if not entry.is_file(follow_symlinks=False):
                    continue
                os.unlink(entry.path)
            except FileNotFoundError:
                continue
            removed.append(entry.name)
        return sorted(removed)

    # --- internals (callers hold self._lock where noted) --------------------

    def _require_open(self) -> int:
        if self._fd is None:
            raise ValueError(f"I/O operation on a closed Manifest ({self.path})")
        return self._fd

    def _append(
        self, item_id: str, state: str, attempts: int, fields: Dict[str, Any], extra: Optional[Dict[str, Any]]
    ) -> None:
        if not isinstance(item_id, str):
            raise TypeError(f"item_id must be a str, not {type(item_id).__name__}")
        if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 0:
            raise ValueError(f"attempts must be an int >= 0, not {attempts!r}")
        clashes = sorted(_RESERVED_KEYS.intersection(extra or ()))
        if clashes:
            raise ValueError("extra must not set the manifest's own keys: {}".format(", ".join(clashes)))
        record: Dict[str, Any] = {"id": item_id, "state": state, "attempts": attempts, "time": _now()}
        record.update(fields)
        record.update(extra or {})
        # Serialised before taking the lock, so an unserialisable value raises
        # with nothing written. ASCII-only output cannot fail to encode.
        line = (json.dumps(record, separators=(",", ":")) + "\n").encode("ascii")
        with self._lock:
            fd = self._require_open()
            if not self._tail_checked:
                self._repair_tail()
            try:
                _write_all(fd, line)
                os.fsync(fd)
            except BaseException:
                # Part of the line may be in the file: the next append cuts it off first.
                self._tail_checked = False
                raise

    def _repair_tail(self) -> None:
        """Cut the file after its last newline, if anything follows it. Caller holds the lock."""
        fd = self._require_open()
        size = os.fstat(fd).st_size
        keep = _complete_length(self.path, size)
        if keep < size:
            os.ftruncate(fd, keep)
            os.fsync(fd)
        self._tail_checked = True


def summarize(records: Mapping[str, ItemRecord]) -> Dict[str, int]:
    """How many records are in each state: ``{"done": n, "failed": m}`` (both keys always present)."""
    counts = {state: 0 for state in STATES}
    for record in records.values():
        counts[record.state] = counts.get(record.state, 0) + 1
    return counts


def _now() -> str:
    # "+00:00" rather than "Z": datetime.fromisoformat reads it back on 3.8-3.10 too.
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")


def _write_all(fd: int, data: bytes) -> None:
    # One os.write normally writes the whole line; a short write (disk full,
    # signal) is finished here rather than left torn.
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written <= 0:
            raise OSError("os.write wrote nothing to the manifest")
        view = view[written:]


def _complete_length(path: str, size: int) -> int:
    """Length of ``path``'s first ``size`` bytes up to and including the last newline."""
    if size == 0:
        return 0
    with os.fdopen(open_no_follow(path, os.O_RDONLY), "rb") as stream:
        end = size
        while end > 0:
            start = max(0, end - _TAIL_CHUNK)
            stream.seek(start)
            chunk = stream.read(end - start)
            newline = chunk.rfind(b"\n")
            if newline >= 0:
                return start + newline + 1
            end = start
    return 0


def _parse_line(raw: bytes) -> Optional[ItemRecord]:
    """The record on one line, or ``None`` for blank lines and anything not a valid record."""
    if not raw.strip():
        return None
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    if not isinstance(data, dict):
        return None
    item_id, state, attempts = data.get("id"), data.get("state"), data.get("attempts")
    if not isinstance(item_id, str) or state not in STATES:
        return None
    if isinstance(attempts, bool) or not isinstance(attempts, int):
        attempts = 0
    return ItemRecord(item_id, state, attempts, data)
