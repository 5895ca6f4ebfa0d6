"""The ``imageprovider`` command: files on disk, clean one-line errors, exit statuses."""

import base64
import json
import os
import subprocess
import sys

import pytest
from helpers import API_KEY, PNG, images_body
from scripted_server import Reply, ScriptedServer

import imageprovider
from imageprovider import cli

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01"


@pytest.fixture
def api_env(monkeypatch):
    """Point the command at a scripted server with a key in the environment."""
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)

    def use(server):
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)

    return use


def test_generate_writes_the_image_and_prints_its_path(api_env, tmp_path, capsys):
    """One image goes to the -o file, byte for byte; the request carries the options."""
    target = tmp_path / "otter.png"
    with ScriptedServer([Reply(200, images_body())]) as server:
        api_env(server)
        status = cli.main(
            [
                "generate",
                "An otter",
                "--size",
                "1536x1024",
                "--quality",
                "high",
                "--output-format",
                "png",
                "-o",
                str(target),
            ]
        )
    assert status == 0
    assert target.read_bytes() == PNG
    assert capsys.readouterr().out.strip() == str(target)
    sent = json.loads(server.received[0].body)
    assert sent == {
        "prompt": "An otter",
        "model": "gpt-image-2",
        "size": "1536x1024",
        "quality": "high",
        "output_format": "png",
    }
    assert [name for name in os.listdir(str(tmp_path)) if name.startswith(".")] == []


def test_several_images_go_into_the_output_folder_named_after_the_prompt(api_env, tmp_path, capsys):
    """n=2 with -o: a folder (created), files named after the prompt, numbered, extension from the bytes."""
    body = images_body(
        data=[{"b64_json": base64.b64encode(JPEG).decode()}, {"b64_json": base64.b64encode(PNG).decode()}]
    )
    with ScriptedServer([Reply(200, body)]) as server:
        api_env(server)
        assert cli.main(["generate", "Two foxes", "--n", "2", "-o", str(tmp_path / "fox")]) == 0
    assert (tmp_path / "fox" / "two-foxes-1.jpg").read_bytes() == JPEG
    assert (tmp_path / "fox" / "two-foxes-2.png").read_bytes() == PNG
    assert json.loads(server.received[0].body)["n"] == 2


def test_existing_file_is_not_overwritten_unless_asked(api_env, tmp_path, capsys):
    """An existing file stays as it was (exit 2); --overwrite replaces it."""
    target = tmp_path / "keep.png"
    target.write_bytes(b"precious")
    with ScriptedServer([Reply(200, images_body())]) as server:
        api_env(server)
        assert cli.main(["generate", "An otter", "-o", str(target)]) == 2
        assert target.read_bytes() == b"precious"
        assert "already exists" in capsys.readouterr().err
        assert server.received == []  # refused before sending: nothing was paid for
        assert cli.main(["generate", "An otter", "-o", str(target), "--overwrite"]) == 0
    assert target.read_bytes() == PNG


def test_invalid_parameter_exits_2_without_sending(api_env, tmp_path, capsys):
    """Bad input is reported in one line naming the parameter; nothing reaches the server."""
    with ScriptedServer([Reply(200, images_body())]) as server:
        api_env(server)
        assert cli.main(["generate", "An otter", "--size", "1000x1000", "-o", str(tmp_path / "x.png")]) == 2
        assert server.received == []
    err = capsys.readouterr().err
    assert err.startswith("imageprovider: RequestValidationError: Parameter 'size'")
    assert err.count("\n") == 1
    assert "Traceback" not in err


def test_api_error_exits_1_with_one_line(api_env, tmp_path, capsys):
    """A refused request is one line on stderr with the server's message and request id."""
    body = {
        "error": {
            "message": "Your request was rejected by the safety system.",
            "type": "image_generation_user_error",
            "param": None,
            "code": "moderation_blocked",
        }
    }
    with ScriptedServer([Reply(400, body, {"x-request-id": "req_cli"})]) as server:
        api_env(server)
        assert cli.main(["generate", "Something forbidden", "-o", str(tmp_path / "x.png")]) == 3
    err = capsys.readouterr().err
    assert "rejected by the safety system" in err and "req_cli" in err
    assert not (tmp_path / "x.png").exists()


def test_missing_key_exits_2_naming_where_to_set_it(tmp_path, capsys):
    """No key: exit 2 and the message names OPENAI_API_KEY."""
    assert cli.main(["generate", "An otter", "-o", str(tmp_path / "x.png")]) == 2
    assert "OPENAI_API_KEY" in capsys.readouterr().err


def test_url_results_are_downloaded_without_credentials(api_env, tmp_path, capsys):
    """URL-only images (DALL-E) are fetched from the storage host, which never sees the key."""
    with ScriptedServer([Reply(200, PNG, {"Content-Type": "image/png"})]) as storage:
        body = {"created": 1, "data": [{"url": storage.base_url.replace("/v1", "/img.png")}]}
        with ScriptedServer([Reply(200, body)]) as server:
            api_env(server)
            argv = ["generate", "An otter", "--model", "dall-e-3", "--no-model-rules", "-o", str(tmp_path / "x.png")]
            assert cli.main(argv) == 0
        assert "Authorization" not in storage.received[0].headers
    assert (tmp_path / "x.png").read_bytes() == PNG
    assert capsys.readouterr().out.strip() == str(tmp_path / "x.png")


def test_module_entry_point_reports_its_version():
    """python -m imageprovider works and names the version."""
    completed = subprocess.run([sys.executable, "-m", "imageprovider", "--version"], stdout=subprocess.PIPE, timeout=60)
    assert completed.stdout.decode().strip() == "imageprovider " + imageprovider.__version__


def test_fake_mode_writes_a_real_png_with_no_key_and_no_network(tmp_path, capsys):
    """--fake runs the whole path against an in-process stand-in: a real PNG of the requested size."""
    from imageprovider._imageinfo import read_image_info

    target = tmp_path / "lighthouse.png"
    assert cli.main(["generate", "A lighthouse at dusk", "--fake", "--size", "1536x1024", "-o", str(target)]) == 0
    info = read_image_info(target.read_bytes())
    assert (info.mime_type, info.width, info.height) == ("image/png", 1536, 1024)
    assert capsys.readouterr().out.strip() == str(target)


def test_fake_mode_still_validates_before_sending(tmp_path, capsys):
    """The stand-in path runs the same validation: a bad size is exit 2, no file."""
    assert cli.main(["generate", "x", "--fake", "--size", "4000x4000", "-o", str(tmp_path / "x.png")]) == 2
    assert "Parameter 'size'" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


@pytest.mark.slow
def test_serve_fake_prints_its_base_url_and_serves(tmp_path):
    """imageprovider serve-fake runs the stand-in in the foreground, printing the base URL first."""
    import requests

    process = subprocess.Popen(
        [sys.executable, "-m", "imageprovider", "serve-fake", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        base_url = process.stdout.readline().decode().strip()
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1")
        answer = requests.post(
            base_url + "/images/generations",
            json={"prompt": "x", "model": "gpt-image-2", "size": "1024x1024"},
            headers={"Authorization": "Bearer sk-fake-imageprovider-local"},
            timeout=30,
        )
        assert answer.status_code == 200
        assert answer.json()["size"] == "1024x1024"
    finally:
        process.terminate()
        process.wait(10)
        process.stdout.close()
        process.stderr.close()


def test_saved_files_get_the_usual_permissions(api_env, tmp_path):
    """A saved image is created like any new file (0666 less the umask), not owner-only as mkstemp makes it."""
    target = tmp_path / "otter.png"
    previous = os.umask(0o022)  # the library never sets it; the test does, for a known result
    try:
        with ScriptedServer([Reply(200, images_body())]) as server:
            api_env(server)
            assert cli.main(["generate", "An otter", "-o", str(target)]) == 0
    finally:
        os.umask(previous)
    assert target.stat().st_mode & 0o777 == 0o644


def test_regression_verbose_in_process_leaves_the_logger_as_it_found_it(tmp_path, capsys):
    """``main([... "--verbose"])`` called in-process once left its stderr handler on the library's logger for
    good: the next test (or call) then logged to a closed stream ("--- Logging error ---")."""
    import logging

    logger = logging.getLogger("imageprovider")
    before = (list(logger.handlers), logger.level)
    for run in range(2):
        code = cli.main(["generate", "A lighthouse", "--fake", "--verbose", "-o", str(tmp_path / f"run{run}")])
        assert code == 0
        assert "INFO imageprovider" in capsys.readouterr().err
    assert (list(logger.handlers), logger.level) == before
