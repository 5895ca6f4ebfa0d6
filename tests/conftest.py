"""Shared fixtures: an isolated environment, no real sleeping, a mocked API."""

from pathlib import Path
from typing import Any, Callable, Iterator, List

import pytest
import responses
from helpers import API_KEY, BASE_URL, BEFORE_SHUTDOWNS, ISOLATED_VARIABLES
from hypothesis import settings

from imageprovider import OpenAIImageProvider, _retry
from imageprovider.testing import FakeImagesServer

#: Suite-wide canary: the test API key must never appear in logs, errors, output or files.
pytest_plugins = ["canary_plugin"]

#: Hypothesis profiles. "ci" (CI's nox sessions pass --hypothesis-profile=ci) runs every property
#: its full number of examples; "dev", the default, a fifth of them, so that the fast lane stays
#: fast. Each property sets its own weight through helpers.examples().
settings.register_profile("ci", max_examples=100)
settings.register_profile("dev", max_examples=20)
settings.load_profile("dev")


@pytest.fixture(scope="session")
def no_config_home(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A folder holding no config file, shared by the tests that do not write one."""
    return tmp_path_factory.mktemp("no-config-home")


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest, no_config_home: Any) -> None:
    """No test sees the developer's keys, base URL or config file.

    A test that asks for ``tmp_path`` gets its per-user config folders there (to write a config file
    into); the others share one empty folder (a folder per test costs seconds over the suite).
    """
    for name in ISOLATED_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    home = request.getfixturevalue("tmp_path") if "tmp_path" in request.fixturenames else no_config_home
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "xdg-config"))
    monkeypatch.setenv("APPDATA", str(home / "appdata"))


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


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A key and the API root in the environment (a ``mocked`` API answers there); runs in ``tmp_path``."""
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", BASE_URL)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def make_server() -> Iterator[Callable[..., FakeImagesServer]]:
    """Starts stand-in servers with the given options; stops them all after the test."""
    started: List[FakeImagesServer] = []

    def factory(**options: Any) -> FakeImagesServer:
        options.setdefault("detail_bits", 0)
        server = FakeImagesServer(**options).start()
        started.append(server)
        return server

    yield factory
    for server in started:
        server.stop()
