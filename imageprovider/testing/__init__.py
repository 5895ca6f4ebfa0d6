"""
imageprovider.testing
~~~~~~~~~~~~~~~~~~~~~

A local stand-in for OpenAI's images API, for offline use, for this library's
tests and for yours: :class:`FakeImagesServer` speaks the images, models,
files and batches endpoints, makes real images (PNG, JPEG, WEBP, animated GIF,
SVG), checks requests against the library's JSON Schemas and its own table of
API rules (independent of the client's checks, so it can catch their bugs),
refuses models from their shutdown dates on a clock tests can set
(``today=``), and can misbehave on purpose (:class:`Fault`).

Run it in the foreground with ``python -m imageprovider.testing``. With
pytest, the ``fake_images_server`` and ``fake_images_provider`` fixtures are
registered automatically.
"""

from ._faults import Fault, parse_fault
from ._server import FAKE_API_KEY, FakeImagesServer, RecordedRequest

__all__ = ["FAKE_API_KEY", "FakeImagesServer", "Fault", "RecordedRequest", "parse_fault"]
