"""The ``imageprovider`` command run for real, as ``python -m imageprovider`` in a child process.

Every test talks to a :class:`FakeImagesServer` started here (one per module;
its faults and records are cleared around each test) through
``OPENAI_API_KEY`` / ``OPENAI_BASE_URL`` in the child's environment. HOME and
the config folders point into the test's temporary folder, so no user
configuration leaks in, and the child runs in that folder. What is checked is
what a user sees: files on disk, stdout, stderr (also on a real terminal, via
a pty) and the exit status.
"""

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import pytest
from helpers import BEFORE_SHUTDOWNS, make_jpeg, make_png

from imageprovider._imageinfo import read_image_info
from imageprovider.cli import EXIT_CODES
from imageprovider.testing import FAKE_API_KEY, FakeImagesServer, Fault

#: Each test starts Python processes (about a second each): out of the fast lane.
pytestmark = pytest.mark.slow

#: A key that is easy to spot if it ever leaks into output.
SECRET_KEY = "sk-subprocess-SECRET-key-5f3a9c0e71d24b68"
#: Seconds any one child process may take before the test fails.
TIMEOUT = 60
REQUEST_ID = re.compile(r"request id req_[0-9a-f]{24}")

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="needs POSIX ptys and signals (CI runs on Linux)")


# -- fixtures and helpers -------------------------------------------------------------


@pytest.fixture(scope="module")
def shared_server() -> Iterator[FakeImagesServer]:
    """One stand-in for the whole module (small PNGs: no detail noise)."""
    # Before the shutdowns, as a compatible server that still serves DALL-E would be.
    with FakeImagesServer(api_key=SECRET_KEY, detail_bits=0, today=BEFORE_SHUTDOWNS) as server:
        yield server


@pytest.fixture
def server(shared_server: FakeImagesServer) -> Iterator[FakeImagesServer]:
    """The shared stand-in, with no scripted faults and no recorded requests."""
    shared_server.clear_faults()
    shared_server.clear_requests()
    yield shared_server
    shared_server.clear_faults()


def child_env(
    tmp_path: Path,
    server: Optional[FakeImagesServer] = None,
    api_key: Optional[str] = None,
    base_url: Optional[str] = None,
) -> Dict[str, str]:
    """os.environ without OPENAI_*/IMAGEPROVIDER_*, HOME and config folders in tmp, pointed at ``server``."""
    env = {name: value for name, value in os.environ.items() if not name.startswith(("OPENAI_", "IMAGEPROVIDER_"))}
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env.update(
        HOME=str(home), USERPROFILE=str(home), XDG_CONFIG_HOME=str(home / ".config"), APPDATA=str(home / "AppData")
    )
    if server is not None:
        env.update(OPENAI_API_KEY=server.api_key, OPENAI_BASE_URL=server.base_url)
    if api_key is not None:
        env["OPENAI_API_KEY"] = api_key
    if base_url is not None:
        env["OPENAI_BASE_URL"] = base_url
    return env


def command(*args: str) -> List[str]:
    return [sys.executable, "-m", "imageprovider", *args]


Runner = Callable[..., "subprocess.CompletedProcess[str]"]


@pytest.fixture
def cli(server: FakeImagesServer, tmp_path: Path) -> Runner:
    """``cli("generate", "x", ...)`` runs the command against ``server`` in ``tmp_path``."""

    def run(*args: str, env: Optional[Dict[str, str]] = None) -> "subprocess.CompletedProcess[str]":
        return subprocess.run(
            command(*args),
            env=env if env is not None else child_env(tmp_path, server),
            cwd=str(tmp_path),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )

    return run


def image_info(path: Path) -> Tuple[Optional[str], Optional[int], Optional[int]]:
    info = read_image_info(path.read_bytes())
    assert info is not None, f"{path} is not a PNG, JPEG or WEBP"
    return info.mime_type, info.width, info.height


def printed_paths(stdout: str, cwd: Path) -> List[Path]:
    """The paths printed one per line, resolved against the child's working folder."""
    return [cwd / line for line in stdout.splitlines()]


def assert_one_error_line(completed: "subprocess.CompletedProcess[str]", error_class: str) -> str:
    """stderr is exactly one line naming ``error_class``, with no traceback; returns it."""
    err = completed.stderr
    assert err.startswith(f"imageprovider: {error_class}: "), err
    assert err.count("\n") == 1 and err.endswith("\n"), err
    assert "Traceback" not in err
    assert completed.stdout == ""
    return err


def leftovers(folder: Path) -> List[str]:
    """Temporary files a save left behind."""
    return [path.name for path in folder.rglob(".imageprovider-*")]


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


# -- help ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [["--help"], ["generate", "--help"], ["edit", "--help"], ["vary", "--help"]],
    ids=["main", "generate", "edit", "vary"],
)
def test_help_lists_every_exit_status(cli: Runner, args: List[str]) -> None:
    """Each exit code and its meaning is on a line of its own in the help text."""
    completed = cli(*args)
    assert completed.returncode == 0
    assert "exit status:" in completed.stdout
    for code, text in EXIT_CODES.items():
        assert re.search(rf"^\s+{code}\s+{re.escape(text)}$", completed.stdout, re.MULTILINE), (code, completed.stdout)


# -- generate --------------------------------------------------------------------------


def test_generate_sends_every_image_option_and_writes_the_o_file(
    cli: Runner, server: FakeImagesServer, tmp_path: Path
) -> None:
    """Model, size, quality, background, format, moderation and user reach the API; -o names the file."""
    completed = cli(
        "generate",
        "A lighthouse at dusk",
        "--model",
        "gpt-image-2.5-flare",
        "--n",
        "1",
        "--size",
        "1536x1024",
        "--quality",
        "low",
        "--background",
        "transparent",
        "--output-format",
        "png",
        "--moderation",
        "low",
        "--user",
        "user-42",
        "-o",
        "light.png",
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stderr == ""  # not a terminal, no --verbose: silent
    assert printed_paths(completed.stdout, tmp_path) == [tmp_path / "light.png"]
    info = read_image_info((tmp_path / "light.png").read_bytes())
    assert info is not None
    assert (info.mime_type, info.width, info.height, info.has_alpha) == ("image/png", 1536, 1024, True)
    [request] = server.requests
    assert (request.method, request.path) == ("POST", "/v1/images/generations")
    assert request.body == {
        "prompt": "A lighthouse at dusk",
        "model": "gpt-image-2.5-flare",
        "n": 1,
        "size": "1536x1024",
        "quality": "low",
        "background": "transparent",
        "output_format": "png",
        "moderation": "low",
        "user": "user-42",
    }
    assert request.headers["Authorization"] == "Bearer [REDACTED]"  # the stand-in checked the real key
    assert leftovers(tmp_path) == []


def test_generate_jpeg_with_output_compression(cli: Runner, server: FakeImagesServer, tmp_path: Path) -> None:
    """--output-format jpeg --output-compression 40 is sent as numbers; the file gets a .jpg name."""
    completed = cli(
        "generate", "A quiet harbour", "--output-format", "jpeg", "--output-compression", "40", "-o", "harbour.png"
    )
    assert completed.returncode == 0, completed.stderr
    assert printed_paths(completed.stdout, tmp_path) == [tmp_path / "harbour.jpg"]  # the bytes decide
    assert image_info(tmp_path / "harbour.jpg")[0] == "image/jpeg"
    assert not (tmp_path / "harbour.png").exists()
    assert server.requests[0].body == {
        "prompt": "A quiet harbour",
        "model": "gpt-image-2",
        "output_format": "jpeg",
        "output_compression": 40,
    }


def test_several_images_go_into_the_o_folder(cli: Runner, server: FakeImagesServer, tmp_path: Path) -> None:
    """--n 3 with -o: the folder is created, files are numbered after the prompt, stdout lists all three."""
    completed = cli("generate", "Two foxes, playing!", "--n", "3", "--size", "1024x1536", "-o", "foxes")
    assert completed.returncode == 0, completed.stderr
    expected = [tmp_path / "foxes" / f"two-foxes-playing-{number}.png" for number in (1, 2, 3)]
    assert printed_paths(completed.stdout, tmp_path) == expected
    for path in expected:
        assert image_info(path) == ("image/png", 1024, 1536)
    assert sorted(path.name for path in (tmp_path / "foxes").iterdir()) == [path.name for path in expected]
    assert server.requests[0].body["n"] == 3


def test_default_output_is_the_working_folder_named_after_the_prompt(cli: Runner, tmp_path: Path) -> None:
    """Without -o the image lands in the current folder, its name made safe from the prompt."""
    completed = cli("generate", "A cat / on ../../the mat", "--size", "1024x1024")
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.splitlines() == ["a-cat-on-the-mat.png"]
    assert image_info(tmp_path / "a-cat-on-the-mat.png") == ("image/png", 1024, 1024)
    assert sorted(path.name for path in tmp_path.iterdir() if path.name != "home") == ["a-cat-on-the-mat.png"]


def test_existing_file_is_kept_without_overwrite_and_replaced_with_it(cli: Runner, tmp_path: Path) -> None:
    """With several images, one existing target refuses the whole save (exit 2, nothing written)."""
    folder = tmp_path / "out"
    folder.mkdir()
    write(folder / "boats-2.png", b"precious")
    refused = cli("generate", "Boats", "--n", "2", "-o", "out")
    assert refused.returncode == 2
    err = assert_one_error_line(refused, "FileExistsError")
    assert "boats-2.png already exists" in err and "--overwrite" in err
    assert (folder / "boats-2.png").read_bytes() == b"precious"
    assert not (folder / "boats-1.png").exists()
    assert leftovers(tmp_path) == []

    replaced = cli("generate", "Boats", "--n", "2", "-o", "out", "--overwrite", "--size", "1024x1024")
    assert replaced.returncode == 0, replaced.stderr
    assert printed_paths(replaced.stdout, tmp_path) == [folder / "boats-1.png", folder / "boats-2.png"]
    assert image_info(folder / "boats-2.png") == ("image/png", 1024, 1024)


# -- --json ---------------------------------------------------------------------------------


def test_json_prints_one_document_describing_the_result(cli: Runner, tmp_path: Path) -> None:
    """stdout is exactly one JSON document: files, usage, request id, revised prompts; stderr is empty."""
    completed = cli("generate", "A red kite", "--n", "2", "--quality", "low", "-o", "kites", "--json")
    assert completed.returncode == 0, completed.stderr
    assert completed.stderr == ""
    document = json.loads(completed.stdout)  # fails on anything else printed
    assert [Path(path) for path in document["files"]] == [
        Path("kites", "a-red-kite-1.png"),
        Path("kites", "a-red-kite-2.png"),
    ]
    for path in document["files"]:
        assert image_info(tmp_path / path)[0] == "image/png"
    assert document["model"] == "gpt-image-2"
    assert document["partial_files"] == []
    assert re.match(r"req_[0-9a-f]{24}\Z", document["request_id"])
    assert document["revised_prompts"] == [None, None]
    usage = document["usage"]
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"] > 0
    assert document["size"] == "1024x1024"


def test_json_carries_dall_e_3_revised_prompts(cli: Runner, server: FakeImagesServer, tmp_path: Path) -> None:
    """A dall-e-3 URL result is downloaded; its revised prompt is in the document."""
    completed = cli(
        "generate",
        "A red kite",
        "--model",
        "dall-e-3",
        "--no-model-rules",
        "--size",
        "1792x1024",
        "-o",
        "kite.png",
        "--json",
    )
    assert completed.returncode == 0, completed.stderr
    document = json.loads(completed.stdout)
    assert document["files"] == ["kite.png"]
    assert document["revised_prompts"] == ["A detailed rendering of: A red kite"]
    assert document["usage"] is None
    assert image_info(tmp_path / "kite.png") == ("image/png", 1792, 1024)
    assert [(request.method, request.path.split("/")[1]) for request in server.requests] == [
        ("POST", "v1"),
        ("GET", "fake-files"),
    ]


# -- --metadata -----------------------------------------------------------------------------


def test_metadata_writes_a_sidecar_next_to_each_image(cli: Runner, server: FakeImagesServer, tmp_path: Path) -> None:
    """Each image gets NAME.json: prompt, model, the parameters sent, request id (the one --json reports)."""
    completed = cli(
        "generate",
        "A snowy owl",
        "--n",
        "2",
        "--size",
        "1024x1024",
        "--quality",
        "medium",
        "-o",
        "owls",
        "--metadata",
        "--json",
    )
    assert completed.returncode == 0, completed.stderr
    document = json.loads(completed.stdout)
    sent = server.requests[0].body
    for index, name in enumerate(["a-snowy-owl-1", "a-snowy-owl-2"]):
        assert image_info(tmp_path / "owls" / (name + ".png")) == ("image/png", 1024, 1024)
        sidecar = json.loads((tmp_path / "owls" / (name + ".json")).read_text("utf-8"))
        assert sidecar["prompt"] == "A snowy owl"
        assert sidecar["model"] == "gpt-image-2"
        assert sidecar["parameters"] == sent
        assert sidecar["request_id"] == document["request_id"]
        assert sidecar["file"] == name + ".png"
        assert sidecar["index"] == index
    # The sidecars are not images, and are not listed as such.
    assert [Path(path).suffix for path in document["files"]] == [".png", ".png"]


def test_metadata_is_written_for_streamed_images_too(cli: Runner, tmp_path: Path) -> None:
    """--metadata with --stream: the final image still gets its sidecar."""
    completed = cli("generate", "A snowy owl", "--stream", "--partial-images", "1", "-o", "owl.png", "--metadata")
    assert completed.returncode == 0, completed.stderr
    assert (tmp_path / "owl.png").exists()
    sidecar_path = tmp_path / "owl.json"
    assert sidecar_path.exists(), "--metadata was ignored with --stream: no owl.json next to owl.png"
    sidecar = json.loads(sidecar_path.read_text("utf-8"))
    assert sidecar["prompt"] == "A snowy owl"
    assert sidecar["request_id"]


# -- --stream --------------------------------------------------------------------------------


def test_stream_saves_the_final_image_and_each_partial_image(
    cli: Runner, server: FakeImagesServer, tmp_path: Path
) -> None:
    """--stream --partial-images 2: boat.png plus boat-partial-1/2.png, all real images of the size."""
    completed = cli("generate", "A boat", "--stream", "--partial-images", "2", "--size", "1536x1024", "-o", "boat.png")
    assert completed.returncode == 0, completed.stderr
    assert completed.stderr == ""
    assert printed_paths(completed.stdout, tmp_path) == [tmp_path / "boat.png"]
    for name in ("boat.png", "boat-partial-1.png", "boat-partial-2.png"):
        assert image_info(tmp_path / name) == ("image/png", 1536, 1024)
    assert (tmp_path / "boat.png").read_bytes() != (tmp_path / "boat-partial-2.png").read_bytes()
    body = server.requests[0].body
    assert body["stream"] is True and body["partial_images"] == 2


def test_stream_json_lists_partial_files(cli: Runner, tmp_path: Path) -> None:
    """With --json, the partial files are listed apart from the final one, with the usage."""
    completed = cli("generate", "A boat", "--stream", "--partial-images", "2", "-o", "boat.png", "--json")
    assert completed.returncode == 0, completed.stderr
    document = json.loads(completed.stdout)
    assert document["files"] == ["boat.png"]
    assert document["partial_files"] == ["boat-partial-1.png", "boat-partial-2.png"]
    assert re.match(r"req_[0-9a-f]{24}\Z", document["request_id"])
    assert document["usage"]["total_tokens"] > 0
    assert all((tmp_path / name).is_file() for name in document["files"] + document["partial_files"])


def test_stream_json_document_has_the_same_fields_as_without_stream(cli: Runner, tmp_path: Path) -> None:
    """The model the CLI chose and the image size are reported whether or not the result was streamed."""
    plain = json.loads(cli("generate", "A boat", "-o", "plain.png", "--json").stdout)
    streamed = json.loads(cli("generate", "A boat", "--stream", "-o", "streamed.png", "--json").stdout)
    assert plain["model"] == "gpt-image-2" and plain["size"] == "1024x1024"
    assert (streamed["model"], streamed["size"]) == (plain["model"], plain["size"])


@pytest.mark.parametrize(
    "fault, status, error_class",
    [
        (Fault.stream_cut(), 4, "APIConnectionError"),
        (Fault.stream_error(), 3, "InternalServerError"),
        (Fault.stream_error("moderation_blocked", message="Blocked (injected fault)."), 3, "ContentPolicyError"),
    ],
    ids=["stream-cut", "stream-error", "stream-moderation"],
)
def test_broken_stream_exit_status(
    cli: Runner, server: FakeImagesServer, tmp_path: Path, fault: Fault, status: int, error_class: str
) -> None:
    """A stream that stops early or ends in an error event: one line, its exit status, no final image."""
    server.add_fault(fault)
    completed = cli("generate", "A boat", "--stream", "--partial-images", "1", "-o", "boat.png")
    assert completed.returncode == status
    assert_one_error_line(completed, error_class)
    assert not (tmp_path / "boat.png").exists()
    assert leftovers(tmp_path) == []


# -- edit ------------------------------------------------------------------------------------


def test_edit_one_image(cli: Runner, server: FakeImagesServer, tmp_path: Path) -> None:
    """One input goes up as the 'image' part; the edited image is saved at the requested size."""
    write(tmp_path / "cat.png", make_png(64, 64))
    completed = cli("edit", "Give the cat a hat", "cat.png", "--size", "1536x1024", "--quality", "low", "-o", "hat.png")
    assert completed.returncode == 0, completed.stderr
    assert completed.stderr == ""
    assert printed_paths(completed.stdout, tmp_path) == [tmp_path / "hat.png"]
    assert image_info(tmp_path / "hat.png") == ("image/png", 1536, 1024)
    [request] = server.requests
    assert (request.method, request.path) == ("POST", "/v1/images/edits")
    assert request.body["fields"] == {
        "prompt": "Give the cat a hat",
        "model": "gpt-image-2",
        "size": "1536x1024",
        "quality": "low",
    }
    assert request.body["files"] == {
        "image": [{"filename": "cat.png", "content_type": "image/png", "bytes": len(make_png(64, 64))}]
    }


def test_edit_several_images_and_a_mask(cli: Runner, server: FakeImagesServer, tmp_path: Path) -> None:
    """Several inputs are sent as image[] parts, in order, with the RGBA mask as 'mask'."""
    png, jpeg, mask = make_png(64, 64, 6), make_jpeg(64, 64), make_png(64, 64, 6)
    write(tmp_path / "room.png", png)
    write(tmp_path / "sofa.jpg", jpeg)
    write(tmp_path / "mask.png", mask)
    completed = cli(
        "edit",
        "Put the sofa in the room",
        "room.png",
        "sofa.jpg",
        "--mask",
        "mask.png",
        "--size",
        "1024x1024",
        "-o",
        "room-with-sofa.png",
    )
    assert completed.returncode == 0, completed.stderr
    assert image_info(tmp_path / "room-with-sofa.png") == ("image/png", 1024, 1024)
    files = server.requests[0].body["files"]
    assert files == {
        "image[]": [
            {"filename": "room.png", "content_type": "image/png", "bytes": len(png)},
            {"filename": "sofa.jpg", "content_type": "image/jpeg", "bytes": len(jpeg)},
        ],
        "mask": [{"filename": "mask.png", "content_type": "image/png", "bytes": len(mask)}],
    }


def test_edit_input_fidelity_with_gpt_image_1(cli: Runner, server: FakeImagesServer, tmp_path: Path) -> None:
    """--input-fidelity high --model gpt-image-1 is sent as form fields."""
    write(tmp_path / "face.png", make_png(32, 32))
    completed = cli(
        "edit",
        "Add glasses",
        "face.png",
        "--model",
        "gpt-image-1",
        "--no-model-rules",
        "--input-fidelity",
        "high",
        "--size",
        "1024x1536",
        "--background",
        "opaque",
        "--output-format",
        "png",
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.splitlines() == ["add-glasses.png"]
    assert image_info(tmp_path / "add-glasses.png") == ("image/png", 1024, 1536)
    assert server.requests[0].body["fields"] == {
        "prompt": "Add glasses",
        "model": "gpt-image-1",
        "input_fidelity": "high",
        "size": "1024x1536",
        "background": "opaque",
        "output_format": "png",
    }


def test_edit_streams_partial_images(cli: Runner, server: FakeImagesServer, tmp_path: Path) -> None:
    """edit --stream saves the partial and the final image."""
    write(tmp_path / "cat.png", make_png(16, 16))
    completed = cli(
        "edit", "A hat", "cat.png", "--stream", "--partial-images", "1", "--size", "1024x1024", "-o", "cat-hat.png"
    )
    assert completed.returncode == 0, completed.stderr
    assert image_info(tmp_path / "cat-hat.png") == ("image/png", 1024, 1024)
    assert image_info(tmp_path / "cat-hat-partial-1.png") == ("image/png", 1024, 1024)
    assert server.requests[0].body["fields"]["stream"] == "true"


# -- vary --------------------------------------------------------------------------------------


def test_vary_downloads_dall_e_2_url_results(cli: Runner, server: FakeImagesServer, tmp_path: Path) -> None:
    """dall-e-2 answers with URLs: both images are downloaded into the -o folder."""
    write(tmp_path / "square.png", make_png(64, 64))
    completed = cli("vary", "square.png", "--n", "2", "--size", "256x256", "-o", "variations", "--no-model-rules")
    assert completed.returncode == 0, completed.stderr
    assert completed.stderr == ""
    paths = printed_paths(completed.stdout, tmp_path)
    assert paths == [tmp_path / "variations" / "image-1.png", tmp_path / "variations" / "image-2.png"]
    for path in paths:
        assert image_info(path) == ("image/png", 256, 256)
    post, *downloads = server.requests
    assert (post.method, post.path) == ("POST", "/v1/images/variations")
    assert post.body["fields"] == {"model": "dall-e-2", "n": "2", "size": "256x256"}
    assert [request.method for request in downloads] == ["GET", "GET"]
    assert all(request.path.startswith("/fake-files/") for request in downloads)


# -- --dry-run ----------------------------------------------------------------------------------


def assert_redacted(completed: "subprocess.CompletedProcess[str]") -> None:
    assert completed.returncode == 0, completed.stderr
    assert SECRET_KEY not in completed.stdout and SECRET_KEY not in completed.stderr
    assert "Authorization: Bearer [REDACTED]" in completed.stdout.splitlines()


def test_dry_run_generate_prints_the_request_and_sends_nothing(
    cli: Runner, server: FakeImagesServer, tmp_path: Path
) -> None:
    completed = cli("generate", "A lighthouse", "--size", "1536x1024", "--quality", "high", "--n", "2")
    assert completed.returncode == 0  # (the real run, to compare the body with)
    sent = server.requests[0].body
    server.clear_requests()
    before = sorted(str(path) for path in tmp_path.rglob("*"))

    completed = cli("generate", "A lighthouse", "--size", "1536x1024", "--quality", "high", "--n", "2", "--dry-run")
    assert_redacted(completed)
    head, _, body = completed.stdout.partition("\n\n")
    assert head.splitlines()[0] == f"POST {server.base_url}/images/generations"
    assert "Content-Type: application/json" in head.splitlines()
    assert json.loads(body) == sent
    assert len(server.requests) == 0
    assert sorted(str(path) for path in tmp_path.rglob("*")) == before  # nothing written


def test_dry_run_edit_lists_the_multipart_parts(cli: Runner, server: FakeImagesServer, tmp_path: Path) -> None:
    png, jpeg, mask = make_png(64, 64, 6), make_jpeg(64, 64), make_png(64, 64, 6)
    write(tmp_path / "room.png", png)
    write(tmp_path / "sofa.jpg", jpeg)
    write(tmp_path / "mask.png", mask)
    completed = cli(
        "edit",
        "Put the sofa in",
        "room.png",
        "sofa.jpg",
        "--mask",
        "mask.png",
        "--model",
        "gpt-image-1",
        "--no-model-rules",
        "--input-fidelity",
        "high",
        "--dry-run",
    )
    assert_redacted(completed)
    lines = completed.stdout.splitlines()
    assert lines[0] == f"POST {server.base_url}/images/edits"
    assert any(line.startswith("Content-Type: multipart/form-data; boundary=") for line in lines)
    parts = [line for line in lines if line.startswith("part ")]
    assert parts == [
        "part prompt: Put the sofa in",
        "part model: gpt-image-1",
        "part input_fidelity: high",
        f"part image[]: file 'room.png', image/png, {len(png):,} bytes",
        f"part image[]: file 'sofa.jpg', image/jpeg, {len(jpeg):,} bytes",
        f"part mask: file 'mask.png', image/png, {len(mask):,} bytes",
    ]
    assert len(server.requests) == 0


def test_dry_run_with_json_prints_the_request_as_json(cli: Runner, server: FakeImagesServer, tmp_path: Path) -> None:
    """--json is machine-readable in --dry-run too: the same request, key redacted, body or parts read back."""
    completed = cli("generate", "A lighthouse", "--size", "1536x1024", "--dry-run", "--json")
    assert completed.returncode == 0, completed.stderr
    assert SECRET_KEY not in completed.stdout and SECRET_KEY not in completed.stderr
    shown = json.loads(completed.stdout)
    assert (shown["method"], shown["url"]) == ("POST", f"{server.base_url}/images/generations")
    assert shown["headers"]["Authorization"] == "Bearer [REDACTED]"
    assert shown["body"] == {"prompt": "A lighthouse", "model": "gpt-image-2", "size": "1536x1024"}

    square = make_png(64, 64)
    write(tmp_path / "square.png", square)
    completed = cli("vary", "square.png", "--size", "512x512", "--dry-run", "--json", "--no-model-rules")
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout)["parts"] == [
        {"name": "model", "value": "dall-e-2"},
        {"name": "size", "value": "512x512"},
        {"name": "image", "filename": "square.png", "content_type": "image/png", "bytes": len(square)},
    ]
    assert len(server.requests) == 0


def test_dry_run_vary(cli: Runner, server: FakeImagesServer, tmp_path: Path) -> None:
    square = make_png(64, 64)
    write(tmp_path / "square.png", square)
    completed = cli("vary", "square.png", "--n", "2", "--size", "512x512", "--dry-run", "--no-model-rules")
    assert_redacted(completed)
    lines = completed.stdout.splitlines()
    assert lines[0] == f"POST {server.base_url}/images/variations"
    assert [line for line in lines if line.startswith("part ")] == [
        "part model: dall-e-2",
        "part n: 2",
        "part size: 512x512",
        f"part image: file 'square.png', image/png, {len(square):,} bytes",
    ]
    assert len(server.requests) == 0
    assert not (tmp_path / "image-1.png").exists()


def test_dry_run_without_a_key_shows_a_placeholder(server: FakeImagesServer, tmp_path: Path) -> None:
    """No key configured: --dry-run still works, says so on stderr, and sends nothing."""
    env = child_env(tmp_path, base_url=server.base_url)
    completed = subprocess.run(
        command("generate", "x", "--dry-run"),
        env=env,
        cwd=str(tmp_path),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert completed.returncode == 0, completed.stderr
    assert "OPENAI_API_KEY" in completed.stderr
    assert "Authorization: Bearer [REDACTED]" in completed.stdout
    assert "sk-placeholder" not in completed.stdout
    assert len(server.requests) == 0


# -- --fake --------------------------------------------------------------------------------------


def test_fake_needs_no_key_and_no_base_url(tmp_path: Path) -> None:
    """--fake with neither variable set: a real PNG of the requested size; so for vary."""
    env = child_env(tmp_path)
    assert "OPENAI_API_KEY" not in env and "OPENAI_BASE_URL" not in env
    generated = subprocess.run(
        command("generate", "A windmill", "--fake", "--size", "1024x1536", "-o", "mill.png"),
        env=env,
        cwd=str(tmp_path),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert generated.returncode == 0, generated.stderr
    assert generated.stdout.splitlines() == ["mill.png"]
    assert image_info(tmp_path / "mill.png") == ("image/png", 1024, 1536)

    # Variations exist only for dall-e-2, shut down on 2026-05-12: refused before sending, and
    # with the rules off the stand-in answers as the API does, 404 model_not_found.
    write(tmp_path / "square.png", make_png(8, 8))
    for extra, code, message in (
        ((), 2, "RequestValidationError: Model 'dall-e-2' was shut down on 2026-05-12"),
        (("--no-model-rules",), 3, "NotFoundError"),
    ):
        varied = subprocess.run(
            command("vary", "square.png", "--fake", "--size", "256x256", "-o", "varied.png", *extra),
            env=env,
            cwd=str(tmp_path),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
        assert varied.returncode == code, varied.stderr
        assert message in varied.stderr
        assert not (tmp_path / "varied.png").exists()


# -- serve-fake ------------------------------------------------------------------------------------


def test_serve_fake_serves_the_command_line_with_scripted_faults(tmp_path: Path) -> None:
    """serve-fake prints its base URL first; --fault scripts a refusal for the first request only."""
    process = subprocess.Popen(
        command("serve-fake", "--port", "0", "--fault", "moderation"),
        env=child_env(tmp_path),
        cwd=str(tmp_path),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        universal_newlines=True,
    )
    try:
        lines: queue.Queue[str] = queue.Queue()
        stdout = process.stdout
        assert stdout is not None
        reader = threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True)
        reader.start()
        base_url = lines.get(timeout=TIMEOUT).strip()
        assert re.match(r"http://127\.0\.0\.1:[0-9]+/v1\Z", base_url), base_url

        env = child_env(tmp_path, api_key=FAKE_API_KEY, base_url=base_url)
        run: Dict[str, Any] = dict(
            env=env,
            cwd=str(tmp_path),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            universal_newlines=True,
            timeout=TIMEOUT,
        )
        refused = subprocess.run(command("generate", "A kite", "-o", "kite.png"), **run)
        assert refused.returncode == 3
        assert_one_error_line(refused, "ContentPolicyError")
        served = subprocess.run(command("generate", "A kite", "-o", "kite.png", "--size", "1024x1024"), **run)
        assert served.returncode == 0, served.stderr
        assert image_info(tmp_path / "kite.png") == ("image/png", 1024, 1024)
        assert process.poll() is None
    finally:
        process.terminate()
        try:
            _, err = process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            _, err = process.communicate(timeout=10)
    assert "API key: " + FAKE_API_KEY in err


# -- errors and exit statuses ------------------------------------------------------------------------


def test_unknown_option_is_a_usage_error(cli: Runner, server: FakeImagesServer) -> None:
    completed = cli("generate", "x", "--no-such-option")
    assert completed.returncode == 2
    assert "unrecognized arguments: --no-such-option" in completed.stderr
    assert "Traceback" not in completed.stderr
    assert completed.stdout == ""
    assert len(server.requests) == 0


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["generate", "x", "--size", "4000x4000"], "Parameter 'size'"),
        (["generate", "x", "--n", "11"], "'n'"),
        (["generate", "x", "--partial-images", "2"], "partial_images"),
        (["edit", "x", "missing.png"], "missing.png"),
        (["vary", "missing.png", "--no-model-rules"], "missing.png"),
    ],
    ids=["size", "n", "partial-images-without-stream", "edit-missing-input", "vary-missing-input"],
)
def test_validation_errors_exit_2_without_sending(
    cli: Runner, server: FakeImagesServer, tmp_path: Path, args: List[str], fragment: str
) -> None:
    completed = cli(*args)
    assert completed.returncode == 2
    err = assert_one_error_line(completed, "RequestValidationError")
    assert fragment in err
    assert len(server.requests) == 0
    assert sorted(path.name for path in tmp_path.iterdir()) == ["home"]


@pytest.mark.parametrize(
    "fault, error_class, message",
    [
        (Fault.moderation_blocked(), "ContentPolicyError", "rejected by the safety system"),
        ("400", "BadRequestError", "Invalid request (injected fault)."),
        ("401", "AuthenticationError", "Incorrect API key provided (injected fault)."),
        ("404", "NotFoundError", "Not found (injected fault)."),
    ],
    ids=["moderation", "400", "401", "404"],
)
def test_api_errors_exit_3_with_one_line_and_the_request_id(
    cli: Runner, server: FakeImagesServer, tmp_path: Path, fault: Any, error_class: str, message: str
) -> None:
    server.add_fault(fault)
    completed = cli("generate", "Something", "-o", "x.png")
    assert completed.returncode == 3
    err = assert_one_error_line(completed, error_class)
    assert message in err
    assert REQUEST_ID.search(err), err
    assert SECRET_KEY not in err
    assert not (tmp_path / "x.png").exists() and leftovers(tmp_path) == []


def test_debug_shows_the_traceback(cli: Runner, server: FakeImagesServer) -> None:
    server.add_fault(Fault.moderation_blocked())
    completed = cli("generate", "Something", "-o", "x.png", "--debug")
    assert completed.returncode == 3
    assert "Traceback (most recent call last)" in completed.stderr
    assert completed.stderr.splitlines()[-1].startswith("imageprovider: ContentPolicyError: ")
    assert SECRET_KEY not in completed.stderr


@pytest.mark.parametrize("fault", [Fault.drop(times=3), Fault.drop_mid_body()], ids=["drop", "drop-mid-body"])
def test_dropped_connection_exits_4(cli: Runner, server: FakeImagesServer, tmp_path: Path, fault: Fault) -> None:
    """A connection closed before or during the response (retries, if any, exhausted)."""
    server.add_fault(fault)
    completed = cli("generate", "Something", "-o", "x.png")
    assert completed.returncode == 4
    assert "127.0.0.1" in assert_one_error_line(completed, "APIConnectionError")
    assert not (tmp_path / "x.png").exists()


def test_timeout_exits_4(cli: Runner, server: FakeImagesServer, tmp_path: Path) -> None:
    server.add_fault(Fault.delay(5))
    started = time.monotonic()
    completed = cli("generate", "Something", "-o", "x.png", "--timeout", "0.3")
    assert time.monotonic() - started < 4.5
    assert completed.returncode == 4
    assert_one_error_line(completed, "APITimeoutError")
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("fault", [Fault.invalid_json(), Fault.bad_schema()], ids=["invalid-json", "bad-schema"])
def test_unusable_response_exits_5(cli: Runner, server: FakeImagesServer, tmp_path: Path, fault: Fault) -> None:
    server.add_fault(fault)
    completed = cli("generate", "Something", "-o", "x.png")
    assert completed.returncode == 5
    err = assert_one_error_line(completed, "ResponseValidationError")
    assert REQUEST_ID.search(err), err
    assert not (tmp_path / "x.png").exists()


@posix_only
def signal_mid_call(server: FakeImagesServer, tmp_path: Path, args: Sequence[str], signum: int) -> Tuple[int, str, str]:
    """Run the command, send ``signum`` once its request is in and half an answer has come; (status, out, err)."""
    # A child inherits an ignored SIGINT (as in background jobs); a handled one is reset to the default.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        process = subprocess.Popen(
            command(*args),
            env=child_env(tmp_path, server),
            cwd=str(tmp_path),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            universal_newlines=True,
        )
    finally:
        signal.signal(signal.SIGINT, previous)
    try:
        deadline = time.monotonic() + TIMEOUT
        while not server.requests and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.05)
        assert len(server.requests) == 1, "the command never reached the server"
        time.sleep(0.5)  # now blocked reading the response
        process.send_signal(signum)
        out, err = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=10)
    return process.returncode, out, err


def test_ctrl_c_exits_130_leaving_no_file(server: FakeImagesServer, tmp_path: Path) -> None:
    """SIGINT while waiting for the API: exit 130, 'interrupted', no output or temporary file."""
    server.add_fault(Fault.delay(30))
    code, out, err = signal_mid_call(server, tmp_path, ["generate", "A slow one", "-o", "slow.png"], signal.SIGINT)
    assert code == 130, err
    assert err == "imageprovider: interrupted\n"
    assert out == ""
    assert not (tmp_path / "slow.png").exists()
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("n", [1, 2], ids=["one-file", "save-to-folder"])
def test_sigterm_mid_body_exits_143_leaving_no_file(server: FakeImagesServer, tmp_path: Path, n: int) -> None:
    """SIGTERM (what timeout, systemd and Kubernetes send) while the body arrives: handled like Ctrl-C, exit
    143, 'terminated', no output and no temporary file (it used to kill the process where it stood)."""
    server.add_fault(Fault.slow_body(20))
    output = "slow.png" if n == 1 else "out"
    args = ["generate", "A slow one", "--n", str(n), "-o", output]
    code, out, err = signal_mid_call(server, tmp_path, args, signal.SIGTERM)
    assert code == 143, err
    assert err == "imageprovider: terminated\n"
    assert out == ""
    assert not (tmp_path / output).exists() or list((tmp_path / output).iterdir()) == []
    assert leftovers(tmp_path) == []


# -- progress and logging --------------------------------------------------------------------------


def run_on_terminal(args: Sequence[str], env: Dict[str, str], cwd: Path) -> Tuple[int, str, str]:
    """Run with stderr on a pseudo-terminal; returns (status, stdout, what the terminal showed)."""
    import pty
    import select

    master, slave = pty.openpty()
    try:
        process = subprocess.Popen(
            command(*args), env=env, cwd=str(cwd), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave
        )
    finally:
        os.close(slave)
    shown = bytearray()
    try:
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    data = os.read(master, 4096)
                except OSError:  # EIO: every writer of the terminal has closed it
                    break
                if not data:
                    break
                shown += data
            elif process.poll() is not None:
                break
        out = process.communicate(timeout=10)[0]
    finally:
        os.close(master)
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=10)
    return process.returncode, out.decode(), shown.decode("utf-8", "replace")


@posix_only
def test_terminal_shows_the_elapsed_time_while_waiting(server: FakeImagesServer, tmp_path: Path) -> None:
    server.add_fault(Fault.delay(1.5))
    status, out, shown = run_on_terminal(
        ["generate", "A slow one", "-o", "slow.png"], child_env(tmp_path, server), tmp_path
    )
    assert status == 0, shown
    assert out.splitlines() == ["slow.png"]  # stdout stays clean
    assert re.search(r"Waiting for the image\.\.\. [1-9][0-9]*s", shown), shown
    assert shown.endswith("\r\033[K"), repr(shown)  # the status line is cleared at the end


@posix_only
def test_terminal_shows_retries_with_their_wait(server: FakeImagesServer, tmp_path: Path) -> None:
    server.add_fault("429,retry-after=1")
    status, out, shown = run_on_terminal(
        ["generate", "A busy one", "-o", "busy.png"], child_env(tmp_path, server), tmp_path
    )
    assert status == 0, shown
    assert "retrying in 1.0 s after status 429" in shown, shown
    assert image_info(tmp_path / "busy.png")[0] == "image/png"
    assert len(server.requests) == 2


@posix_only
def test_terminal_shows_partial_images_as_they_stream(server: FakeImagesServer, tmp_path: Path) -> None:
    status, out, shown = run_on_terminal(
        ["generate", "A boat", "--stream", "--partial-images", "2", "-o", "boat.png"],
        child_env(tmp_path, server),
        tmp_path,
    )
    assert status == 0, shown
    assert "Streaming..." in shown
    assert "partial image 1 received" in shown and "partial image 2 received" in shown, shown
    assert out.splitlines() == ["boat.png"]


@posix_only
def test_terminal_shows_batch_progress_and_clears_it(server: FakeImagesServer, tmp_path: Path) -> None:
    """A batch on a terminal keeps one status line (done/total, failed, rate) and clears it at the end."""
    items = tmp_path / "items.jsonl"
    items.write_text("".join(json.dumps({"id": f"item-{n}", "prompt": f"Fox {n}"}) + "\n" for n in range(4)))
    server.add_fault("400,path=/v1/images/generations")
    status, out, shown = run_on_terminal(
        ["batch", "items.jsonl", "-o", "out", "--concurrency", "1"], child_env(tmp_path, server), tmp_path
    )
    assert status == 3, shown  # one item failed
    updates = [line for line in shown.split("\r\033[K") if line]
    assert updates, repr(shown)
    # An update per finished item, in order (one worker; the first item is the one refused), and
    # a repeat each second nothing finishes: compare the distinct counts.
    counts: List[List[str]] = []
    for update in updates:
        if not counts or counts[-1] != update.split(",")[:2]:
            counts.append(update.split(",")[:2])
    assert counts == [
        ["0/4 done", " 1 failed"],
        ["1/4 done", " 1 failed"],
        ["2/4 done", " 1 failed"],
        ["3/4 done", " 1 failed"],
    ], updates
    assert all(re.fullmatch(r"\d/4 done, 1 failed, [0-9.]+ images/min(, ETA [0-9]+s)?", update) for update in updates)
    assert shown.endswith("\r\033[K"), repr(shown)  # cleared before the summary on stdout
    assert out.startswith("4 items: 3 done, 1 failed"), out


@posix_only
def test_terminal_dry_run_shows_no_progress(server: FakeImagesServer, tmp_path: Path) -> None:
    status, out, shown = run_on_terminal(["generate", "x", "--dry-run"], child_env(tmp_path, server), tmp_path)
    assert status == 0
    assert shown == ""
    assert out.startswith("POST ")


def test_verbose_logs_each_request_to_stderr(cli: Runner, tmp_path: Path) -> None:
    completed = cli("generate", "A fox", "-o", "fox.png", "--verbose")
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.splitlines() == ["fox.png"]
    [line] = completed.stderr.splitlines()
    assert re.search(
        r"POST /images/generations -> 200 in [0-9]+ ms \(1 attempt, request id req_[0-9a-f]{24}\)", line
    ), line
    assert SECRET_KEY not in completed.stderr
