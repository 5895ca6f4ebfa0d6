"""The API key never shows up in logs, reprs, exception texts or printed output.

A canary key is used through every kind of outcome with all loggers at DEBUG;
every piece of text produced is then searched for it.
"""

import logging
from typing import Any, List

import pytest
from helpers import GENERATIONS_URL, images_body
from scripted_server import Reply, ScriptedServer, unused_port

import imageprovider
from imageprovider import ConfigurationError, ImageProviderError, OpenAIImageProvider, cli

CANARY = "sk-canary-5f1e0c7a9b3d4e2f8a6c"


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
        errors.append(repr(provider._transport._auth))
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
    headers = {name.lower() for name in provider._transport.session.headers}
    assert "authorization" not in headers
    assert "openai-organization" not in headers
    assert provider._transport.session.auth is None


def test_public_surface_has_no_key_attribute_in_repr():
    """Sanity: the package exports no object whose repr could hold a key."""
    assert "api_key=<redacted>" in repr(OpenAIImageProvider(api_key=CANARY))
    assert CANARY not in str(imageprovider.__dict__)
