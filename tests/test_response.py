"""Reading bodies (imageprovider._response): failures while a body arrives report the whole request cycle."""

from typing import List

import pytest

from imageprovider import APIConnectionError, OpenAIImageProvider
from imageprovider.testing import FakeImagesServer, Fault


@pytest.mark.parametrize("cut", [Fault.drop_mid_body(), Fault.reset_mid_body()], ids=["dropped", "reset"])
def test_regression_a_body_cut_after_retries_reports_every_attempt(cut: Fault, sleeps: List[float]) -> None:
    """Regression (issue 13, bug 4): an error while reading a body always said ``attempts == 1``, even
    when the response came from the second attempt; it now carries the cycle's count."""
    with FakeImagesServer(detail_bits=0) as server:
        server.add_fault(Fault.error(503))
        server.add_fault(cut)
        with OpenAIImageProvider(api_key=server.api_key, base_url=server.base_url) as provider:
            with pytest.raises(APIConnectionError) as caught:
                provider.generate_image("A koi pond", size="1024x1024")
    assert caught.value.attempts == 2
    assert "after 2 attempts" in str(caught.value)
    assert len(sleeps) == 1
    assert [request.method for request in server.requests] == ["POST", "POST"]
