"""
imageprovider.testing.pytest_plugin
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~

pytest fixtures, registered through the ``pytest11`` entry point when
imageprovider is installed: nothing starts unless a test asks for a fixture.
"""

from typing import Iterator

import pytest

from ..provider import OpenAIImageProvider
from ._server import FakeImagesServer


@pytest.fixture
def fake_images_server() -> Iterator[FakeImagesServer]:
    """A running :class:`FakeImagesServer` on a free loopback port, stopped after the test."""
    with FakeImagesServer() as server:
        yield server


@pytest.fixture
def fake_images_provider(fake_images_server: FakeImagesServer) -> Iterator[OpenAIImageProvider]:
    """An :class:`OpenAIImageProvider` pointed at ``fake_images_server``, closed after the test."""
    with OpenAIImageProvider(api_key=fake_images_server.api_key, base_url=fake_images_server.base_url) as provider:
        yield provider
