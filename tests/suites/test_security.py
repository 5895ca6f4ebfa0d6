"""The API key never shows up in logs, reprs, exception texts, printed output or files;
credentials never reach a host other than the API's; output paths stay inside their
folder; oversized inputs are refused without being read whole.

A canary key (``helpers.API_KEY``) is used through every kind of outcome with all
loggers at DEBUG; every piece of text produced is then searched for it. The same
canary is watched suite-wide by ``canary_plugin.py``: the first tests here prove
that the watch really catches a leak on each channel.
"""

import base64
import io
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tracemalloc
import xml.etree.ElementTree as ElementTree
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Set

import pytest
import responses
from helpers import API_KEY, BEFORE_SHUTDOWNS, GENERATIONS_URL, PNG, PNG_B64, examples, images_body, make_jpeg, make_png
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from scripted_server import Reply, ScriptedServer, unused_port

import imageprovider
from imageprovider import (
    APIStatusError,
    AzureOpenAIImageProvider,
    ConfigurationError,
    ImageProviderError,
    ImageResponse,
    OpenAIImageProvider,
    RequestValidationError,
    ResponseValidationError,
    cli,
    image_data_url,
)
from imageprovider.batch import BatchItem, run_batch, run_batch_api
from imageprovider.testing import FakeImagesServer

CANARY = API_KEY
TESTS = Path(__file__).resolve().parents[1]
MB = 1024 * 1024


def _texts_of(error: BaseException) -> List[str]:
    texts = []
    seen = set()
    current = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        texts += [
            str(current),
            repr(current),
            str(getattr(current, "body", "")),
            str(getattr(current, "headers", "")),
            str(current.__dict__ if hasattr(current, "__dict__") else ""),
        ]
        current = current.__cause__ or current.__context__
    return texts


def _scenarios(mocked: Any) -> List[Any]:
    """Run one call per outcome; return every error raised."""
    errors: List[Any] = []
    echo = {
        "error": {
            "message": "Incorrect API key provided: " + CANARY,
            "type": "invalid_request_error",
            "param": None,
            "code": "invalid_api_key",
        }
    }
    mocked.add("POST", GENERATIONS_URL, json=images_body())
    mocked.add("POST", GENERATIONS_URL, status=401, json=echo, headers={"x-echo": CANARY})
    mocked.add("POST", GENERATIONS_URL, status=500, body="<html>" + CANARY + "</html>", content_type="text/html")
    mocked.add("POST", GENERATIONS_URL, status=500, body="<html>" + CANARY + "</html>", content_type="text/html")
    mocked.add("POST", GENERATIONS_URL, status=500, body="<html>" + CANARY + "</html>", content_type="text/html")
    mocked.add("POST", GENERATIONS_URL, status=200, json={"created": 1, "data": [{"b64_json": 5}], "x": CANARY})
    mocked.add("POST", GENERATIONS_URL, status=200, body="not json " + CANARY)
    with OpenAIImageProvider(organization="org-1", project="proj-1") as provider:
        provider.generate_image("a fine prompt " * 20)
        for _ in range(4):
            try:
                provider.generate_image("an otter")
            except ImageProviderError as exc:
                errors.append(exc)
        for bad in ({"quality": "ultra"}, {"n": 99}):
            try:
                provider.generate_image("an otter", **bad)
            except ImageProviderError as exc:
                errors.append(exc)
        errors.append(repr(provider))
        errors.append(repr(provider.settings))
        errors.append(repr(provider.transport.auth))
        errors.append(str(vars(provider)))
    return errors


def test_canary_key_never_appears_anywhere(mocked, monkeypatch, caplog, capsys):
    """Logs at DEBUG, reprs, error messages, bodies and headers are all free of the key."""
    monkeypatch.setenv("OPENAI_API_KEY", CANARY)
    caplog.set_level(logging.DEBUG)
    outputs = _scenarios(mocked)
    assert len([o for o in outputs if isinstance(o, BaseException)]) == 6

    with ScriptedServer([Reply(200, images_body(), delay=0.5)]) as server:
        with OpenAIImageProvider(base_url=server.base_url, timeout=0.1) as provider:
            with pytest.raises(ImageProviderError) as caught:
                provider.generate_image("slow")
            outputs.append(caught.value)
    with OpenAIImageProvider(base_url=f"http://127.0.0.1:{unused_port()}/v1", max_retries=0) as provider:
        with pytest.raises(ImageProviderError) as caught:
            provider.generate_image("nobody home")
        outputs.append(caught.value)
    with pytest.raises(ConfigurationError) as caught:
        OpenAIImageProvider(api_key=CANARY + " with a space")
    outputs.append(caught.value)
    with pytest.raises(ConfigurationError) as caught:
        OpenAIImageProvider(base_url="http://example.com/v1")
    outputs.append(caught.value)

    texts: List[str] = []
    for output in outputs:
        texts += _texts_of(output) if isinstance(output, BaseException) else [output]
    for record in caplog.records:
        texts += [record.getMessage(), str(record.__dict__)]
    assert len(caplog.records) >= 8
    captured = capsys.readouterr()
    texts += [captured.out, captured.err]
    leaks = [text for text in texts if CANARY in text]
    assert leaks == []
    # The redaction marker proves the echoed key was seen and scrubbed, not merely absent.
    assert any("[REDACTED]" in text for text in texts)


def test_cli_output_never_shows_the_key(monkeypatch, capsys, tmp_path):
    """The command's stdout and stderr, on success and failure, are free of the key."""
    monkeypatch.setenv("OPENAI_API_KEY", CANARY)
    body = {"error": {"message": "bad key " + CANARY, "type": "x", "param": None, "code": None}}
    with ScriptedServer([Reply(200, images_body()), Reply(401, body)]) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        assert cli.main(["generate", "an otter", "-o", str(tmp_path / "a.png"), "--verbose"]) == 0
        assert cli.main(["generate", "an otter", "-o", str(tmp_path / "b.png"), "--verbose"]) == 3
        assert server.received[0].headers["Authorization"] == "Bearer " + CANARY
    captured = capsys.readouterr()
    assert CANARY not in captured.out + captured.err
    assert "[REDACTED]" in captured.err


def test_credentials_are_not_session_defaults(provider):
    """Credentials are attached per API request, so no other request on the session can carry them."""
    headers = {name.lower() for name in provider.transport.session.headers}
    assert "authorization" not in headers
    assert "openai-organization" not in headers
    assert provider.transport.session.auth is None


def test_public_surface_has_no_key_attribute_in_repr():
    """Sanity: the package exports no object whose repr could hold a key."""
    assert "api_key=<redacted>" in repr(OpenAIImageProvider(api_key=CANARY))
    assert CANARY not in str(imageprovider.__dict__)


# -- the suite-wide canary watch catches every channel -----------------------------------

_INNER_TESTS = """
import logging
import os
import subprocess
import sys

import pytest
from canary_plugin import holds_key
from helpers import API_KEY

from imageprovider import ConfigurationError
from imageprovider._config import check_base_url

KEPT = []
CHILD_KEY = "sk-child-canary-" + "0" * 16


def child(code, tmp_path, capture=True):
    env = dict(os.environ, OPENAI_API_KEY=CHILD_KEY)
    return subprocess.run([sys.executable, "-c", code], env=env, cwd=str(tmp_path), capture_output=capture)


def test_log_message():
    logging.getLogger("imageprovider.inner").debug("key %s", API_KEY)


def test_log_traceback():
    try:
        raise ValueError(API_KEY)
    except ValueError:
        logging.getLogger("imageprovider").exception("failed")


def test_library_error():
    with pytest.raises(ConfigurationError):
        check_base_url("ftp://" + API_KEY, False)


def test_library_error_cause_seen_at_teardown():
    with pytest.raises(ConfigurationError) as caught:
        check_base_url("ftp://x", False)
    caught.value.__cause__ = ValueError(API_KEY)
    KEPT.append(caught.value)


def test_error_built_by_the_test_is_not_watched():
    assert API_KEY in str(ConfigurationError("built here: " + API_KEY))


def test_captured_stdout():
    print(API_KEY)


def test_readouterr(capsys):
    sys.stderr.write(API_KEY)
    assert API_KEY in capsys.readouterr().err


def test_file_left_in_tmp_path(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "manifest.jsonl").write_text("{}" + API_KEY)


def test_file_name(tmp_path):
    (tmp_path / ("x" + API_KEY)).write_text("x")


def test_declared_key_file(tmp_path):
    path = tmp_path / "config.ini"
    path.write_text("[imageprovider]\\napi_key = " + API_KEY)
    holds_key(path)


def test_child_output(tmp_path):
    child("import os; print(os.environ['OPENAI_API_KEY'])", tmp_path)


def test_child_file(tmp_path):
    child("import os; open('out.txt', 'w').write(os.environ['OPENAI_API_KEY'])", tmp_path, capture=False)


def test_clean(tmp_path):
    (tmp_path / "fine.txt").write_text("nothing secret")
"""

#: Each leaking inner test, and what its failure must name.
_EXPECTED_LEAKS = {
    "test_log_message": "log record imageprovider.inner DEBUG",
    "test_log_traceback": "log record imageprovider ERROR",
    "test_library_error": "ConfigurationError str() (at creation)",
    "test_library_error_cause_seen_at_teardown": "ConfigurationError's chained ValueError (at teardown)",
    "test_captured_stdout": "captured stdout call",
    "test_readouterr": "stderr read with readouterr()",
    "test_file_left_in_tmp_path": "file out/manifest.jsonl under tmp_path",
    "test_file_name": "name of ",
    "test_child_output": "stdout of a child process",
    "test_child_file": "file out.txt under tmp_path",
}


@pytest.mark.slow
def test_the_canary_watch_fails_a_test_for_a_leak_on_every_channel(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """An inner pytest run with the plugin: each leaking test fails naming where; the others pass."""
    (tmp_path / "test_inner.py").write_text(_INNER_TESTS)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    report = tmp_path / "report.xml"
    # The inner tests leave the key in their own files: keep those out of this test's tmp_path.
    basetemp = tmp_path_factory.mktemp("inner-basetemp")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(TESTS)] + sys.path))
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "canary_plugin", "-p", "no:cacheprovider", "-q", "--show-capture=no"]
        + ["--basetemp", str(basetemp), "--junitxml", str(report), "test_inner.py"],
        cwd=str(tmp_path),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    outcomes: Dict[str, str] = {}
    for case in ElementTree.parse(str(report)).getroot().iter("testcase"):  # noqa: S314 - our own pytest wrote it
        problems = [element for element in case if element.tag in ("failure", "error")]
        outcomes.setdefault(case.get("name", ""), "")
        outcomes[case.get("name", "")] += "".join(
            (element.get("message") or "") + (element.text or "") for element in problems
        )
    failed = {name for name, text in outcomes.items() if text}
    assert failed == set(_EXPECTED_LEAKS), completed.stdout[-3000:]
    for name, where in _EXPECTED_LEAKS.items():
        assert "The canary API key leaked" in outcomes[name] and where in outcomes[name], (name, outcomes[name])
        assert "<CANARY>" in outcomes[name]
    assert set(outcomes) - failed == {
        "test_error_built_by_the_test_is_not_watched",
        "test_declared_key_file",
        "test_clean",
    }
    summary = re.search(r"^canary: (\d+) checks, (\d+) hits$", completed.stdout, re.MULTILINE)
    assert summary is not None and int(summary.group(2)) >= len(_EXPECTED_LEAKS), completed.stdout[-3000:]
    # Reports name the place, never the key itself (this process's own watch checks the output too).
    assert API_KEY not in completed.stdout + completed.stderr + report.read_text()


# -- the command line in a child process ---------------------------------------------------


def _run_cli(folder: Path, *args: str, base_url: Optional[str] = None) -> "subprocess.CompletedProcess[str]":
    env = {name: value for name, value in os.environ.items() if not name.startswith(("OPENAI_", "IMAGEPROVIDER_"))}
    env.update(OPENAI_API_KEY=API_KEY, HOME=str(folder), XDG_CONFIG_HOME=str(folder / ".config"))
    if base_url is not None:
        env["OPENAI_BASE_URL"] = base_url
    return subprocess.run(
        [sys.executable, "-m", "imageprovider", *args],
        cwd=str(folder),
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _files_holding(folder: Path, secret: str) -> List[str]:
    return [
        str(path.relative_to(folder))
        for path in sorted(folder.rglob("*"))
        if secret in path.name or (path.is_file() and secret.encode("utf-8") in path.read_bytes())
    ]


@pytest.mark.slow
def test_the_command_in_a_child_process_never_shows_the_key(tmp_path: Path) -> None:
    """--dry-run, --json, sidecars, a 401 echoing the key, online and Batch API batches, at --debug:
    stdout, stderr and every file written are free of the key, which was really in use."""
    (tmp_path / "prompts.jsonl").write_text(
        '{"id": "fox", "prompt": "A red fox", "output_format": "webp"}\n{"id": "koi", "prompt": "A koi pond"}\n'
    )
    echo = {"error": {"message": "Incorrect API key provided: " + API_KEY, "type": "x", "param": None, "code": None}}
    runs = []
    runs.append(_run_cli(tmp_path, "generate", "an otter", "--dry-run", "--json", "--debug", "-o", "dry.png"))
    with FakeImagesServer(api_key=API_KEY, detail_bits=0, batch_completion_seconds=0) as server:
        runs.append(
            _run_cli(
                tmp_path,
                "generate",
                "an otter",
                "--json",
                "--metadata",
                "--debug",
                "-o",
                "one/",
                base_url=server.base_url,
            )
        )
        runs.append(
            _run_cli(
                tmp_path,
                "batch",
                "prompts.jsonl",
                "-o",
                "online",
                "--json",
                "--metadata",
                "--debug",
                base_url=server.base_url,
            )
        )
        # Submit, then run again to collect (the stand-in completes batches at once; --wait would poll).
        for _ in range(2):
            runs.append(
                _run_cli(
                    tmp_path,
                    "batch",
                    "prompts.jsonl",
                    "-o",
                    "via-api",
                    "--via",
                    "batch-api",
                    "--json",
                    "--debug",
                    base_url=server.base_url,
                )
            )
        served = len(server.requests)
    with ScriptedServer([Reply(401, echo, {"x-echo": API_KEY})]) as echoing:
        runs.append(
            _run_cli(tmp_path, "generate", "an otter", "--debug", "-o", "denied.png", base_url=echoing.base_url)
        )
    assert [run.returncode for run in runs] == [0, 0, 0, 0, 0, 3], [run.stderr[-2000:] for run in runs]
    # The key was really in use: the stand-in accepts no other, and the echo server got it.
    assert served >= 6
    assert echoing.received[0].headers["Authorization"] == "Bearer " + API_KEY
    assert "Bearer [REDACTED]" in runs[0].stdout + runs[0].stderr
    assert "[REDACTED]" in runs[5].stderr
    for run in runs:
        assert API_KEY not in run.stdout and API_KEY not in run.stderr
    written = {str(path.relative_to(tmp_path)) for path in tmp_path.rglob("*") if path.is_file()}
    assert {"online/manifest.jsonl", "online/summary.json", "online/fox.json", "via-api/manifest.jsonl"} <= written
    assert json.loads(runs[4].stdout)["done"] == 2
    assert "via-api/batch_api.json" in written and any(
        name.startswith("one/") and name.endswith(".json") for name in written
    )
    assert _files_holding(tmp_path, API_KEY) == []


# -- credentials go to the API's origin only (real sockets) ------------------------------

ORGANIZATION = "org-canary-organization"
PROJECT = "proj-canary-project"
GATEWAY_SECRET = "gateway-canary-secret"
CREDENTIAL_HEADERS = {"authorization", "api-key", "openai-organization", "openai-project", "x-gateway-key"}
#: What an OpenAIImageProvider configured by _api_provider sends to the API (api-key is Azure's).
SENT_TO_API = CREDENTIAL_HEADERS - {"api-key"}
SECRETS = (API_KEY, ORGANIZATION, PROJECT, GATEWAY_SECRET)
REDIRECTS = [301, 302, 303, 307, 308]


def _credentials(headers: Dict[str, str]) -> Set[str]:
    """The credential headers in ``headers``, and the names of any header carrying a secret value."""
    names = {name.lower() for name in headers} & CREDENTIAL_HEADERS
    return names | {name.lower() for name, value in headers.items() if any(secret in value for secret in SECRETS)}


def _root(server: ScriptedServer, host: str = "127.0.0.1") -> str:
    return "http://{}:{}".format(host, server.base_url.rsplit(":", 1)[1][: -len("/v1")])


def _api_provider(api: ScriptedServer, max_retries: int = 0) -> OpenAIImageProvider:
    return OpenAIImageProvider(
        clock=BEFORE_SHUTDOWNS,
        api_key=API_KEY,
        base_url=api.base_url,
        organization=ORGANIZATION,
        project=PROJECT,
        extra_headers={"X-Gateway-Key": GATEWAY_SECRET},
        max_retries=max_retries,
    )


def _url_result(*urls: str) -> Dict[str, Any]:
    return {"created": 1713833700, "data": [{"url": url} for url in urls]}


def _by_host(*servers: ScriptedServer) -> Dict[str, List[Dict[str, str]]]:
    """Headers of every request received, grouped by the Host the client addressed."""
    seen: Dict[str, List[Dict[str, str]]] = {}
    for server in servers:
        for request in server.received:
            seen.setdefault(request.headers.get("Host", ""), []).append(request.headers)
    return seen


def _api_host(api: ScriptedServer) -> str:
    return _root(api)[len("http://") :]


def _assert_credentials_only_to(api: ScriptedServer, *servers: ScriptedServer) -> None:
    """Every request addressed to the API's host:port carries all credentials; every other none."""
    for host, requests in _by_host(api, *servers).items():
        for headers in requests:
            if host == _api_host(api):
                assert _credentials(headers) == SENT_TO_API, host
            else:
                assert _credentials(headers) == set(), f"credentials sent to {host}: {_credentials(headers)}"


@pytest.mark.parametrize("status", [None] + REDIRECTS, ids=["direct"] + [str(code) for code in REDIRECTS])
@pytest.mark.parametrize("storage_host", ["other-port", "localhost-same-port"])
def test_a_storage_host_never_receives_credentials(tmp_path: Path, status: Optional[int], storage_host: str) -> None:
    """A URL result on another origin, reached directly or through any redirect from the API's own
    origin: the image arrives, and only requests to the API's host:port carry credentials. The other
    origin is another port, or the API's very server named ``localhost`` (same port, other host)."""
    api = ScriptedServer([])
    other = ScriptedServer([Reply(200, PNG, {"Content-Type": "image/png"})])
    with api, other:
        storage = _root(other) if storage_host == "other-port" else _root(api, "localhost")
        image_url = storage + "/blob/otter.png?sig=1"
        first = image_url if status is None else _root(api) + "/v1/files/img-1/content"
        api.replies = [Reply(200, _url_result(first))]
        if status is not None:
            api.replies.append(Reply(status, b"", {"Location": image_url}))
        api.replies.append(Reply(200, PNG, {"Content-Type": "image/png"}))
        with _api_provider(api) as provider:
            saved = (
                provider.generate_image("An otter", model="dall-e-3", response_format="url").images[0].save(tmp_path)
            )
    assert saved.read_bytes() == PNG
    hosts = _by_host(api, other)
    storage_netloc = storage[len("http://") :]
    assert len(hosts[storage_netloc]) == 1
    assert len(hosts[_api_host(api)]) == (1 if status is None else 2)
    _assert_credentials_only_to(api, other)


@pytest.mark.parametrize("status", REDIRECTS)
def test_a_storage_host_redirecting_back_to_the_api_origin(tmp_path: Path, status: int) -> None:
    """API -> storage -> API: the library re-attaches credentials on the way back, because that hop is
    the API's own origin (scheme, host and port), and only then; the storage host never gets them."""
    api = ScriptedServer([])
    storage = ScriptedServer([])
    with api, storage:
        api.replies = [
            Reply(200, _url_result(_root(api) + "/v1/files/img-1/content")),
            Reply(status, b"", {"Location": _root(storage) + "/hop"}),
            Reply(200, PNG, {"Content-Type": "image/png"}),
        ]
        storage.replies = [Reply(status, b"", {"Location": _root(api) + "/v1/files/img-1/final"})]
        with _api_provider(api) as provider:
            saved = (
                provider.generate_image("An otter", model="dall-e-3", response_format="url").images[0].save(tmp_path)
            )
    assert saved.read_bytes() == PNG
    assert [(request.method, request.path) for request in api.received] == [
        ("POST", "/v1/images/generations"),
        ("GET", "/v1/files/img-1/content"),
        ("GET", "/v1/files/img-1/final"),
    ]
    assert [request.path for request in storage.received] == ["/hop"]
    _assert_credentials_only_to(api, storage)


def test_a_redirect_to_the_api_host_under_another_name_or_port_gets_no_credentials(tmp_path: Path) -> None:
    """Same machine, same server, but ``localhost`` instead of ``127.0.0.1``, or another port: another origin."""
    api = ScriptedServer([])
    third = ScriptedServer(
        [Reply(302, b"", {"Location": "/final.png"}), Reply(200, PNG, {"Content-Type": "image/png"})]
    )
    with api, third:
        api.replies = [
            Reply(200, _url_result(_root(api) + "/v1/start")),
            Reply(302, b"", {"Location": _root(api, "localhost") + "/v1/renamed"}),
            Reply(302, b"", {"Location": _root(third) + "/elsewhere"}),
        ]
        with _api_provider(api) as provider:
            saved = (
                provider.generate_image("An otter", model="dall-e-3", response_format="url").images[0].save(tmp_path)
            )
    assert saved.read_bytes() == PNG
    assert [request.path for request in api.received] == ["/v1/images/generations", "/v1/start", "/v1/renamed"]
    assert api.received[2].headers["Host"] == _root(api, "localhost")[len("http://") :]
    assert [request.path for request in third.received] == ["/elsewhere", "/final.png"]
    _assert_credentials_only_to(api, third)


def test_a_url_on_the_api_host_with_another_scheme_is_not_fetched(mocked: Any, tmp_path: Path) -> None:
    """The scheme is part of the origin: http://127.0.0.1:8443 is not https://127.0.0.1:8443, and with an https
    API a plain-http image URL is not fetched at all (only the stand-in, plain http on this machine, gets http)."""
    base = "https://127.0.0.1:8443/v1"
    mocked.add("POST", base + "/images/generations", json=_url_result("http://127.0.0.1:8443/v1/img.png"))
    mocked.add("GET", "http://127.0.0.1:8443/v1/img.png", body=PNG, content_type="image/png")
    with OpenAIImageProvider(
        clock=BEFORE_SHUTDOWNS, api_key=API_KEY, base_url=base, organization=ORGANIZATION, project=PROJECT
    ) as provider:
        result = provider.generate_image("An otter", model="dall-e-3", response_format="url")
        with pytest.raises(ResponseValidationError, match="only https"):
            result.images[0].save(tmp_path)
    [api_call] = (call.request for call in mocked.calls)
    assert {"authorization", "openai-organization", "openai-project"} <= _credentials(dict(api_call.headers))
    assert list(tmp_path.iterdir()) == []


def test_a_redirect_chain_longer_than_the_limit_is_a_typed_error(tmp_path: Path) -> None:
    """A storage host redirecting forever: ResponseValidationError after the limit, no credentials, no file."""
    api = ScriptedServer([])
    storage = ScriptedServer([Reply(302, b"", {"Location": "/again"})])
    with api, storage:
        api.replies = [
            Reply(200, _url_result(_root(api) + "/v1/files/img-1/content")),
            Reply(307, b"", {"Location": _root(storage) + "/again"}),
        ]
        with _api_provider(api) as provider:
            result = provider.generate_image("An otter", model="dall-e-3", response_format="url")
            with pytest.raises(ResponseValidationError, match=r"redirected more than 5 times"):
                result.images[0].save(tmp_path / "otter.png")
    # The first request and five redirects: one to the API's origin, five to the storage host.
    assert len(api.received) == 2 and len(storage.received) == 5
    _assert_credentials_only_to(api, storage)
    assert os.listdir(str(tmp_path)) == []


def _send_generate(provider: OpenAIImageProvider) -> Any:
    return provider.generate_image("An otter")


def _send_edit(provider: OpenAIImageProvider) -> Any:
    return provider.edit_image("An otter in a hat", PNG)


def _send_stream(provider: OpenAIImageProvider) -> Any:
    with provider.stream_image("An otter", partial_images=1) as stream:
        return list(stream)


@pytest.mark.parametrize(
    "status, send",
    [(code, _send_generate) for code in REDIRECTS] + [(307, _send_edit), (308, _send_stream)],
    ids=[f"generate-{code}" for code in REDIRECTS] + ["edit-307", "stream-308"],
)
def test_the_api_answering_a_redirect_is_an_error_and_nothing_follows_it(status: int, send: Any) -> None:
    """API calls are sent with allow_redirects=False: a 3xx is an APIStatusError naming the target,
    tried once, and the target (another origin) receives nothing at all."""
    with ScriptedServer([Reply(200, images_body())]) as elsewhere:
        target = _root(elsewhere) + "/steal"
        with ScriptedServer([Reply(status, b"", {"Location": target})]) as api:
            with _api_provider(api, max_retries=2) as provider:
                with pytest.raises(APIStatusError) as caught:
                    send(provider)
    assert type(caught.value) is APIStatusError
    assert caught.value.status_code == status and caught.value.attempts == 1
    assert "redirects are not followed" in caught.value.message and target in caught.value.message
    assert len(api.received) == 1 and _credentials(api.received[0].headers) == SENT_TO_API
    assert elsewhere.received == []


# -- plain http only to this machine ---------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/v1",
        "http://EXAMPLE.com:80/v1",
        "http://10.0.0.1:8080/v1",
        "http://192.168.1.10/v1",
        "http://169.254.169.254/v1",
        "http://0.0.0.0:8080/v1",
        "http://[::]:8080/v1",
        "http://[2001:db8::1]/v1",
        "http://127.0.0.1.example.com/v1",
        "http://localhost.example.com/v1",
        "http://notlocalhost/v1",
    ],
)
def test_plain_http_to_a_host_other_than_this_machine_is_refused_with_a_key(mocked: Any, url: str) -> None:
    """Look-alikes of loopback names, unspecified and private addresses are not loopback: refused before any I/O."""
    with pytest.raises(ConfigurationError) as caught:
        OpenAIImageProvider(api_key=API_KEY, base_url=url)
    assert "allow_insecure_http" in caught.value.message
    with pytest.raises(ConfigurationError):
        AzureOpenAIImageProvider(api_key=API_KEY, endpoint=url[: -len("/v1")], api_version="2024-02-01")
    assert len(mocked.calls) == 0


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/v1",
        "http://127.8.9.10:8080/v1",
        "http://[::1]/v1",
        "http://localhost/v1",
        "http://localhost./v1",
    ],
)
def test_plain_http_to_this_machine_is_allowed_with_a_key(mocked: Any, url: str) -> None:
    """All of 127.0.0.0/8, ::1 and localhost (with or without the root dot)."""
    mocked.add("POST", url + "/images/generations", json=images_body())
    with OpenAIImageProvider(clock=BEFORE_SHUTDOWNS, api_key=API_KEY, base_url=url) as provider:
        provider.generate_image("An otter")
    assert mocked.calls[0].request.headers["Authorization"] == "Bearer " + API_KEY


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_the_key_really_travels_over_plain_http_to_loopback(host: str) -> None:
    """On real sockets: the OpenAI key and the Azure api-key reach a loopback http server."""
    with ScriptedServer([Reply(200, images_body())]) as server:
        root = _root(server, host)
        with OpenAIImageProvider(clock=BEFORE_SHUTDOWNS, api_key=API_KEY, base_url=root + "/v1") as provider:
            provider.generate_image("An otter")
        with AzureOpenAIImageProvider(
            api_key=API_KEY, endpoint=root, deployment="img", api_version="2024-02-01"
        ) as azure:
            azure.generate_image("An otter")
    assert server.received[0].headers["Authorization"] == "Bearer " + API_KEY
    assert server.received[1].headers["api-key"] == API_KEY
    assert {request.headers["Host"] for request in server.received} == {root[len("http://") :]}


# -- output paths stay inside the chosen folder ----------------------------------------------

_WRITE_EVENTS = {"os.mkdir", "os.remove", "os.rmdir", "os.chmod", "os.truncate", "os.utime", "shutil.copyfile"}
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_recording: Optional[List[str]] = None
_allowed_root = ""
_hook_installed = False


def _audit(event: str, args: Any) -> None:
    # Installed once for the session (audit hooks cannot be removed); idle unless a test records.
    recording = _recording
    if recording is None:
        return
    path: Any = None
    if event == "open":
        path, mode, flags = args
        if not ((isinstance(mode, str) and any(char in mode for char in "wax+")) or (flags or 0) & _WRITE_FLAGS):
            return
    elif event in ("os.rename", "os.link", "os.symlink"):
        path = args[1]
    elif event in _WRITE_EVENTS:
        path = args[0]
    else:
        return
    if isinstance(path, (str, bytes, os.PathLike)):
        absolute = os.path.abspath(os.fsdecode(path))
        recording.append(absolute)
        if not _inside(absolute, Path(_allowed_root)):
            # Raising from an audit hook aborts the operation: a broken library must not write
            # into /etc or anywhere else on the machine running the tests.
            raise AssertionError(f"blocked a write outside the test's folder: {absolute}")


@contextmanager
def writes_recorded(allowed_root: Path) -> Iterator[List[str]]:
    """Every path this process creates, writes, renames onto, links, chmods or removes meanwhile,
    absolute; any of them outside ``allowed_root`` is recorded and refused (AssertionError)."""
    global _recording, _allowed_root, _hook_installed
    if not _hook_installed:
        sys.addaudithook(_audit)
        _hook_installed = True
    written: List[str] = []
    _allowed_root = str(allowed_root)
    _recording = written
    try:
        yield written
    finally:
        _recording = None


def _inside(path: Any, folder: Path) -> bool:
    resolved, root = os.path.realpath(str(path)), os.path.realpath(str(folder))
    return resolved != root and os.path.commonpath([resolved, root]) == root


def _tree(folder: Path) -> Set[str]:
    return {
        os.path.realpath(os.path.join(top, name)) for top, dirs, files in os.walk(str(folder)) for name in dirs + files
    }


#: Pieces of hostile names, combined by hypothesis with arbitrary text.
_FRAGMENTS = [
    "../",
    "..\\",
    "..",
    ".",
    "/",
    "\\",
    "/etc/passwd",
    "/tmp/x",
    "C:\\Windows\\",
    "c:",
    "D:x",
    "\\\\server\\share\\",
    "\x00",
    "\n",
    "\r",
    "\t",
    "\x7f",
    "CON",
    "con.txt",
    "NUL",
    "aux",
    "COM1",
    "lpt9.png",
    "PRN ",
    "~",
    "~root",
    "$HOME",
    "%2e%2e%2f",
    "\u202e",
    "\u200f",
    "\u200b",
    "\u0301",
    "e\u0301",
    "\ufeff",
    "\uff0e\uff0e\uff0f",
    "\u2025",
    "\u2215",
    "\u29f8",
    "\ufe52",
    "．．／",
    "ｃｏｎ",
    "\ud800",
    "\U0001f600",
    "\u0627\u0644\u0639\u0631\u0628\u064a\u0629",
    "a" * 300,
    "\u00e9" * 120,
    "\U00020000" * 90,
    " ",
    "-",
    "_",
    ".png",
    ".json",
    "image",
]
_HOSTILE_TEXT = st.one_of(
    st.text(max_size=400),
    st.lists(st.one_of(st.sampled_from(_FRAGMENTS), st.text(max_size=8)), max_size=12).map("".join),
)


JPEG = make_jpeg(4, 3)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _no_fsync(monkeypatch: pytest.MonkeyPatch) -> None:
    """Durability is not what these properties check, and fsync costs milliseconds a call on a real disk."""
    monkeypatch.setattr(os, "fsync", lambda descriptor: None)


_PROPERTY = settings(
    max_examples=examples(100),
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@_PROPERTY
@given(prompt=_HOSTILE_TEXT)
@example(prompt="../../etc/passwd")
@example(prompt="/etc/passwd")
@example(prompt="C:\\Windows\\System32\\drivers\\etc\\hosts")
@example(prompt="..\\..\\x\x00y")
@example(prompt="．．／．．／ｅｔｃ")
@example(prompt="CON")
@example(prompt="\u202egnp.exe")
@example(prompt="x" * 5000)
def test_save_all_never_writes_outside_its_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prompt: str) -> None:
    """Whatever the prompt (names from it) or the stem: every file written lies inside the folder, nothing
    else under its parent changes, and every write the process makes (audit events) is inside it."""
    _no_fsync(monkeypatch)
    case = Path(tempfile.mkdtemp(dir=str(tmp_path)))
    folder = case / "deep" / "out"
    body = images_body(2, data=[{"b64_json": PNG_B64}, {"b64_json": _b64(JPEG)}])
    response = ImageResponse.from_body(
        body, {"x-request-id": "req_1"}, request={"prompt": prompt, "model": "gpt-image-2"}
    )
    try:
        with writes_recorded(case) as written:
            paths = response.save_all(folder, metadata=True)
            paths += response.save_all(folder, stem=prompt, overwrite=True)
            paths.append(response.images[0].save(folder, overwrite=True))
        assert all(_inside(path, folder) and Path(path).is_file() for path in paths), paths
        # The recorder saw the writes it judges (each file is published by a link or rename).
        assert {os.path.abspath(str(path)) for path in paths} <= set(written)
        assert [path for path in written if not _inside(path, case)] == []
        assert [
            path for path in written if not (_inside(path, folder) or path in (str(case / "deep"), str(folder)))
        ] == []
        assert os.listdir(str(case)) == ["deep"] and os.listdir(str(case / "deep")) == ["out"]
        assert all(_inside(path, folder) for path in _tree(case / "deep") if path != os.path.realpath(str(folder)))
    finally:
        shutil.rmtree(str(case))


_ITEM_IDS = st.one_of(
    _HOSTILE_TEXT,
    st.from_regex(r"[A-Za-z0-9._-]{1,100}", fullmatch=True),
    st.sampled_from(["..", "...", ".hidden", "-", "a..b", "con", "x.png", "a" * 100, "a" * 101, "../x", "/abs"]),
)


@_PROPERTY
@given(ids=st.lists(_ITEM_IDS, min_size=1, max_size=3, unique=True))
@example(ids=["../../escape", "/etc/passwd", "C:\\x"])
@example(ids=["..", "ok-id", "nul"])
def test_batch_item_ids_never_write_outside_the_output_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ids: List[str]
) -> None:
    """Whatever an item's id: the batch writes only inside its output folder (images, sidecars, manifest,
    summary), every done item's files are there, and every refused id is recorded as failed."""
    _no_fsync(monkeypatch)
    case = Path(tempfile.mkdtemp(dir=str(tmp_path)))
    items = case / "items.jsonl"
    items.write_text("".join(json.dumps({"id": item_id, "prompt": "An otter"}) + "\n" for item_id in ids))
    folder = case / "out"
    try:
        with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
            mock.add("POST", GENERATIONS_URL, json=images_body())
            with OpenAIImageProvider(
                clock=BEFORE_SHUTDOWNS, api_key=API_KEY, max_retries=0
            ) as provider, writes_recorded(case) as written:
                summary = run_batch(str(items), str(folder), provider=provider, concurrency=1, metadata=True)
        # Every item is accounted for: done, failed, or refused as a malformed line (recorded as failed).
        assert summary.done + summary.failed + len(summary.problems) == len(ids)
        assert [path for path in written if not (_inside(path, folder) or path == str(folder))] == []
        assert sorted(os.listdir(str(case))) == ["items.jsonl", "out"]
        assert str(folder / "manifest.jsonl") in written
        records = [json.loads(line) for line in (folder / "manifest.jsonl").read_text().splitlines()]
        for record in records:
            for name in record.get("files", []):
                assert _inside(folder / name, folder) and (folder / name).is_file()
        assert len(records) == len(ids) and {record["state"] for record in records} <= {"done", "failed"}
        assert sum(record["state"] == "done" for record in records) == summary.done
    finally:
        shutil.rmtree(str(case))


@pytest.mark.parametrize(
    "lines, clash",
    [
        (
            [{"id": "cat", "prompt": "A"}, {"id": "cat.png", "prompt": "B"}],
            "'cat' and 'cat.png' (both would write 'cat')",
        ),
        ([{"id": "Cat", "prompt": "A"}, {"id": "cat.JPG", "prompt": "B"}], "'Cat' and 'cat.JPG'"),
        (
            [{"id": "fox", "prompt": "C", "n": 2}, {"id": "fox-1", "prompt": "D"}],
            "'fox' and 'fox-1' (both would write 'fox-1')",
        ),
    ],
    ids=["image-suffix", "case-and-suffix", "numbered-images"],
)
def test_distinct_batch_item_ids_that_would_share_a_file_are_refused_before_sending(
    tmp_path: Path, lines: List[Dict[str, Any]], clash: str
) -> None:
    """'cat' and 'cat.png' both save as cat.png; 'fox' with two images writes 'fox-1''s file.
    Refused up front, like duplicate ids: nothing is sent, nothing is written."""
    items = tmp_path / "items.jsonl"
    items.write_text("".join(json.dumps(line) + "\n" for line in lines))
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        with OpenAIImageProvider(clock=BEFORE_SHUTDOWNS, api_key=API_KEY) as provider:
            with pytest.raises(RequestValidationError) as caught:
                run_batch(str(items), str(tmp_path / "out"), provider=provider, concurrency=1)
            with pytest.raises(RequestValidationError):
                as_items = [
                    BatchItem(line["id"], line["prompt"], {"n": line["n"]} if "n" in line else {}, (), None, number)
                    for number, line in enumerate(lines, 1)
                ]
                run_batch(as_items, str(tmp_path / "out"), provider=provider)
        assert len(mock.calls) == 0
    assert clash in str(caught.value) and caught.value.param == "id"
    assert not (tmp_path / "out" / "manifest.jsonl").exists()


# -- oversized inputs are refused before being read whole ------------------------------------

#: A file far over every input limit: 60 MB, sparse on disk.
HUGE = 60 * MB
GPT_LIMIT = 50 * MB
DALL_E_2_LIMIT = MASK_LIMIT = 4 * MB


def _sparse_png(path: Path, size: int = HUGE) -> Path:
    """A real PNG header followed by a hole: ``size`` bytes that take no disk space and no time to write."""
    with open(str(path), "wb") as handle:
        handle.write(make_png(8, 8))
        handle.truncate(size)
    return path


class RecordingReader(io.RawIOBase):
    """A binary file object of ``size`` bytes (a PNG, then zeros) that records the size of every read()."""

    def __init__(self, size: int = HUGE) -> None:
        super().__init__()
        self.head = make_png(8, 8)
        self.size = size
        self.position = 0
        self.reads: List[Optional[int]] = []

    def readable(self) -> bool:
        return True

    def read(self, size: Optional[int] = -1) -> bytes:
        self.reads.append(size)
        end = self.size if size is None or size < 0 else min(self.size, self.position + size)
        start, self.position = self.position, end
        head = self.head[start:end]
        return head + bytes(end - start - len(head))

    def readall(self) -> bytes:
        return self.read(-1)

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    @property
    def bytes_read(self) -> int:
        return self.position


@contextmanager
def peak_memory() -> Iterator[List[int]]:
    """The peak of Python allocations while the block runs, in bytes."""
    peak: List[int] = []
    tracemalloc.start()
    try:
        yield peak
    finally:
        peak.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()


_OVERSIZED_INPUTS = [
    ("edit", "images", GPT_LIMIT, lambda provider, big: provider.edit_image("x", big, model="gpt-image-1.5")),
    ("edit-second-image", "images", GPT_LIMIT, lambda provider, big: provider.edit_image("x", [PNG, big])),
    ("edit-dall-e-2", "images", DALL_E_2_LIMIT, lambda provider, big: provider.edit_image("x", big, model="dall-e-2")),
    ("mask", "mask", MASK_LIMIT, lambda provider, big: provider.edit_image("x", make_png(8, 8, 6), mask=big)),
    ("variation", "image", DALL_E_2_LIMIT, lambda provider, big: provider.create_variation(big)),
]


@pytest.mark.parametrize("name, param, limit, send", _OVERSIZED_INPUTS, ids=[case[0] for case in _OVERSIZED_INPUTS])
def test_an_oversized_input_file_given_by_path_is_refused_without_reading_it(
    mocked: Any, provider: OpenAIImageProvider, tmp_path: Path, name: str, param: str, limit: int, send: Any
) -> None:
    """A 60 MB file: RequestValidationError naming the input, nothing sent, and memory never near its size."""
    big = _sparse_png(tmp_path / "huge.png")
    with peak_memory() as peak:
        with pytest.raises(RequestValidationError) as caught:
            send(provider, str(big))
    assert caught.value.param == param and "huge.png" in caught.value.message and f"{limit:,}" in caught.value.message
    assert peak[0] < 8 * MB, f"peak {peak[0]:,} bytes while refusing a {HUGE:,}-byte file"
    assert len(mocked.calls) == 0


@pytest.mark.parametrize("name, param, limit, send", _OVERSIZED_INPUTS, ids=[case[0] for case in _OVERSIZED_INPUTS])
def test_an_oversized_input_file_object_is_refused_after_reading_at_most_the_limit(
    mocked: Any, provider: OpenAIImageProvider, name: str, param: str, limit: int, send: Any
) -> None:
    """A 60 MB file object: refused with a typed error after at most limit + 1 bytes, never read whole."""
    big = RecordingReader()
    with pytest.raises(RequestValidationError) as caught:
        send(provider, big)
    assert caught.value.param == param
    assert None not in big.reads and all(size >= 0 for size in big.reads if size is not None)
    assert big.bytes_read <= limit + 1 < HUGE
    assert len(mocked.calls) == 0


def test_a_batch_api_edit_with_an_oversized_image_is_refused_without_reading_it(mocked: Any, tmp_path: Path) -> None:
    """--via batch-api turns edit inputs into data URLs: an image over 50 MB must be refused like an online edit
    (the item recorded failed with RequestValidationError), not read whole and base64-encoded."""
    big = _sparse_png(tmp_path / "huge.png", GPT_LIMIT + 1)
    items = tmp_path / "items.jsonl"
    items.write_text(json.dumps({"id": "big", "prompt": "x", "images": [str(big)], "model": "gpt-image-1.5"}) + "\n")
    with OpenAIImageProvider(clock=BEFORE_SHUTDOWNS, api_key=API_KEY, max_retries=0) as provider:
        with peak_memory() as peak:
            try:
                summary = run_batch_api(str(items), str(tmp_path / "out"), provider=provider)
            except ImageProviderError as exc:  # the upload of an 80 MB line to nowhere
                summary = exc  # type: ignore[assignment]  # both carry .failures
    assert peak[0] < 16 * MB, f"peak {peak[0]:,} bytes for a {GPT_LIMIT + 1:,}-byte input"
    assert [failure["error_class"] for failure in summary.failures] == ["RequestValidationError"]
    assert len(mocked.calls) == 0


def test_a_data_url_is_refused_when_the_api_could_not_take_it(tmp_path: Path) -> None:
    """image_data_url stops at the largest image whose data URL fits the API's image_url limit."""
    from imageprovider._inputs import MAX_DATA_URL_BYTES, MAX_IMAGE_URL_CHARS

    fits = _sparse_png(tmp_path / "fits.png", MAX_DATA_URL_BYTES)
    assert len(image_data_url(str(fits))) <= MAX_IMAGE_URL_CHARS
    too_big = _sparse_png(tmp_path / "too-big.png", MAX_DATA_URL_BYTES + 1)
    with pytest.raises(RequestValidationError) as caught:
        image_data_url(str(too_big))
    assert caught.value.param == "image" and f"{MAX_DATA_URL_BYTES:,}" in str(caught.value)
