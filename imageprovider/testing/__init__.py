"""
imageprovider.testing
~~~~~~~~~~~~~~~~~~~~~

A local stand-in for OpenAI's images API, for offline use, for this library's
tests and for yours: :class:`FakeImagesServer` speaks the images, files and
batches endpoints, makes real images, validates requests with the library's
own schemas and rules, and can misbehave on purpose (:class:`Fault`).

Run it in the foreground with ``python -m imageprovider.testing``. With
pytest, the ``fake_images_server`` and ``fake_images_provider`` fixtures are
registered automatically.
"""

from ._faults import Fault, parse_fault
from ._server import FAKE_API_KEY, FakeImagesServer, RecordedRequest

__all__ = ["FAKE_API_KEY", "FakeImagesServer", "Fault", "RecordedRequest", "parse_fault"]
