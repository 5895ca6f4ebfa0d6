"""README's Django recipe, in a real Django project made here: a view through Django's test client and a
``manage.py`` command, with the recipe's LOGGING, against the stand-in."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import readme_recipe

from imageprovider.testing import FakeImagesServer

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(autouse=True)
def needs_django() -> None:
    """Asked for only by tests that run (a plain ``pytest`` deselects these): no skip where nothing runs."""
    pytest.importorskip("django", reason="the integration extra: pip install '.[integration]'")


SETTINGS = """
from images.services import IMAGEPROVIDER, LOGGING  # the recipe's settings part

SECRET_KEY = "not-secret"
DEBUG = False
ALLOWED_HOSTS = ["testserver"]
INSTALLED_APPS = ["images"]
ROOT_URLCONF = "urls"
DATABASES = {}
"""
URLS = """
from django.http import HttpResponse
from django.urls import path

from images.services import provider


def image(request):
    result = provider().generate_image(request.GET["prompt"], size="1024x1024", quality="low")
    return HttpResponse(result.images[0].data, content_type=result.images[0].mime_type)


urlpatterns = [path("image", image)]
"""
COMMAND = """
from django.core.management.base import BaseCommand

from images.services import provider


class Command(BaseCommand):
    help = "Generate one image into a file."

    def add_arguments(self, parser):
        parser.add_argument("prompt")
        parser.add_argument("output")

    def handle(self, prompt, output, **options):
        path = provider().generate_image(prompt, size="1024x1024", quality="low").images[0].save(output)
        self.stdout.write(str(path))
"""
CLIENT = """
import django
django.setup()
from django.test import Client
answer = Client().get("/image", {"prompt": "A fox in the snow"})
print(answer.status_code, answer["Content-Type"], answer.content[1:4] == b"PNG")
"""


def test_the_django_recipe_in_a_view_and_a_management_command(tmp_path: Path) -> None:
    project = tmp_path / "project"
    commands = project / "images" / "management" / "commands"
    commands.mkdir(parents=True)
    for folder in (project / "images", project / "images" / "management", commands):
        (folder / "__init__.py").write_text("", encoding="utf-8")
    (project / "images" / "services.py").write_text(readme_recipe("django"), encoding="utf-8")
    (commands / "make_image.py").write_text(COMMAND, encoding="utf-8")
    (project / "settings.py").write_text(SETTINGS, encoding="utf-8")
    (project / "urls.py").write_text(URLS, encoding="utf-8")
    (project / "manage.py").write_text(
        "import sys\nfrom django.core.management import execute_from_command_line\nexecute_from_command_line(sys.argv)\n",
        encoding="utf-8",
    )
    with FakeImagesServer(detail_bits=0) as server:
        env = dict(
            os.environ,
            DJANGO_SETTINGS_MODULE="settings",
            PYTHONPATH=str(project),
            OPENAI_API_KEY=server.api_key,
            OPENAI_BASE_URL=server.base_url,
        )
        client = subprocess.run(
            [sys.executable, "-c", CLIENT], cwd=str(project), env=env, capture_output=True, text=True, timeout=120
        )
        command = subprocess.run(
            [sys.executable, "manage.py", "make_image", "An owl", "owl.png"],
            cwd=str(project),
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert client.returncode == 0, client.stderr
    assert client.stdout.split() == ["200", "image/png", "True"]
    assert command.returncode == 0, command.stderr
    assert command.stdout.strip() == "owl.png" and (project / "owl.png").read_bytes()[:4] == b"\x89PNG"
    for output in (client.stderr, command.stderr):
        # The recipe's LOGGING formatter names the library's fields: every record formats, none fails.
        assert "Logging error" not in output
        assert " POST /images/generations 200 " in output
    assert [request.body["prompt"] for request in server.requests] == ["A fox in the snow", "An owl"]
