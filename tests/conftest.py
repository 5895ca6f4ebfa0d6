"""Shared fixtures: an isolated environment, no real sleeping, a mocked API."""

from typing import Any, List

import pytest
import responses
from helpers import API_KEY, BEFORE_SHUTDOWNS, ISOLATED_VARIABLES

from imageprovider import OpenAIImageProvider, _retry

#: Suite-wide canary: the test API key must never appear in logs, errors, output or files.
pytest_plugins = ["canary_plugin"]


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """No test sees the developer's keys, base URL or config file."""
    for name in ISOLATED_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("APPDATA", str(tmp_path / "appdata"))


@pytest.fixture(autouse=True)
def sleeps(monkeypatch: pytest.MonkeyPatch) -> List[float]:
    """Retry waits are recorded here instead of slept."""
    recorded: List[float] = []
    monkeypatch.setattr(_retry, "sleep", recorded.append)
    return recorded


@pytest.fixture
def mocked() -> Any:
    """A ``responses`` mock that also fails the test if a registered response went unused."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def provider() -> Any:
    """A provider with a known key, closed after the test.

    Its clock is set before every shutdown, so tests of the older models'
    rules (dall-e-2 edits, gpt-image-1's input_fidelity) still describe them.
    """
    with OpenAIImageProvider(api_key=API_KEY, clock=BEFORE_SHUTDOWNS) as instance:
        yield instance
