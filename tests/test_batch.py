"""Batches end to end against the stand-in server: online at the rate limit, resumable, and through the Batch API.

What is checked is what a user relies on: every item ``done`` exactly once in
``manifest.jsonl``, its image on disk under its id, bad input lines and failed
items reported (and retried on a rerun), a ``kill -9`` or Ctrl-C in the middle
of a run costing nothing but the items in flight, and the Batch API never
submitting the same items twice.

The rate-limit tests run in real time (a server allowing 20 requests a
second), so they restore the retry policy's real ``sleep`` that ``conftest``
replaces with a recorder. The crash and Ctrl-C tests run ``python -m
imageprovider batch`` in a child process against a stand-in started here.
"""

import base64
import collections
import json
import os
import signal
import struct
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence

import pytest
from helpers import make_png

from imageprovider import OpenAIImageProvider, _retry
from imageprovider.batch import BatchAPIClient, BatchItem, item_id, run_batch, run_batch_api
from imageprovider.cli import EXIT_API_ERROR, EXIT_INTERRUPTED, EXIT_OK, EXIT_TERMINATED, EXIT_USAGE, main
from imageprovider.exceptions import RequestValidationError
from imageprovider.testing import FakeImagesServer, Fault

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="needs POSIX signals (SIGKILL, SIGINT)")

#: Seconds any child process or wait may take before the test fails.
TIMEOUT = 60
GENERATIONS = "/v1/images/generations"
PARAMS = {"size": "1024x1024", "quality": "low"}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# -- helpers ------------------------------------------------------------------------------


def make_items(count: int, prefix: str = "item") -> List[BatchItem]:
    """``count`` small generation items with ids ``item-000``, ``item-001``..."""
    return [
        BatchItem(f"{prefix}-{index:03d}", f"Prompt number {index}", dict(PARAMS), (), None, index + 1)
        for index in range(count)
    ]


def write_jsonl(path: Path, lines: Sequence[Any]) -> Path:
    """One line per entry: dicts as JSON, strings as written."""
    path.write_text(
        "".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines), encoding="utf-8"
    )
    return path


def items_file(path: Path, count: int) -> Path:
    return write_jsonl(
        path, [dict(PARAMS, id=f"item-{index:03d}", prompt=f"Prompt number {index}") for index in range(count)]
    )


def manifest_records(out: Path) -> List[Dict[str, Any]]:
    """Every line of the manifest, each of which must be a complete JSON object."""
    path = out / "manifest.jsonl"
    if not path.exists():
        return []
    data = path.read_bytes()
    assert data == b"" or data.endswith(b"\n"), f"the manifest ends in a torn line: {data[-200:]!r}"
    records = []
    for number, raw in enumerate(data.split(b"\n")[:-1], 1):
        record = json.loads(raw.decode("utf-8"))
        assert isinstance(record, dict), (number, raw)
        records.append(record)
    return records


def done_lines(out: Path) -> int:
    """Complete ``done`` lines in the manifest right now (safe while another process appends)."""
    try:
        data = (out / "manifest.jsonl").read_bytes()
    except FileNotFoundError:
        return 0
    return sum(1 for raw in data.split(b"\n")[:-1] if b'"state":"done"' in raw)


def done_counts(records: Sequence[Dict[str, Any]]) -> Dict[str, int]:
    return dict(collections.Counter(record["id"] for record in records if record["state"] == "done"))


def latest(records: Sequence[Dict[str, Any]]) -> Dict[str, Dict[str, Any]]:
    """The last record per id, as a rerun reads them."""
    result: Dict[str, Dict[str, Any]] = {}
    for record in records:
        result[record["id"]] = record
    return result


def assert_valid_png(path: Path, size: Optional[Sequence[int]] = (1024, 1024)) -> None:
    """A whole PNG: signature, every chunk's CRC right, IHDR first, IEND last, nothing after it."""
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE), path
    offset, kinds = len(PNG_SIGNATURE), []
    while offset < len(data):
        assert offset + 12 <= len(data), f"{path}: truncated chunk at {offset}"
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        payload = data[offset + 8 : offset + 8 + length]
        (crc,) = struct.unpack(">I", data[offset + 8 + length : offset + 12 + length])
        assert len(payload) == length and zlib.crc32(kind + payload) & 0xFFFFFFFF == crc, f"{path}: bad {kind!r} chunk"
        if kind == b"IHDR" and size is not None:
            assert struct.unpack(">II", payload[:8]) == tuple(size), path
        kinds.append(kind)
        offset += 12 + length
    assert kinds[0] == b"IHDR" and kinds[-1] == b"IEND" and b"IDAT" in kinds, (path, kinds)


def partial_files(out: Path) -> List[str]:
    return sorted(path.name for path in out.glob(".imageprovider-*.part"))


def image_requests(server: FakeImagesServer) -> List[Any]:
    return [request for request in server.requests if request.path.startswith("/v1/images/")]


def calls(server: FakeImagesServer, method: str, path: str) -> int:
    return sum(1 for request in server.requests if (request.method, request.path) == (method, path))


def child_env(tmp_path: Path, server: FakeImagesServer) -> Dict[str, str]:
    """os.environ without OPENAI_*/IMAGEPROVIDER_*, HOME and config folders in tmp, pointed at ``server``."""
    env = {name: value for name, value in os.environ.items() if not name.startswith(("OPENAI_", "IMAGEPROVIDER_"))}
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env.update(
        HOME=str(home),
        USERPROFILE=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        APPDATA=str(home / "AppData"),
        OPENAI_API_KEY=server.api_key,
        OPENAI_BASE_URL=server.base_url,
    )
    return env


def start_cli(tmp_path: Path, server: FakeImagesServer, *args: str) -> "subprocess.Popen[str]":
    """``python -m imageprovider ARGS`` in the background, with a SIGINT that raises KeyboardInterrupt."""
    # A child inherits an ignored SIGINT (as in background jobs); a handled one is reset to the default.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "imageprovider", *args],
            env=child_env(tmp_path, server),
            cwd=str(tmp_path),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            universal_newlines=True,
        )
    finally:
        signal.signal(signal.SIGINT, previous)


def run_cli(tmp_path: Path, server: FakeImagesServer, *args: str) -> "subprocess.CompletedProcess[str]":
    return subprocess.run(
        [sys.executable, "-m", "imageprovider", *args],
        env=child_env(tmp_path, server),
        cwd=str(tmp_path),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )


def wait_for(
    condition: Callable[[], bool], process: "Optional[subprocess.Popen[str]]" = None, timeout: float = TIMEOUT
) -> None:
    """Poll ``condition`` until it holds; fail if it never does (or ``process`` ends first)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if process is not None and process.poll() is not None:
            stdout, stderr = process.communicate()
            pytest.fail(f"the child ended (status {process.returncode}) before the condition held:\n{stdout}{stderr}")
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


@pytest.fixture
def real_retry_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    """The retry policy really waits for ``retry-after`` (conftest makes it record instead)."""
    monkeypatch.setattr(_retry, "sleep", time.sleep)


@pytest.fixture
def server() -> Iterator[FakeImagesServer]:
    with FakeImagesServer(detail_bits=0) as instance:
        yield instance


@pytest.fixture
def provider(server: FakeImagesServer) -> Iterator[OpenAIImageProvider]:
    with OpenAIImageProvider(api_key=server.api_key, base_url=server.base_url) as instance:
        yield instance


@pytest.fixture
def cli_env(server: FakeImagesServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process ``main()`` talks to ``server``."""
    monkeypatch.setenv("OPENAI_API_KEY", server.api_key)
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)


def use_up_window(server: FakeImagesServer, leave: int) -> None:
    """Earlier traffic on the key: take all but ``leave`` requests of the server's per-minute window."""
    while True:
        allowed, headers = server.limiter.acquire(0)
        assert allowed, "drained too far"
        if int(headers["x-ratelimit-remaining-requests"]) <= leave:
            return


# -- 1. online, at the rate limit -----------------------------------------------------------

SERVER_RPM = 1200  # 20 requests a second
CLIENT_RPM = 1140  # 5 % under the server's limit


def run_rate_limited(
    server: FakeImagesServer, provider: OpenAIImageProvider, out: Path, count: int, watchdog: float
) -> Dict[str, Any]:
    """run_batch at CLIENT_RPM with 8 workers; statuses as the client saw them (retries included)."""
    statuses: List[int] = []
    provider.hooks.register("response", lambda status, headers: statuses.append(status))
    stop = threading.Event()
    timer = threading.Timer(watchdog, stop.set)  # a stalled run fails the test instead of hanging it
    timer.start()
    try:
        summary = run_batch(
            make_items(count), out, provider=provider, concurrency=8, requests_per_minute=CLIENT_RPM, stop=stop
        )
    finally:
        timer.cancel()
    return {"summary": summary, "statuses": statuses, "stopped_by_watchdog": stop.is_set()}


def check_rate_limited_run(
    server: FakeImagesServer, out: Path, count: int, result: Dict[str, Any], max_429_share: Optional[float]
) -> None:
    summary, statuses = result["summary"], result["statuses"]
    failures = collections.Counter(failure["error_class"] for failure in summary.failures)
    assert not result["stopped_by_watchdog"], (
        f"the run stalled: {summary.done} of {count} done after the watchdog fired, {summary.pending} pending; failures {dict(failures)}"
    )
    assert (summary.done, summary.failed, summary.pending) == (count, 0, 0), dict(failures)
    records = manifest_records(out)
    assert done_counts(records) == {item.id: 1 for item in make_items(count)}
    assert all(record["state"] == "done" for record in records)
    for item in make_items(count):
        assert_valid_png(out / (item.id + ".png"))
    assert partial_files(out) == []
    # The server saw each item once, plus one request per refusal.
    sent = len(image_requests(server))
    refused = statuses.count(429)
    assert sent == count + refused
    if max_429_share is not None:
        assert refused <= max_429_share * sent, f"{refused} of {sent} requests were refused with 429"
    assert summary.images_per_minute >= 0.7 * CLIENT_RPM, summary.images_per_minute


@pytest.mark.slow
def test_online_batch_keeps_to_the_rate_limit(tmp_path: Path, real_retry_sleep: None) -> None:
    """120 items at 95 % of a 20/s server limit, 8 workers: all done once, few 429s, near-limit throughput.

    The server's window starts with only a second's worth of budget left (earlier
    traffic on the key), so any client faster than 20/s would be refused within the run.
    """
    with FakeImagesServer(detail_bits=0, requests_per_minute=SERVER_RPM) as server, OpenAIImageProvider(
        api_key=server.api_key, base_url=server.base_url
    ) as provider:
        use_up_window(server, leave=SERVER_RPM // 60)
        result = run_rate_limited(server, provider, tmp_path / "out", 120, watchdog=25)
        check_rate_limited_run(server, tmp_path / "out", 120, result, max_429_share=0.05)
    on_disk = json.loads((tmp_path / "out" / "summary.json").read_text(encoding="utf-8"))
    assert on_disk["done"] == 120 and on_disk["images"] == 120


@pytest.mark.slow
def test_online_batch_recovers_when_the_window_is_already_used_up(tmp_path: Path, real_retry_sleep: None) -> None:
    """The server's window is empty at the start: after the first few 429s the run settles at the limit.

    A 429 pauses every worker; the run must not stall (OpenAI's
    ``x-ratelimit-reset-requests`` is the time until the *whole* window is back,
    about a minute here, while the next request is allowed after 1/20 s), and no
    item may end ``failed`` just because the server asked to slow down.
    """
    with FakeImagesServer(detail_bits=0, requests_per_minute=SERVER_RPM) as server, OpenAIImageProvider(
        api_key=server.api_key, base_url=server.base_url
    ) as provider:
        use_up_window(server, leave=0)
        # 120 items at 19/s take about 6.5 s; the watchdog stops a stalled run at 12 s.
        result = run_rate_limited(server, provider, tmp_path / "out", 120, watchdog=12)
        # The first requests are refused by construction, so no share of 429s is asserted here.
        check_rate_limited_run(server, tmp_path / "out", 120, result, max_429_share=None)


# -- 2. resume after kill -9 ----------------------------------------------------------------


@posix_only
@pytest.mark.slow
def test_rerun_after_sigkill_finishes_every_item_exactly_once(tmp_path: Path) -> None:
    """kill -9 mid-run, then the same command again: each item done once, valid PNGs, no temporary files."""
    count = 80
    source = items_file(tmp_path / "items.jsonl", count)
    out = tmp_path / "out"
    with FakeImagesServer(detail_bits=0, latency=0.1) as server:
        process = start_cli(tmp_path, server, "batch", str(source), "-o", str(out), "--quiet")
        try:
            wait_for(lambda: done_lines(out) >= 10, process)
            assert process.poll() is None
            process.kill()
            process.communicate(timeout=TIMEOUT)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate(timeout=TIMEOUT)
        assert process.returncode == -signal.SIGKILL
        before = done_lines(out)
        assert 10 <= before < count, "the kill did not land mid-run"

        second = run_cli(tmp_path, server, "batch", str(source), "-o", str(out), "--json")
    assert second.returncode == EXIT_OK, second.stderr
    summary = json.loads(second.stdout)
    assert summary["skipped"] >= before and summary["skipped"] > 0
    assert summary["done"] + summary["skipped"] == count
    assert (summary["failed"], summary["pending"], summary["interrupted"]) == (0, 0, False)

    records = manifest_records(out)
    assert done_counts(records) == {f"item-{index:03d}": 1 for index in range(count)}
    for index in range(count):
        assert_valid_png(out / f"item-{index:03d}.png")
    assert partial_files(out) == []
    on_disk = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert on_disk["skipped"] == summary["skipped"]


# -- 3. malformed input ------------------------------------------------------------------------

MALFORMED = [
    dict(PARAMS, id="good-1", prompt="A red fox"),
    '{"id": "broken", "prompt": "missing a brace"',
    dict(PARAMS, id="odd-key", prompt="A blue whale", colour="blue"),
    {"id": "no-prompt", "size": "1024x1024"},
    dict(PARAMS, id="good-2", prompt="A green frog"),
]


def test_malformed_lines_are_reported_and_recorded_while_good_items_run(
    tmp_path: Path, server: FakeImagesServer, provider: OpenAIImageProvider
) -> None:
    source = write_jsonl(tmp_path / "items.jsonl", MALFORMED)
    out = tmp_path / "out"
    summary = run_batch(source, out, provider=provider)
    assert (summary.total, summary.done, summary.failed) == (2, 2, 0)
    assert [problem["line"] for problem in summary.problems] == [2, 3, 4]
    messages = [problem["message"] for problem in summary.problems]
    assert messages[0].startswith("line 2: not valid JSON")
    assert messages[1].startswith("line 3: ") and "colour" in messages[1]
    assert messages[2].startswith("line 4: ") and "missing prompt" in messages[2]
    assert len(image_requests(server)) == 2

    records = latest(manifest_records(out))
    assert set(records) == {"good-1", "good-2", "line-2", "line-3", "line-4"}
    for number, message in zip((2, 3, 4), messages):
        record = records[f"line-{number}"]
        assert (record["state"], record["line"], record["message"], record["error_class"]) == (
            "failed",
            number,
            message,
            "InputError",
        )
    for ident in ("good-1", "good-2"):
        assert records[ident]["state"] == "done"
        assert_valid_png(out / (ident + ".png"))

    # A rerun reports the same problems without recording them twice, and sends nothing.
    again = run_batch(source, out, provider=provider)
    assert (again.skipped, again.done, len(again.problems)) == (2, 0, 3)
    assert len(manifest_records(out)) == 5
    assert len(image_requests(server)) == 2


def test_malformed_lines_make_the_command_exit_3_and_print_them(
    tmp_path: Path, server: FakeImagesServer, cli_env: None, capsys: Any
) -> None:
    source = write_jsonl(tmp_path / "items.jsonl", MALFORMED)
    out = tmp_path / "out"
    assert main(["batch", str(source), "-o", str(out), "--quiet"]) == EXIT_API_ERROR
    captured = capsys.readouterr()
    skipped = [line for line in captured.err.splitlines() if line.startswith("skipped line ")]
    assert [line.split(":")[0] for line in skipped] == ["skipped line 2", "skipped line 3", "skipped line 4"]
    assert "2 done" in captured.out
    assert done_counts(manifest_records(out)) == {"good-1": 1, "good-2": 1}


def test_duplicate_ids_stop_the_run_before_any_request(
    tmp_path: Path, server: FakeImagesServer, provider: OpenAIImageProvider, cli_env: None, capsys: Any
) -> None:
    source = write_jsonl(
        tmp_path / "items.jsonl",
        [
            dict(PARAMS, id="fox", prompt="A red fox"),
            dict(PARAMS, id="owl", prompt="An owl"),
            dict(PARAMS, id="fox", prompt="Another fox"),
        ],
    )
    with pytest.raises(RequestValidationError) as caught:
        run_batch(source, tmp_path / "out", provider=provider)
    assert "'fox' on lines 1, 3" in str(caught.value)
    with pytest.raises(RequestValidationError):
        run_batch_api(source, tmp_path / "out-api", provider=provider)
    assert server.requests == []

    assert main(["batch", str(source), "-o", str(tmp_path / "out"), "--quiet"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith("imageprovider: RequestValidationError: Duplicate ids") and "'fox' on lines 1, 3" in err
    assert main(["batch", str(source), "-o", str(tmp_path / "out"), "--via", "batch-api"]) == EXIT_USAGE
    assert server.requests == []
    assert done_counts(manifest_records(tmp_path / "out")) == {}


# -- 4. Ctrl-C ------------------------------------------------------------------------------------


@posix_only
@pytest.mark.slow
@pytest.mark.parametrize(
    "signum, status", [(signal.SIGINT, EXIT_INTERRUPTED), (signal.SIGTERM, EXIT_TERMINATED)], ids=["ctrl-c", "sigterm"]
)
def test_ctrl_c_exits_130_with_a_consistent_manifest_and_a_rerun_finishes(
    tmp_path: Path, signum: int, status: int
) -> None:
    """Ctrl-C (130) or SIGTERM (143, handled the same way): the items in flight finish and are recorded."""
    count = 40
    source = items_file(tmp_path / "items.jsonl", count)
    out = tmp_path / "out"
    with FakeImagesServer(detail_bits=0, latency=0.2) as server:
        process = start_cli(tmp_path, server, "batch", str(source), "-o", str(out), "--json")
        try:
            wait_for(lambda: done_lines(out) >= 4, process)
            process.send_signal(signum)
            stdout, stderr = process.communicate(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate(timeout=TIMEOUT)
        assert process.returncode == status, stderr
        assert "Traceback" not in stderr
        summary = json.loads(stdout)
        assert summary["interrupted"] is True
        assert 0 < summary["pending"] < count
        assert summary["done"] + summary["pending"] == count and summary["failed"] == 0

        records = manifest_records(out)  # every line is a complete JSON object
        counts = done_counts(records)
        assert all(value == 1 for value in counts.values())
        assert len(counts) == summary["done"]  # the items in flight finished and were recorded
        assert partial_files(out) == []
        for ident in counts:
            assert_valid_png(out / (ident + ".png"))

        rerun = run_cli(tmp_path, server, "batch", str(source), "-o", str(out), "--json")
    assert rerun.returncode == EXIT_OK, rerun.stderr
    again = json.loads(rerun.stdout)
    assert (again["skipped"], again["done"], again["pending"]) == (len(counts), count - len(counts), 0)
    assert done_counts(manifest_records(out)) == {f"item-{index:03d}": 1 for index in range(count)}


# -- 5. failed items ------------------------------------------------------------------------------


def test_failed_items_are_recorded_and_retried_by_a_rerun(
    tmp_path: Path, server: FakeImagesServer, provider: OpenAIImageProvider
) -> None:
    items, out = make_items(6), tmp_path / "out"
    server.add_fault(Fault.error(400, times=3, path=GENERATIONS))
    first = run_batch(items, out, provider=provider, concurrency=1)
    assert (first.done, first.failed, first.pending) == (3, 3, 0)
    failed = ["item-000", "item-001", "item-002"]
    assert sorted(failure["id"] for failure in first.failures) == failed
    records = latest(manifest_records(out))
    for index, ident in enumerate(failed):
        record = records[ident]
        assert (record["state"], record["attempts"], record["error_class"], record["line"]) == (
            "failed",
            1,
            "BadRequestError",
            index + 1,
        )
        assert record["message"] == "Invalid request (injected fault)."
        assert record["request_id"].startswith("req_")
        assert not (out / (ident + ".png")).exists()
    assert all(records[item.id]["state"] == "done" for item in items[3:])

    server.clear_requests()
    second = run_batch(items, out, provider=provider)
    assert (second.done, second.skipped, second.failed) == (3, 3, 0)
    assert sorted(request.body["prompt"] for request in image_requests(server)) == [
        "Prompt number 0",
        "Prompt number 1",
        "Prompt number 2",
    ]
    records = latest(manifest_records(out))
    for ident in failed:
        assert (records[ident]["state"], records[ident]["attempts"]) == ("done", 2)
        assert_valid_png(out / (ident + ".png"))
    assert done_counts(manifest_records(out)) == {item.id: 1 for item in items}


def test_a_429_goes_back_through_the_shared_limiter_not_a_private_retry(
    tmp_path: Path, server: FakeImagesServer, provider: OpenAIImageProvider, sleeps: List[float]
) -> None:
    """A worker resending on its own would add requests on top of the limiter's full schedule."""
    items, out = make_items(1), tmp_path / "out"
    server.add_fault("429,retry-after-ms=20,path=" + GENERATIONS)
    summary = run_batch(items, out, provider=provider, concurrency=1)
    assert (summary.done, summary.failed) == (1, 0)
    assert len(image_requests(server)) == 2
    assert sleeps == [], "urllib3 retried the 429 itself"
    assert done_counts(manifest_records(out)) == {"item-000": 1}
    # The caller's provider was never changed: the run used a copy of its own.
    assert provider.transport.retry.retry_rate_limits is True
    server.add_fault("429,retry-after-ms=20,path=" + GENERATIONS)
    provider.generate_image("after the batch")
    assert sleeps == [0.02]


@pytest.mark.slow
def test_regression_overlapping_runs_on_one_provider_leave_it_retrying_429s(
    tmp_path: Path, sleeps: List[float]
) -> None:
    """Regression (issue 13, bug 2): each run swapped the shared provider's retry policy for one that
    hands 429s back and restored what it had saved; a run that started while another was running saved
    the swapped policy, and restoring it last left the provider never retrying a 429 again."""
    with FakeImagesServer(detail_bits=0, latency=0.3) as slow:
        with OpenAIImageProvider(api_key=slow.api_key, base_url=slow.base_url, max_retries=2) as shared:
            first = threading.Thread(
                target=run_batch, args=(make_items(1), tmp_path / "first"), kwargs={"provider": shared}
            )
            first.start()
            deadline = time.monotonic() + 10
            while not slow.requests and time.monotonic() < deadline:
                time.sleep(0.01)
            # The second run starts while the first is in flight, and ends after it.
            second = run_batch(make_items(3), tmp_path / "second", provider=shared, concurrency=1)
            first.join(30)
            assert second.done == 3
            slow.add_fault("429,retry-after-ms=20,path=" + GENERATIONS)
            shared.generate_image("after both runs")
    assert sleeps[-1:] == [0.02], "the 429 after both runs was not retried"


def test_no_retry_failed_leaves_failures_alone(
    tmp_path: Path, server: FakeImagesServer, provider: OpenAIImageProvider, cli_env: None, capsys: Any
) -> None:
    out = tmp_path / "out"
    source = items_file(tmp_path / "items.jsonl", 4)
    server.add_fault(Fault.error(400, times=2, path=GENERATIONS))
    first = run_batch(source, out, provider=provider, concurrency=1)
    assert (first.done, first.failed) == (2, 2)
    before = manifest_records(out)

    server.clear_requests()
    again = run_batch(source, out, provider=provider, retry_failed=False)
    assert (again.done, again.skipped, again.failed) == (0, 2, 2)
    assert main(["batch", str(source), "-o", str(out), "--no-retry-failed", "--quiet"]) == EXIT_API_ERROR
    assert "0 done, 2 failed, 2 already done" in capsys.readouterr().out
    assert image_requests(server) == []
    assert manifest_records(out) == before


def test_max_attempts_caps_retries_across_runs(
    tmp_path: Path, server: FakeImagesServer, provider: OpenAIImageProvider, cli_env: None, capsys: Any
) -> None:
    out = tmp_path / "out"
    source = items_file(tmp_path / "items.jsonl", 2)
    server.add_fault(Fault.error(500, should_retry=False, times=100, path=GENERATIONS))
    for attempt in (1, 2):
        summary = run_batch(source, out, provider=provider, max_attempts=2)
        assert (summary.done, summary.failed) == (0, 2)
        records = latest(manifest_records(out))
        assert [records[ident]["attempts"] for ident in ("item-000", "item-001")] == [attempt, attempt]
        assert records["item-000"]["error_class"] == "InternalServerError"
    assert len(image_requests(server)) == 4

    # The cap is reached: neither the API nor the command sends anything more.
    summary = run_batch(source, out, provider=provider, max_attempts=2)
    assert (summary.done, summary.failed) == (0, 2)
    assert main(["batch", str(source), "-o", str(out), "--max-attempts", "2", "--quiet"]) == EXIT_API_ERROR
    capsys.readouterr()
    assert len(image_requests(server)) == 4

    # A higher cap gives them another go, which now succeeds.
    server.clear_faults()
    assert main(["batch", str(source), "-o", str(out), "--max-attempts", "3", "--quiet"]) == EXIT_OK
    records = latest(manifest_records(out))
    assert [(records[ident]["state"], records[ident]["attempts"]) for ident in ("item-000", "item-001")] == [
        ("done", 3),
        ("done", 3),
    ]


# -- 6. the Batch API -----------------------------------------------------------------------------


def batch_state(out: Path) -> List[Dict[str, Any]]:
    return list(json.loads((out / "batch_api.json").read_text(encoding="utf-8"))["batches"])


def uploaded_lines(server: FakeImagesServer, file_id: str) -> List[Dict[str, Any]]:
    stored = server.files.get(file_id)
    assert stored is not None, file_id
    return [json.loads(line) for line in stored[1].decode("utf-8").splitlines() if line.strip()]


@pytest.mark.slow
def test_batch_api_submits_once_resumes_and_collects(tmp_path: Path) -> None:
    items, out = make_items(5), tmp_path / "out"
    with FakeImagesServer(detail_bits=0, batch_completion_seconds=1.0) as server, OpenAIImageProvider(
        api_key=server.api_key, base_url=server.base_url
    ) as provider:
        first = run_batch_api(items, out, provider=provider)
        assert (first.done, first.pending) == (0, 5)
        [entry] = batch_state(out)
        assert entry["input_file_id"].startswith("file-") and entry["batch_id"].startswith("batch_")
        assert entry["ids"] == [item.id for item in items]
        assert done_counts(manifest_records(out)) == {}
        assert calls(server, "POST", "/v1/files") == 1 and calls(server, "POST", "/v1/batches") == 1
        assert image_requests(server) == []
        lines = uploaded_lines(server, entry["input_file_id"])
        assert [line["custom_id"] for line in lines] == [item.id for item in items]
        assert all(line["method"] == "POST" and line["url"] == GENERATIONS for line in lines)
        assert lines[0]["body"] == {
            "prompt": "Prompt number 0",
            "model": "gpt-image-2",
            "size": "1024x1024",
            "quality": "low",
        }

        # Before the batch completes: it is checked on, nothing is submitted again.
        second = run_batch_api(items, out, provider=provider)
        assert (second.done, second.pending) == (0, 5)
        assert calls(server, "POST", "/v1/files") == 1 and calls(server, "POST", "/v1/batches") == 1
        assert calls(server, "GET", "/v1/batches/" + entry["batch_id"]) == 1
        assert len(batch_state(out)) == 1

        wait_for(lambda: (server.batches.get(entry["batch_id"]) or {}).get("status") == "completed", timeout=10)
        third = run_batch_api(items, out, provider=provider)
        assert (third.done, third.failed, third.pending, third.images) == (5, 0, 0, 5)
        assert calls(server, "POST", "/v1/batches") == 1
        [entry] = batch_state(out)
        assert entry["status"] == "completed"
        records = manifest_records(out)
        assert done_counts(records) == {item.id: 1 for item in items}
        for item in items:
            assert_valid_png(out / (item.id + ".png"))
        assert partial_files(out) == []

        # Everything is collected: a further run only reports.
        fourth = run_batch_api(items, out, provider=provider)
        assert (fourth.done, fourth.skipped, fourth.pending) == (0, 5, 0)
        assert calls(server, "POST", "/v1/files") == 1 and calls(server, "POST", "/v1/batches") == 1
        assert manifest_records(out) == records


@pytest.mark.slow
def test_batch_api_splits_into_batches_of_max_requests(tmp_path: Path) -> None:
    items, out = make_items(7), tmp_path / "out"
    with FakeImagesServer(detail_bits=0, batch_completion_seconds=0.3) as server, OpenAIImageProvider(
        api_key=server.api_key, base_url=server.base_url
    ) as provider:
        summary = run_batch_api(items, out, provider=provider, max_requests=4, wait=True, poll_interval=0.2)
        assert (summary.done, summary.failed, summary.pending) == (7, 0, 0)
        assert calls(server, "POST", "/v1/files") == 2 and calls(server, "POST", "/v1/batches") == 2
        entries = batch_state(out)
        assert [len(entry["ids"]) for entry in entries] == [4, 3]
        assert [
            [line["custom_id"] for line in uploaded_lines(server, entry["input_file_id"])] for entry in entries
        ] == [entry["ids"] for entry in entries]
        assert sorted(ident for entry in entries for ident in entry["ids"]) == [item.id for item in items]
        assert len({entry["batch_id"] for entry in entries}) == 2
        assert all(entry["status"] == "completed" for entry in entries)
    assert done_counts(manifest_records(out)) == {item.id: 1 for item in items}
    for item in items:
        assert_valid_png(out / (item.id + ".png"))


@pytest.mark.slow
def test_batch_api_error_file_and_an_edit_by_data_url(tmp_path: Path) -> None:
    """A line the server refuses ends failed with its message; an edit sends its local image as a data URL."""
    photo = tmp_path / "photo.png"
    photo.write_bytes(make_png(16, 16))
    source = write_jsonl(
        tmp_path / "items.jsonl",
        [
            dict(PARAMS, id="fine-1", prompt="A red fox"),
            {"id": "odd-size", "prompt": "A square that is not", "size": "999x999"},
            dict(PARAMS, id="fine-2", prompt="An owl"),
            {"id": "hat", "prompt": "Put a party hat on it", "images": [str(photo)], "size": "1024x1024"},
        ],
    )
    out = tmp_path / "out"
    with FakeImagesServer(detail_bits=0, batch_completion_seconds=0.3) as server, OpenAIImageProvider(
        api_key=server.api_key, base_url=server.base_url, check_model_rules=False
    ) as provider:
        summary = run_batch_api(source, out, provider=provider, wait=True, poll_interval=0.2)
        assert (summary.done, summary.failed, summary.pending) == (3, 1, 0)
        assert [failure["id"] for failure in summary.failures] == ["odd-size"]
        entries = {entry["endpoint"]: entry for entry in batch_state(out)}
        assert entries[GENERATIONS]["ids"] == ["fine-1", "odd-size", "fine-2"]
        assert entries["/v1/images/edits"]["ids"] == ["hat"]
        [edit] = uploaded_lines(server, entries["/v1/images/edits"]["input_file_id"])
        assert edit["url"] == "/v1/images/edits"
        [image] = edit["body"]["images"]
        prefix = "data:image/png;base64,"
        assert image["image_url"].startswith(prefix)
        assert base64.b64decode(image["image_url"][len(prefix) :]) == photo.read_bytes()
        assert image_requests(server) == []  # everything went through the batches

    records = latest(manifest_records(out))
    failed = records["odd-size"]
    assert failed["state"] == "failed" and failed["attempts"] == 1
    assert "999x999" in failed["message"] and "multiples of 16" in failed["message"]
    assert failed["status_code"] == 400 and failed["param"] == "size"
    assert failed["request_id"].startswith("req_")
    for ident in ("fine-1", "fine-2", "hat"):
        assert records[ident]["state"] == "done"
        assert_valid_png(out / (ident + ".png"))
    assert not (out / "odd-size.png").exists()
    assert done_counts(manifest_records(out)) == {"fine-1": 1, "fine-2": 1, "hat": 1}


# -- 7. the command, through the Batch API --------------------------------------------------------


@pytest.mark.slow
def test_cli_batch_api_wait_with_fake_completes(tmp_path: Path, capsys: Any) -> None:
    source = items_file(tmp_path / "items.jsonl", 3)
    out = tmp_path / "out"
    code = main(["batch", str(source), "-o", str(out), "--via", "batch-api", "--wait", "--fake", "--json"])
    captured = capsys.readouterr()
    assert code == EXIT_OK, captured.err
    summary = json.loads(captured.out)
    assert (summary["done"], summary["failed"], summary["pending"]) == (3, 0, 0)
    [entry] = summary["batches"]
    assert entry["status"] == "completed" and len(entry["ids"]) == 3
    assert done_counts(manifest_records(out)) == {f"item-{index:03d}": 1 for index in range(3)}
    for index in range(3):
        assert_valid_png(out / f"item-{index:03d}.png")


def test_batch_api_cancelled_batch_leaves_its_items_for_a_rerun(tmp_path: Path) -> None:
    """A cancelled batch produces nothing; the next run resubmits its items in a new batch, and they finish."""
    source = items_file(tmp_path / "items.jsonl", 3)
    out = tmp_path / "out"
    with FakeImagesServer(detail_bits=0, batch_completion_seconds=30) as server, OpenAIImageProvider(
        api_key=server.api_key, base_url=server.base_url
    ) as provider:
        first = run_batch_api(str(source), str(out), provider=provider)
        batch_id = first.batches[0]["batch_id"]
        assert BatchAPIClient(provider).cancel_batch(batch_id)["status"] == "cancelled"
        second = run_batch_api(str(source), str(out), provider=provider)
        assert [entry["status"] for entry in second.batches][0] == "cancelled"
        assert len(second.batches) == 2 and second.batches[1]["batch_id"] != batch_id
        assert sorted(second.batches[1]["ids"]) == sorted(first.batches[0]["ids"])
        server.batches.completion_seconds = 0.0
        third = run_batch_api(str(source), str(out), provider=provider)
    assert third.done == 3 and third.pending == 0
    assert sum(1 for record in manifest_records(out) if record["state"] == "done") == 3


# -- Regression: one unusable result line fails its item only ---------------------------------

UNUSABLE_PROMPT = "Prompt number 1"


def spoil_invalid_base64(answer: Dict[str, Any], out: Path) -> None:
    answer["data"][0]["b64_json"] = "@@@ not base64 @@@"


def spoil_url_only(answer: Dict[str, Any], out: Path) -> None:
    answer["data"][0] = {"url": "https://files.example.invalid/item-001.png"}


def spoil_saving(answer: Dict[str, Any], out: Path) -> None:
    # A folder under the item's file name: the atomic rename onto it fails.
    (out / "item-001.png").mkdir(parents=True, exist_ok=True)


@pytest.mark.parametrize(
    "spoil, error_class, words",
    [
        (spoil_invalid_base64, ("ResponseValidationError",), "base64"),
        (spoil_url_only, ("ResponseValidationError",), "URL"),
        # The error a rename onto a folder raises differs between systems.
        (spoil_saving, ("IsADirectoryError", "PermissionError", "FileExistsError", "OSError"), "item-001"),
    ],
    ids=["invalid-base64", "url-only", "save-fails"],
)
@pytest.mark.slow
def test_regression_an_unusable_result_line_fails_its_item_only(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    spoil: Callable[[Dict[str, Any], Path], None],
    error_class: Sequence[str],
    words: str,
) -> None:
    """Regression: a result line that passes the schema but cannot be saved aborted collection for good.

    The item fails with a typed reason, the other lines are collected, the
    batch counts as collected (a rerun does not download it again), and the
    failed item is resubmitted by a later run like any failed item.
    """
    items, out = make_items(3), tmp_path / "out"
    with FakeImagesServer(detail_bits=0, batch_completion_seconds=0.2) as server, OpenAIImageProvider(
        api_key=server.api_key, base_url=server.base_url
    ) as provider:
        run_line = server.batches._run_line
        spoiled = {"on": True}

        def spoiling(url: str, body: Dict[str, Any]) -> Any:
            status, request_id, answer = run_line(url, body)
            if spoiled["on"] and body.get("prompt") == UNUSABLE_PROMPT:
                spoil(answer, out)
            return status, request_id, answer

        monkeypatch.setattr(server.batches, "_run_line", spoiling)
        first = run_batch_api(items, out, provider=provider, wait=True, poll_interval=0.1)
        assert (first.done, first.failed, first.pending) == (2, 1, 0)
        [failure] = first.failures
        assert failure["id"] == "item-001" and failure["error_class"] in error_class
        records = latest(manifest_records(out))
        failed = records["item-001"]
        assert (failed["state"], failed["attempts"], failed["error_class"]) == ("failed", 1, failure["error_class"])
        assert words in failed["message"]
        assert failed["request_id"].startswith("req_")
        assert [records[ident]["state"] for ident in ("item-000", "item-002")] == ["done", "done"]
        assert_valid_png(out / "item-000.png")
        assert_valid_png(out / "item-002.png")
        assert not (out / "item-001.png").is_file()
        assert partial_files(out) == []
        [entry] = batch_state(out)
        assert entry["collected"] is True and entry["status"] == "completed"

        # The next run does not collect that batch again, and resubmits the failed item.
        spoiled["on"] = False
        if (out / "item-001.png").is_dir():
            (out / "item-001.png").rmdir()
        downloads = sum(1 for request in server.requests if request.path.endswith("/content"))
        second = run_batch_api(items, out, provider=provider, wait=True, poll_interval=0.1)
        assert (second.done, second.skipped, second.failed, second.pending) == (1, 2, 0, 0)
        entries = batch_state(out)
        assert len(entries) == 2 and entries[1]["ids"] == ["item-001"]
        fetched = [request.path for request in server.requests if request.path.endswith("/content")][downloads:]
        assert len(fetched) == 1  # the new batch's output file only
    records = latest(manifest_records(out))
    assert (records["item-001"]["state"], records["item-001"]["attempts"]) == ("done", 2)
    assert_valid_png(out / "item-001.png")
    assert done_counts(manifest_records(out)) == {item.id: 1 for item in items}


# -- Regression: items as a list of prompts or dicts ---------------------------------------------


def run_online(items: Any, out: Path, provider: OpenAIImageProvider) -> Any:
    return run_batch(items, out, provider=provider, concurrency=2)


def run_via_batch_api(items: Any, out: Path, provider: OpenAIImageProvider) -> Any:
    return run_batch_api(items, out, provider=provider, wait=True, poll_interval=0.1)


def sent_bodies(server: FakeImagesServer, out: Path) -> List[Dict[str, Any]]:
    """The request bodies of a run: uploaded batch lines (Batch API), else the image requests (online)."""
    if (out / "batch_api.json").exists():
        return [line["body"] for entry in batch_state(out) for line in uploaded_lines(server, entry["input_file_id"])]
    return [request.body for request in image_requests(server)]


RUNNERS = pytest.mark.parametrize("runner", [run_online, run_via_batch_api], ids=["run_batch", "run_batch_api"])


@RUNNERS
def test_regression_items_may_be_a_list_of_prompt_strings(
    tmp_path: Path, server: FakeImagesServer, provider: OpenAIImageProvider, runner: Callable[..., Any]
) -> None:
    """Regression: ``run_batch(["a cat", "a dog"], ...)`` ended in AttributeError; strings are prompts, as a text file's lines."""
    server.batches.completion_seconds = 0.1
    out = tmp_path / "out"
    summary = runner(["a cat", "  a dog\n"], out, provider)
    assert (summary.total, summary.done, summary.failed, summary.problems) == (2, 2, 0, [])
    ids = [item_id("a cat", {}), item_id("a dog", {})]
    assert done_counts(manifest_records(out)) == {ident: 1 for ident in ids}
    assert sorted(body["prompt"] for body in sent_bodies(server, out)) == ["a cat", "a dog"]
    for ident in ids:
        assert (out / (ident + ".png")).is_file()
    # The same prompts in a text file are the same items (same ids): a rerun from the file has nothing to do.
    source = tmp_path / "prompts.txt"
    source.write_text("a cat\na dog\n", encoding="utf-8")
    again = runner(str(source), out, provider)
    assert (again.done, again.skipped) == (0, 2)


@RUNNERS
def test_regression_items_may_be_dicts_mixed_with_strings_and_batch_items(
    tmp_path: Path, server: FakeImagesServer, provider: OpenAIImageProvider, runner: Callable[..., Any]
) -> None:
    """Regression: a list of dicts (the JSONL fields) ended in AttributeError. Dicts go through the JSONL
    checks; a malformed one is a problem at its position while the others run."""
    server.batches.completion_seconds = 0.1
    out = tmp_path / "out"
    items = [
        {
            "id": "fox",
            "prompt": "A red fox",
            "size": "1024x1024",
            "quality": "low",
            "extra_body": {"moderation": "low"},
        },
        {"id": "no-prompt", "size": "1024x1024"},
        "An owl",
        {"prompt": "A tree", "sise": "1024x1024"},
        BatchItem("heron", "A heron", dict(PARAMS), (), None, 99),
        {"prompt": "A boat", "images": [], "id": "boat"},
    ]
    summary = runner(items, out, provider)
    assert (summary.total, summary.done, summary.failed) == (3, 3, 0)
    assert [problem["line"] for problem in summary.problems] == [2, 4, 6]
    messages = [problem["message"] for problem in summary.problems]
    assert messages[0] == "items[1]: missing prompt"
    assert messages[1] == "items[3]: unknown key 'sise' (did you mean 'size'?)"
    assert messages[2].startswith("items[5]: images is empty")
    records = latest(manifest_records(out))
    assert [records[ident]["state"] for ident in ("fox", item_id("An owl", {}), "heron")] == ["done"] * 3
    assert [records[f"line-{line}"]["error_class"] for line in (2, 4, 6)] == ["InputError"] * 3
    sent = {body["prompt"]: body for body in sent_bodies(server, out)}
    assert sorted(sent) == ["A heron", "A red fox", "An owl"]
    assert (sent["A red fox"]["size"], sent["A red fox"]["quality"], sent["A red fox"]["moderation"]) == (
        "1024x1024",
        "low",
        "low",
    )


@RUNNERS
def test_regression_duplicate_ids_in_a_list_are_refused_before_any_request(
    tmp_path: Path, server: FakeImagesServer, provider: OpenAIImageProvider, runner: Callable[..., Any]
) -> None:
    for items in (["a cat", "a cat"], [{"id": "cat", "prompt": "a cat"}, {"id": "Cat", "prompt": "another cat"}]):
        with pytest.raises(RequestValidationError) as caught:
            runner(items, tmp_path / "out", provider)
        assert caught.value.param == "id" and "Duplicate ids" in caught.value.message
    assert server.requests == []


@RUNNERS
@pytest.mark.parametrize(
    "items, words",
    [
        ([1, 2], "items[0] is int"),
        (["a cat", None], "items[1] is NoneType"),
        ({"prompt": "a cat"}, "not dict"),
        (BatchItem("cat", "a cat", {}, (), None, 1), "a single BatchItem"),
        (42, "not int"),
        (b"prompts.txt", "not bytes"),
    ],
    ids=["ints", "none-entry", "dict", "one-item", "int", "bytes"],
)
def test_regression_other_items_are_a_request_validation_error_naming_items(
    tmp_path: Path,
    server: FakeImagesServer,
    provider: OpenAIImageProvider,
    runner: Callable[..., Any],
    items: Any,
    words: str,
) -> None:
    """Regression: anything but a path, a BatchInput or a list of str/dict/BatchItem ended in AttributeError."""
    with pytest.raises(RequestValidationError) as caught:
        runner(items, tmp_path / "out", provider)
    assert caught.value.param == "items"
    assert words in caught.value.message and "items" in caught.value.message
    assert server.requests == []


@pytest.mark.slow
def test_three_ctrl_cs_stop_then_tell_then_abandon_and_the_folder_agrees_with_the_manifest(tmp_path: Path) -> None:
    """The first Ctrl-C stops taking items and says so; the second says how many are in flight and how long they
    may take; the third abandons them (their connections are shut) and run_batch returns at once. Abandoned items
    are not recorded and write nothing, so a rerun does each of them exactly once. (The third Ctrl-C used to
    return while the workers kept going for up to the read timeout, then wrote files the manifest never saw.)"""
    out = tmp_path / "out"
    items = [{"id": f"slow-{index}", "prompt": f"slow {index}"} for index in range(6)]
    notices: List[str] = []
    with FakeImagesServer(detail_bits=0, latency=30) as server:
        with OpenAIImageProvider(api_key=server.api_key, base_url=server.base_url, timeout=(5, 60)) as provider:

            def press_three_times() -> None:
                deadline = time.monotonic() + 20
                while len(server.requests) < 2 and time.monotonic() < deadline:
                    time.sleep(0.02)
                for _ in range(3):
                    time.sleep(0.6)
                    os.kill(os.getpid(), signal.SIGINT)  # a real signal, as a terminal sends

            # A background job inherits an ignored SIGINT (CI runs so): handle it as a terminal's process does.
            previous = signal.signal(signal.SIGINT, signal.default_int_handler)
            try:
                presser = threading.Thread(target=press_three_times)
                presser.start()
                started = time.monotonic()
                summary = run_batch(items, out, provider=provider, concurrency=2, notify=notices.append)
                elapsed = time.monotonic() - started
                presser.join(5)
            finally:
                signal.signal(signal.SIGINT, previous)
            assert elapsed < 10, notices
            assert summary.interrupted and (summary.done, summary.failed, summary.pending) == (0, 0, 6)
            assert len(notices) == 3
            assert notices[0].startswith("Stopping: no new items are started; 2 in flight will finish")
            assert "2 items are still in flight" in notices[1] and "60 s" in notices[1]
            assert notices[2] == "Abandoning 2 items in flight; a rerun does them again."
            assert manifest_records(out) == [] and [path.name for path in out.glob("*.png")] == []
            assert partial_files(out) == []
            server.latency = 0
            rerun = run_batch(items, out, provider=provider, concurrency=2)
    assert (rerun.done, rerun.failed, rerun.pending) == (6, 0, 0)
    assert done_counts(manifest_records(out)) == {item["id"]: 1 for item in items}


@pytest.mark.slow
def test_the_command_line_abandons_on_the_third_ctrl_c(tmp_path: Path) -> None:
    """Through a real process: three SIGINTs during a batch whose items take 30 s each; the command says what
    each did, exits 130 at once, and leaves a folder its manifest agrees with (nothing recorded, no image)."""
    source = items_file(tmp_path / "items.jsonl", 6)
    out = tmp_path / "out"
    with FakeImagesServer(detail_bits=0, latency=30) as server:
        process = start_cli(tmp_path, server, "batch", str(source), "-o", str(out), "--concurrency", "2", "--quiet")
        started = time.monotonic()
        try:
            wait_for(lambda: len(server.requests) >= 2, process)
            for _ in range(3):
                time.sleep(0.6)
                process.send_signal(signal.SIGINT)
            stdout, stderr = process.communicate(timeout=20)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate(timeout=TIMEOUT)
        elapsed = time.monotonic() - started
    assert process.returncode == EXIT_INTERRUPTED, stderr
    assert elapsed < 15
    notices = [line for line in stderr.splitlines() if line.startswith("imageprovider: ")]
    assert notices[0].startswith("imageprovider: Stopping: no new items are started; 2 in flight")
    assert notices[1].startswith("imageprovider: 2 items are still in flight; each may take up to")
    assert notices[2] == "imageprovider: Abandoning 2 items in flight; a rerun does them again."
    assert "Traceback" not in stderr
    assert manifest_records(out) == [] and list(out.glob("*.png")) == [] and partial_files(out) == []
    assert "6 items: 0 done, 0 failed, 0 already done, 6 pending" in stdout
