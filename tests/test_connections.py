"""Connection reuse over real sockets: bodies read as they arrive still give the connection back."""

import json
import os
import socket
import threading
import time
import warnings
from typing import List, Tuple

import pytest
from helpers import API_KEY, PNG, PNG_B64
from scripted_server import RawServer, Seen, echo_prompt, head, send

from imageprovider import OpenAIImageProvider, ProviderClosedError, ResponseValidationError
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


# -- forked workers and close() -----------------------------------------------------------------

#: A provider made (and used) before the fork, as gunicorn --preload or a module-level provider does.
_INHERITED: List[OpenAIImageProvider] = []


def _calls_in_a_child(worker: int) -> Tuple[int, int, int]:
    """In a forked child: 50 calls on the inherited provider; (right answers, wrong answers, errors)."""
    right = wrong = errors = 0
    for index in range(50):
        prompt = f"worker {worker} call {index} pid {os.getpid()}"
        try:
            answer = _INHERITED[0].generate_image(prompt).images[0].revised_prompt
        except Exception:
            errors += 1
            continue
        if answer == prompt:
            right += 1
        else:
            wrong += 1
    return right, wrong, errors


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is a POSIX start method")
def test_forked_children_never_use_the_parents_connection() -> None:
    """A provider used before ``fork`` shares no socket with its children: each child opens its own, and 4
    children x 50 calls get 200 right answers (they once received one another's answers, or garbage)."""
    import multiprocessing

    with RawServer(echo_prompt) as server:
        provider = OpenAIImageProvider(api_key=API_KEY, base_url=server.base_url, max_retries=0, timeout=(5, 10))
        _INHERITED[:] = [provider]
        try:
            assert provider.generate_image("warm-up").images[0].revised_prompt == "warm-up"
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: fork with threads running
                with multiprocessing.get_context("fork").Pool(4) as pool:
                    # Bounded: children sharing the parent's socket have hung for good.
                    results = pool.map_async(_calls_in_a_child, range(4)).get(timeout=60)
            # The parent's connection is still its own, and still works.
            assert provider.generate_image("after").images[0].revised_prompt == "after"
        finally:
            provider.close()
            _INHERITED.clear()
    assert [sum(column) for column in zip(*results)] == [200, 0, 0]
    assert server.connections == 1 + 4  # the parent's one, and one per child


def test_close_closes_the_connection_a_stream_still_holds() -> None:
    """``close()`` closes every pooled socket at once, also one an unfinished stream holds; the provider, and
    one made from it by ``with_options``, then refuse to send (ProviderClosedError), sending nothing."""
    hung_up = threading.Event()

    def stream_then_wait(request: Seen, connection: socket.socket) -> bool:
        fields = {"Content-Type": "text/event-stream"}
        partial = {"type": "image_generation.partial_image", "b64_json": PNG_B64, "partial_image_index": 0}
        send(
            connection,
            head(200, fields)
            + b"event: image_generation.partial_image\ndata: "
            + json.dumps(partial).encode()
            + b"\n\n",
        )
        connection.settimeout(5)
        try:
            if connection.recv(1) == b"":
                hung_up.set()
        except OSError:
            pass
        return False

    with RawServer(stream_then_wait) as server:
        provider = OpenAIImageProvider(api_key=API_KEY, base_url=server.base_url, max_retries=0)
        patient = provider.with_options(timeout=30)
        stream = provider.stream_image("a fox", partial_images=1)
        first = next(iter(stream))
        assert first.image.data == PNG
        started = time.monotonic()
        provider.close()
        assert hung_up.wait(2), "the socket the stream held was left open"
        assert time.monotonic() - started < 2
        for closed in (provider, patient):
            with pytest.raises(ProviderClosedError):
                closed.generate_image("too late")
        assert len(server.seen) == 1
        stream.close()
