"""README's Flask recipe, run with Flask's test client against the stand-in."""

import sys
from pathlib import Path
from typing import Iterator

import pytest
from helpers import readme_recipe

from imageprovider.testing import FakeImagesServer, Fault

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(autouse=True)
def needs_flask() -> None:
    """Asked for only by tests that run (a plain ``pytest`` deselects these): no skip where nothing runs."""
    pytest.importorskip("flask", reason="the integration extra: pip install '.[integration]'")


@pytest.fixture
def app_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    (tmp_path / "recipe_app.py").write_text(readme_recipe("flask"), encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    import recipe_app

    yield recipe_app
    sys.modules.pop("recipe_app", None)


def test_the_flask_recipe_serves_an_image_and_turns_errors_into_answers(
    app_module: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeImagesServer(detail_bits=0) as server:
        monkeypatch.setenv("OPENAI_API_KEY", server.api_key)
        app = app_module.create_app({"OPENAI_BASE_URL": server.base_url})  # type: ignore[attr-defined]
        client = app.test_client()
        answer = client.post("/images", data={"prompt": "A fox in the snow"})
        assert answer.status_code == 200 and answer.mimetype == "image/png"
        assert answer.data[:8] == b"\x89PNG\r\n\x1a\n"
        assert server.requests[-1].body["prompt"] == "A fox in the snow"
        refused = client.post("/images", data={"prompt": ""})  # refused before sending
        assert refused.status_code == 400 and refused.json["error"] == "RequestValidationError"
        server.add_fault(Fault.error(500, times=3))
        failed = client.post("/images", data={"prompt": "A fox"})
        assert failed.status_code == 502 and failed.json["error"] == "InternalServerError"
        app.extensions["imageprovider"].close()
