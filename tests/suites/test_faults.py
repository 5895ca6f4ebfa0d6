"""One table of faults, each injected over real sockets and followed through three paths.

Every row of :data:`ROWS` is one misbehaviour of the server (or of the network
in front of it) and the exact outcome the library promises for it: the error
class raised (or success), how many requests the server saw, the retry waits
the client asked for (recorded by the ``sleeps`` fixture instead of slept),
whether the request may have been billed, and what the retry policy promises.

Each row runs three times, each time against a fresh stand-in server with the
same fault scripted (or the same dead port, or the same full listen queue):

1. **api**: the Python API (``generate_image``, ``stream_image``, or a URL
   result's ``save``), saving whatever it got into a folder;
2. **cli**: ``imageprovider generate -o FOLDER/`` in-process, the save path of
   the command line (``--stream`` for stream rows);
3. **batch**: ``imageprovider batch`` with a one-item JSONL file.

After each, the output folder must hold complete, valid images or nothing: no
``.part`` temporary files, no empty or truncated files; and a batch's
``manifest.jsonl`` must hold whole JSON lines only, with the item in the right
state. No ``responses`` mocks here: every byte crosses a loopback socket.

At the end the module prints ``N faults, N survived``.
"""

import json
import os
import re
import socket
import struct
import sys
import time
import zlib
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple, Type, Union

import pytest
from helpers import BEFORE_SHUTDOWNS

from imageprovider import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    ContentPolicyError,
    ImageExpiredError,
    InternalServerError,
    OpenAIImageProvider,
    PartialImage,
    ResponseValidationError,
)
from imageprovider._saving import safe_stem
from imageprovider.batch import _limiter
from imageprovider.cli import main as cli_main
from imageprovider.testing import FAKE_API_KEY, FakeImagesServer, RecordedRequest

PROMPT = "A red fox in the snow"
STEM = safe_stem(PROMPT)
SIZE = "1024x1024"
ITEM_ID = "item-1"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

#: A wait the client must have asked for: exactly this many seconds, or within (low, high).
Wait = Union[float, Tuple[float, float]]
#: The first and second backoff: min(0.5 * 2**n, 8) s, less up to 25 % jitter.
BACKOFF_1 = (0.375, 0.5)
BACKOFF_2 = (0.75, 1.0)
#: Timeouts for rows that are not about timeouts: long enough for a loaded machine.
RELAXED = (5.0, 30.0)
#: Timeouts for the timeout rows: short, so the suite stays fast.
SHORT = (0.3, 0.3)
#: Upper bound on one path's wall time in the timeout rows: generous, and far
#: below the server's own stall (30 s), so it still shows the client gave up.
TIMEOUT_BOUND = 10.0
#: "Same as the row's error": the default of Row.batch_error.
SAME = "same"

EXIT_CODES = {
    None: 0,
    APIConnectionError: 4,
    APITimeoutError: 4,
    ResponseValidationError: 5,
}


@dataclass(frozen=True)
class Row:
    """One fault and everything the library promises about it."""

    id: str
    #: The stand-in's fault in its text form (``None``: the target itself is the fault).
    fault: Optional[str]
    #: The error raised, or ``None`` for success.
    error: Optional[Type[Exception]]
    #: Requests the server recorded: image calls and URL downloads.
    requests: int
    #: Retry waits the client asked for, in order.
    waits: Tuple[Wait, ...]
    #: May the request have been billed? "no", "maybe" (the server had it) or "yes" (the image was made).
    billed: str
    #: The retry behaviour the README promises for this fault.
    promise: str
    #: "fake" (a stand-in server), "stopped" (a stand-in that was stopped: its port refuses)
    #: or "full-backlog" (a listener whose accept queue is full: connects time out).
    target: str = "fake"
    #: "generate", "stream" (partial_images=1) or "url" (dall-e-3 URL result, then a download).
    call: str = "generate"
    #: ``error.attempts`` when it differs from ``requests`` (nothing reached the server).
    client_attempts: Optional[int] = None
    #: ``APITimeoutError.phase``.
    phase: Optional[str] = None
    #: ``APIStatusError.status_code``.
    status: Optional[int] = None
    #: A pattern the error message must match: it names the real cause.
    reason: Optional[str] = None
    #: (connect, read) timeouts of the client.
    timeout: Tuple[float, float] = RELAXED
    #: Upper bound on each path's wall time, in seconds.
    max_seconds: Optional[float] = None
    #: Error class name recorded by the one-item batch (which never streams), or ``None`` for done.
    batch_error: Optional[str] = SAME
    #: In a batch, 429s go back through the shared limiter, which waits them out (virtual time
    #: here): its total wait, as (low, high), when the row has 429s; real time passing meanwhile
    #: counts towards the pause, hence the slack below it. urllib3 then waits nothing.
    batch_pause: Optional[Tuple[float, float]] = None
    #: Options of the stand-in server.
    server: Dict[str, Any] = field(default_factory=dict)

    @property
    def expected_attempts(self) -> int:
        return self.requests if self.client_attempts is None else self.client_attempts

    @property
    def batch_error_name(self) -> Optional[str]:
        if self.batch_error == SAME:
            return None if self.error is None else self.error.__name__
        return self.batch_error


ROWS = [
    Row(
        "429-retry-after",
        "429,retry-after=2",
        None,
        requests=2,
        waits=(2.0,),
        billed="no",
        promise="retried, after exactly the server's retry-after (in a batch: every worker pauses)",
        batch_pause=(1.8, 2.3),
    ),
    Row(
        "429-no-retry-after",
        "429,times=2",
        None,
        requests=3,
        waits=(BACKOFF_1, BACKOFF_2),
        billed="no",
        promise="retried with exponential backoff and jitter (in a batch: a 1 s pause of every worker)",
        batch_pause=(1.8, 2.6),
    ),
    Row(
        "429-retry-after-ms",
        "429,retry-after=7,retry-after-ms=250",
        None,
        requests=2,
        waits=(0.25,),
        billed="no",
        promise="retried after retry-after-ms, which wins over retry-after",
        batch_pause=(0.05, 0.55),
    ),
    Row(
        "429-absurd-retry-after",
        "429,retry-after=100000",
        None,
        requests=2,
        waits=(60.0,),
        billed="no",
        promise="retried, the server's wait capped at max_retry_after (60 s)",
        batch_pause=(59.8, 60.3),
    ),
    Row(
        "5xx-then-success",
        "500,times=2",
        None,
        requests=3,
        waits=(BACKOFF_1, BACKOFF_2),
        billed="no",
        promise="retried with backoff until it succeeds (two retries by default)",
    ),
    Row(
        "503-x-should-retry-false",
        "503,x-should-retry=false",
        InternalServerError,
        requests=1,
        waits=(),
        status=503,
        billed="no",
        promise="not retried: x-should-retry: false overrides the status",
    ),
    Row(
        "connection-refused",
        None,
        APIConnectionError,
        target="stopped",
        requests=0,
        client_attempts=3,
        waits=(BACKOFF_1, BACKOFF_2),
        reason=r"(?i)refused",
        billed="no",
        promise="retried with backoff: nothing reached the server",
    ),
    Row(
        "connect-timeout",
        None,
        APITimeoutError,
        target="full-backlog",
        requests=0,
        client_attempts=3,
        waits=(BACKOFF_1, BACKOFF_2),
        phase="connect",
        timeout=SHORT,
        max_seconds=TIMEOUT_BOUND,
        billed="no",
        promise="retried with backoff: no connection, so nothing was sent",
    ),
    Row(
        "closed-before-status-line",
        "drop",
        APIConnectionError,
        requests=1,
        waits=(),
        reason=r"(?i)closed|without response|aborted",
        billed="maybe",
        promise="not retried: the request was sent, the server may be generating it",
    ),
    Row(
        "reset-before-status-line",
        "reset",
        APIConnectionError,
        requests=1,
        waits=(),
        reason=r"(?i)reset",
        billed="maybe",
        promise="not retried: the request was sent, the server may be generating it",
    ),
    Row(
        "closed-mid-body",
        "drop-mid-body",
        APIConnectionError,
        requests=1,
        waits=(),
        reason=r"(?i)cut short",
        billed="yes",
        promise="not retried: a 200 had started, the image was made",
    ),
    Row(
        "reset-mid-body",
        "reset-mid-body",
        APIConnectionError,
        requests=1,
        waits=(),
        reason=r"(?i)reset|cut short",
        billed="yes",
        promise="not retried: a 200 had started, the image was made",
    ),
    Row(
        "slow-headers",
        "delay=30",
        APITimeoutError,
        requests=1,
        waits=(),
        phase="read",
        timeout=SHORT,
        max_seconds=TIMEOUT_BOUND,
        billed="maybe",
        promise="read timeout not retried by default (retry_read_timeouts=True to retry)",
    ),
    Row(
        "slow-body",
        "slow-body=30",
        APITimeoutError,
        requests=1,
        waits=(),
        phase="read",
        reason="stalled for longer than the read timeout while its body was arriving",
        timeout=SHORT,
        max_seconds=TIMEOUT_BOUND,
        billed="yes",
        promise="read timeout not retried by default; the 200 had started",
    ),
    Row(
        "invalid-json",
        "invalid-json",
        ResponseValidationError,
        requests=1,
        waits=(),
        billed="yes",
        promise="not retried: a 200 is final, however broken its body",
    ),
    Row(
        "schema-violation",
        "bad-schema",
        ResponseValidationError,
        requests=1,
        waits=(),
        billed="yes",
        promise="not retried: a 200 is final, however broken its body",
    ),
    Row(
        "html-502-from-proxy",
        "html-error=502,times=3",
        InternalServerError,
        requests=3,
        waits=(BACKOFF_1, BACKOFF_2),
        status=502,
        reason=r"HTTP 502 Bad Gateway \(non-JSON body: '<html>",
        billed="no",
        promise="retried like any 502; the last one raised with the page's start as its body",
    ),
    Row(
        "moderation-blocked",
        "moderation",
        ContentPolicyError,
        requests=1,
        waits=(),
        status=400,
        billed="no",
        promise="never retried: the same prompt is refused again",
    ),
    Row(
        "stream-cut",
        "stream-cut",
        APIConnectionError,
        call="stream",
        requests=1,
        waits=(),
        reason=r"(?i)cut short|before every image",
        billed="yes",
        promise="nothing is retried once events have arrived",
        # A batch never streams: on a plain request the stand-in cuts the JSON body instead.
        batch_error="APIConnectionError",
    ),
    Row(
        "stream-error-event",
        "stream-error",
        InternalServerError,
        call="stream",
        requests=1,
        waits=(),
        reason=r"Stream failed",
        billed="yes",
        promise="nothing is retried once events have arrived",
        # A batch never streams, and an error event has no meaning on a plain request:
        # the stand-in answers it normally and the item must come out done, whole.
        batch_error=None,
    ),
    Row(
        "expired-url",
        None,
        ImageExpiredError,
        call="url",
        server={"url_ttl": 0.0},
        requests=2,
        client_attempts=1,
        waits=(),
        status=403,
        billed="yes",
        promise="the download's 403 is final: the image was made, its URL is gone",
    ),
]


# -- the summary line ---------------------------------------------------------------


@pytest.fixture(scope="module")
def fault_report(request: pytest.FixtureRequest) -> Iterator[Dict[str, bool]]:
    """Row id -> whether its expectation held; prints ``N faults, N survived`` at the end."""
    results: Dict[str, bool] = {}
    yield results
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    line = f"{len(results)} faults, {sum(results.values())} survived"
    if reporter is not None:
        # Fixture teardown runs under output capture; step out of it to reach the terminal.
        with capture.global_and_fixture_disabled() if capture is not None else nullcontext():
            reporter.write_line("")
            reporter.write_line(line)


# -- targets ------------------------------------------------------------------------


@dataclass
class Target:
    base_url: str
    #: Requests the server recorded so far.
    seen: Callable[[], List[RecordedRequest]]


def _fill_accept_queue(listener: socket.socket) -> List[socket.socket]:
    """Connect to ``listener`` (listen backlog 0, never accepting) until a connect times out."""
    address = listener.getsockname()
    fillers: List[socket.socket] = []
    for _ in range(8):
        probe = socket.socket()
        probe.settimeout(0.25)
        try:
            probe.connect(address)
        except socket.timeout:
            probe.close()
            if fillers:  # backlog 0 queues one connection on Linux: a timeout before that is not "full"
                return fillers
            continue
        fillers.append(probe)
    for filler in fillers:
        filler.close()
    raise AssertionError("the listen queue never filled: connects did not time out")


@contextmanager
def target_for(row: Row) -> Iterator[Target]:
    """A fresh target for one path of one row, with the row's fault scripted."""
    if row.target == "full-backlog":
        # A connect timeout, deterministically and offline: Linux drops the SYNs
        # that arrive while a listener's accept queue is full, so the client's
        # connect() waits until its own connect timeout. (An unroutable address
        # is not reliable offline: it may fail at once with "network unreachable".)
        if not sys.platform.startswith("linux"):
            pytest.skip("a full accept queue drops SYNs on Linux; elsewhere it may refuse instead")
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        fillers = _fill_accept_queue(listener)
        try:
            yield Target(f"http://127.0.0.1:{listener.getsockname()[1]}/v1", list)
            # Nothing but the fillers was ever queued: no attempt got a connection.
            listener.setblocking(False)
            accepted = 0
            while True:
                try:
                    connection, _ = listener.accept()
                except (BlockingIOError, socket.timeout):
                    break
                connection.close()
                accepted += 1
            assert accepted == len(fillers)
        finally:
            for filler in fillers:
                filler.close()
            listener.close()
        return
    server = FakeImagesServer(detail_bits=0, today=BEFORE_SHUTDOWNS, **row.server).start()
    try:
        if row.target == "stopped":
            base_url = server.base_url
            server.stop()
            yield Target(base_url, lambda: server.requests)
        else:
            if row.fault is not None:
                server.add_fault(row.fault)
            yield Target(server.base_url, lambda: server.requests)
    finally:
        server.stop()


# -- checks -------------------------------------------------------------------------


def assert_waits(actual: List[float], expected: Tuple[Wait, ...]) -> None:
    assert len(actual) == len(expected), f"waits {actual} != {expected}"
    for got, want in zip(actual, expected):
        if isinstance(want, tuple):
            assert want[0] <= got <= want[1], f"wait {got} outside {want}"
        else:
            assert got == want, f"wait {got} != {want}"


def assert_whole_png(path: Path) -> None:
    """Every chunk present with a good CRC, ending in IEND, pixels inflating to the full size."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, f"{path.name} is not a PNG"
    pos, chunks = 8, []
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        assert len(body) == length, f"{path.name}: truncated {kind!r} chunk"
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert zlib.crc32(kind + body) & 0xFFFFFFFF == crc, f"{path.name}: bad CRC in {kind!r}"
        chunks.append((kind, body))
        pos += 12 + length
    assert chunks[0][0] == b"IHDR" and chunks[-1] == (b"IEND", b""), f"{path.name} does not end with IEND"
    width, height, depth, colour_type = struct.unpack(">IIBB", chunks[0][1][:10])
    channels = {0: 1, 2: 3, 4: 2, 6: 4}[colour_type]
    pixels = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    assert depth == 8 and len(pixels) == height * (1 + width * channels), f"{path.name}: pixel data cut short"


def assert_folder(folder: Path, expected: List[str], allow: Tuple[str, ...] = ()) -> None:
    """The folder holds exactly ``expected`` images, each whole, plus ``allow``; nothing partial."""
    names = sorted(os.listdir(folder)) if folder.exists() else []
    assert not [name for name in names if name.endswith(".part")], f"temporary files left: {names}"
    for name in names:
        assert (folder / name).stat().st_size > 0, f"{name} is empty"
    images = [name for name in names if name not in allow]
    assert images == sorted(expected), f"{folder.name} holds {names}"
    for name in images:
        assert_whole_png(folder / name)


def assert_error(row: Row, error: Optional[BaseException]) -> None:
    if row.error is None:
        assert error is None, f"expected success, got {error!r}"
        return
    assert type(error) is row.error, f"expected {row.error.__name__}, got {error!r}"
    if isinstance(error, (APIStatusError, APIConnectionError)):
        assert error.attempts == row.expected_attempts, f"{error!r}"
    if row.phase is not None:
        assert isinstance(error, APITimeoutError) and error.phase == row.phase
    if row.status is not None:
        assert isinstance(error, APIStatusError) and error.status_code == row.status
    if row.reason is not None:
        assert re.search(row.reason, error.message), f"{error.message!r} does not name the cause ({row.reason})"


def assert_server_saw(row: Row, target: Target) -> None:
    seen = target.seen()
    assert len(seen) == row.requests, [(request.method, request.path) for request in seen]
    calls = [request for request in seen if request.method == "POST"]
    assert all(request.path == "/v1/images/generations" for request in calls)
    if row.billed != "no":
        # The library's promise: what may have been billed is never sent twice.
        assert len(calls) == 1
    # Retries resend the same body.
    assert len({json.dumps(request.body, sort_keys=True) for request in calls}) <= 1


@contextmanager
def bounded(row: Row) -> Iterator[None]:
    started = time.monotonic()
    yield
    if row.max_seconds is not None:
        elapsed = time.monotonic() - started
        assert elapsed < row.max_seconds, f"took {elapsed:.1f} s"


# -- the three paths ------------------------------------------------------------------


def run_api(row: Row, target: Target, folder: Path) -> Optional[BaseException]:
    """The Python API, saving what arrives into ``folder``."""
    with OpenAIImageProvider(
        clock=BEFORE_SHUTDOWNS, api_key=FAKE_API_KEY, base_url=target.base_url, timeout=row.timeout
    ) as provider:
        try:
            if row.call == "stream":
                with provider.stream_image(PROMPT, size=SIZE, quality="low", partial_images=1) as stream:
                    for event in stream:
                        name = f"preview-{event.index}" if isinstance(event, PartialImage) else STEM
                        event.image.save(folder / name)
            elif row.call == "url":
                provider.generate_image(PROMPT, model="dall-e-3", response_format="url", size=SIZE).save_all(folder)
            else:
                provider.generate_image(PROMPT, size=SIZE, quality="low").save_all(folder)
        except Exception as exc:
            return exc
    return None


def run_cli(
    row: Row, target: Target, folder: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> Tuple[int, str, str]:
    argv = ["generate", PROMPT, "-o", str(folder) + os.sep, "--size", SIZE]
    if row.call == "url":
        # A compatible server that still serves dall-e-3 (the stand-in runs before its shutdown).
        argv += ["--model", "dall-e-3", "--response-format", "url", "--no-model-rules"]
    else:
        argv += ["--quality", "low"]
    if row.call == "stream":
        argv += ["--stream", "--partial-images", "1"]
    monkeypatch.setenv("OPENAI_BASE_URL", target.base_url)
    capsys.readouterr()
    code = cli_main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def run_batch_cli(
    row: Row, target: Target, folder: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> Tuple[int, str, str]:
    params: Dict[str, Any] = {"id": ITEM_ID, "prompt": PROMPT, "size": SIZE}
    if row.call == "url":
        params.update(model="dall-e-3", response_format="url")
    else:
        params["quality"] = "low"
    items = folder.parent / f"{folder.name}-items.jsonl"
    items.write_text(json.dumps(params) + "\n", encoding="utf-8")
    monkeypatch.setenv("OPENAI_BASE_URL", target.base_url)
    capsys.readouterr()
    rules = ["--no-model-rules"] if row.call == "url" else []
    code = cli_main(["batch", str(items), "-o", str(folder), "--json", "--quiet", "--concurrency", "1", *rules])
    out, err = capsys.readouterr()
    return code, out, err


def assert_manifest(row: Row, folder: Path) -> None:
    raw = (folder / "manifest.jsonl").read_bytes()
    assert raw.endswith(b"\n"), "the manifest ends in a torn line"
    lines = [json.loads(line) for line in raw.decode("ascii").splitlines()]
    assert all(isinstance(line, dict) for line in lines)
    assert [line["id"] for line in lines] == [ITEM_ID]
    (line,) = lines
    assert line["attempts"] == 1
    if row.batch_error_name is None:
        assert line["state"] == "done", line
        assert line["files"] == [ITEM_ID + ".png"]
    else:
        assert line["state"] == "failed", line
        assert line["error_class"] == row.batch_error_name
        assert line["message"]


# -- the table ------------------------------------------------------------------------


#: Rows that wait out a real timeout or a slowed body: in the full run only.
SLOW_ROWS = ("connect-timeout", "slow-headers", "slow-body")


@pytest.mark.parametrize(
    "row",
    [pytest.param(row, marks=pytest.mark.slow) if row.id in SLOW_ROWS else row for row in ROWS],
    ids=[row.id for row in ROWS],
)
def test_fault(
    row: Row,
    tmp_path: Path,
    sleeps: List[float],
    monkeypatch: pytest.MonkeyPatch,
    capsys: Any,
    fault_report: Dict[str, bool],
) -> None:
    fault_report[row.id] = False
    assert row.billed in ("no", "maybe", "yes")
    # The command line takes its key, base URL and timeouts from the environment and a config file.
    config = tmp_path / "config.ini"
    config.write_text(
        "[imageprovider]\nconnect_timeout = {:g}\ntimeout = {:g}\n".format(*row.timeout), encoding="utf-8"
    )
    monkeypatch.setenv("IMAGEPROVIDER_CONFIG", str(config))
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_API_KEY)

    # 1. The Python API, saving what arrives.
    folder = tmp_path / "api"
    folder.mkdir()
    sleeps.clear()
    with target_for(row) as target, bounded(row):
        error = run_api(row, target, folder)
    assert_error(row, error)
    assert_server_saw(row, target)
    assert_waits(sleeps, row.waits)
    if row.error is None:
        assert_folder(folder, [STEM + ".png"])
    elif row.call == "stream":
        assert_folder(folder, ["preview-0.png"])  # the partial image that did arrive, whole
    else:
        assert_folder(folder, [])

    # 2. The command line's save path.
    folder = tmp_path / "cli"
    folder.mkdir()
    sleeps.clear()
    with target_for(row) as target, bounded(row):
        code, out, err = run_cli(row, target, folder, capsys, monkeypatch)
    assert code == EXIT_CODES.get(row.error, 3), err
    assert_server_saw(row, target)
    assert_waits(sleeps, row.waits)
    if row.error is None:
        assert_folder(folder, [STEM + ".png"])
        assert out.split() == [str(folder / (STEM + ".png"))]
    else:
        assert err.startswith(f"imageprovider: {row.error.__name__}: "), err
        assert_folder(folder, [f"{STEM}-partial-1.png"] if row.call == "stream" else [])

    # 3. A one-item online batch, its limiter on virtual time (real time plus the waits it asked for).
    folder = tmp_path / "batch"
    sleeps.clear()
    pauses: List[float] = []
    monkeypatch.setattr(_limiter, "default_clock", lambda: time.monotonic() + sum(pauses))
    monkeypatch.setattr(_limiter, "default_sleep", pauses.append)
    with target_for(row) as target, bounded(row):
        code, out, err = run_batch_cli(row, target, folder, capsys, monkeypatch)
    failed = row.batch_error_name is not None
    assert code == (3 if failed else 0), err
    summary = json.loads(out)
    assert (summary["done"], summary["failed"], summary["pending"]) == ((0, 1, 0) if failed else (1, 0, 0))
    if failed:
        assert summary["failures"][0]["error_class"] == row.batch_error_name
    assert_server_saw(row, target)
    if row.batch_pause is None:
        assert_waits(sleeps, row.waits)
    else:
        assert sleeps == [], "a worker retried a 429 on its own, outside the shared limiter"
        assert row.batch_pause[0] <= sum(pauses) <= row.batch_pause[1], f"limiter paused {sum(pauses)} s"
    assert_manifest(row, folder)
    assert json.loads((folder / "summary.json").read_text(encoding="utf-8")) == summary
    assert_folder(folder, [] if failed else [ITEM_ID + ".png"], allow=("manifest.jsonl", "summary.json"))

    fault_report[row.id] = True
