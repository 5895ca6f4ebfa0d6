"""Connection reuse over real sockets: bodies read as they arrive still give the connection back."""

import threading
from typing import List

import pytest

from imageprovider import OpenAIImageProvider, ResponseValidationError
from imageprovider.testing import FakeImagesServer


def test_sequential_calls_share_one_connection():
    """50 calls on one provider open one TCP connection (the body is read to its end each time)."""
    with FakeImagesServer(detail_bits=0) as server:
        with OpenAIImageProvider(api_key=server.api_key, base_url=server.base_url) as provider:
            for _ in range(50):
                assert provider.generate_image("a fox", size="1024x1024").images[0].data
        assert server.connections_accepted == 1


def test_sequential_saves_share_one_connection(tmp_path):
    """The same with save_to=, and with an off-schema body (read whole, then refused) in between."""
    with FakeImagesServer(detail_bits=0) as server:
        with OpenAIImageProvider(api_key=server.api_key, base_url=server.base_url) as provider:
            for index in range(10):
                if index == 5:
                    server.add_fault("bad-schema")
                    with pytest.raises(ResponseValidationError):
                        provider.generate_image("refused", size="1024x1024", save_to=tmp_path)
                provider.generate_image(f"fox {index}", size="1024x1024", save_to=tmp_path)
        assert server.connections_accepted == 1
    assert sorted(path.name for path in tmp_path.iterdir()) == [f"fox-{index}.png" for index in range(10)]


def test_threads_sharing_a_provider_use_at_most_one_connection_each():
    with FakeImagesServer(detail_bits=0) as server:
        with OpenAIImageProvider(api_key=server.api_key, base_url=server.base_url) as provider:
            errors: List[BaseException] = []
            start = threading.Barrier(8)

            def work() -> None:
                try:
                    start.wait()
                    for _ in range(10):
                        provider.generate_image("a fox", size="1024x1024")
                except BaseException as exc:  # reported below, in the test's thread
                    errors.append(exc)

            threads = [threading.Thread(target=work) for _ in range(8)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        assert errors == []
        assert 1 <= server.connections_accepted <= 8
        assert len(server.requests) == 80
