"""gunicorn with ``--preload``, sync and gthread workers: a provider made and used in the master before the
workers fork serves every worker's requests with the right answers (issue: requests received another request's
image, garbled responses, hung workers)."""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Iterator, List, Tuple

import pytest
from helpers import API_KEY
from scripted_server import RawServer, echo_prompt, unused_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(autouse=True)
def needs_gunicorn() -> None:
    """Asked for only by tests that run (a plain ``pytest`` deselects these): no skip where nothing runs."""
    pytest.importorskip("gunicorn", reason="the integration extra: pip install '.[integration]'")


#: The application module: a provider at import time, used once (the warm-up), as --preload runs it.
APP = """
import os
from urllib.parse import unquote

from imageprovider import OpenAIImageProvider

provider = OpenAIImageProvider(base_url=os.environ["ECHO_URL"], max_retries=0, timeout=(5, 10))
provider.generate_image("warm-up in the master")


def app(environ, start_response):
    prompt = unquote(environ["QUERY_STRING"])
    try:
        body = (provider.generate_image(prompt).images[0].revised_prompt or "").encode()
        status = "200 OK"
    except Exception as exc:
        body, status = ("%s: %s" % (type(exc).__name__, exc)).encode(), "500 Internal Server Error"
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
"""
#: Gunicorn starts per worker class (each with its own warm-up in the master).
RUNS = int(os.environ.get("GUNICORN_RUNS", "20"))
REQUESTS = 200


@pytest.fixture(scope="module")
def echo() -> Iterator[RawServer]:
    with RawServer(echo_prompt) as server:
        yield server


def wait_for_port(port: int, process: "subprocess.Popen[bytes]") -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[1].decode()[-2000:]
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("gunicorn did not start listening")


def one_run(folder: Path, echo: RawServer, worker_class: str) -> Tuple[int, int, int]:
    """Start gunicorn, send REQUESTS requests from 8 threads; (right, wrong, errors)."""
    port = unused_port()
    env = dict(os.environ, OPENAI_API_KEY=API_KEY, ECHO_URL=echo.base_url, PYTHONPATH=str(folder))
    command = [sys.executable, "-m", "gunicorn", "--preload", "-w", "4", "-k", worker_class, "-b", f"127.0.0.1:{port}"]
    command += ["--threads", "2"] if worker_class == "gthread" else []
    process = subprocess.Popen(
        [*command, "app:app"], cwd=str(folder), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    counts = {"right": 0, "wrong": 0, "errors": 0}
    lock = threading.Lock()
    try:
        wait_for_port(port, process)

        def client(worker: int) -> None:
            for index in range(worker, REQUESTS, 8):
                prompt = f"request {index} of {worker_class}"
                try:
                    url = f"http://127.0.0.1:{port}/?" + urllib.request.quote(prompt)
                    with urllib.request.urlopen(url, timeout=30) as response:
                        answer = response.read().decode()
                    outcome = "right" if answer == prompt else "wrong"
                except Exception:
                    outcome = "errors"
                with lock:
                    counts[outcome] += 1

        threads: List[threading.Thread] = [threading.Thread(target=client, args=(worker,)) for worker in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate(timeout=10)
    return counts["right"], counts["wrong"], counts["errors"]


@pytest.mark.parametrize("worker_class", ["sync", "gthread"])
def test_preload_with_a_warm_up_call_gives_every_request_its_own_answer(
    tmp_path: Path, echo: RawServer, worker_class: str
) -> None:
    (tmp_path / "app.py").write_text(APP, encoding="utf-8")
    totals = [0, 0, 0]
    for _ in range(RUNS):
        for position, value in enumerate(one_run(tmp_path, echo, worker_class)):
            totals[position] += value
    print(f"gunicorn --preload -k {worker_class}: {RUNS} runs x {REQUESTS} requests: right, wrong, errors = {totals}")
    assert totals == [RUNS * REQUESTS, 0, 0]
