"""Saving results: GeneratedImage.save, ImageResponse.save_all, sidecar metadata, URL downloads.

Names follow the bytes, writes are atomic, existing files are refused,
names from prompts are sanitised, and URL results are downloaded through the
provider's session without ever carrying its credentials to a storage host.
"""

import base64
import contextlib
import errno
import json
import os
import stat
import subprocess
import sys
import time
import unicodedata
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Dict, Iterator, List, Optional

import pytest
from helpers import (
    API_KEY,
    BASE_URL,
    BEFORE_SHUTDOWNS,
    GENERATIONS_URL,
    PNG,
    PNG_B64,
    images_body,
    make_jpeg,
    make_png,
    make_webp,
)
from scripted_server import LAST_CHUNK, Reply, ScriptedServer, Seen, chunk, head, raw_server, send

from imageprovider import (
    APIConnectionError,
    AzureOpenAIImageProvider,
    GeneratedImage,
    ImageExpiredError,
    ImageProviderError,
    ImageResponse,
    OpenAIImageProvider,
    ResponseValidationError,
    _files,
    _saving,
)
from imageprovider import provider as provider_module
from imageprovider.testing import FakeImagesServer

JPEG = make_jpeg(4, 3)
WEBP = make_webp(4, 3)
GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)
ORGANIZATION = "org-secret-organization"
PROJECT = "proj-secret-project"
CREDENTIAL_HEADERS = ("authorization", "api-key", "openai-organization", "openai-project")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def response_of(*images: bytes, prompt: Optional[str] = "An otter", **request: Any) -> ImageResponse:
    """A response built directly from a body, as the provider would (no network)."""
    body = images_body(len(images), data=[{"b64_json": b64(data)} for data in images])
    if prompt is not None:
        request["prompt"] = prompt
    request.setdefault("model", "gpt-image-2")
    return ImageResponse.from_body(body, {"x-request-id": "req_local"}, request=request)


def listing(folder: Path) -> List[str]:
    """Every name in ``folder`` (hidden temporaries included), sorted."""
    return sorted(os.listdir(str(folder))) if folder.exists() else []


def snapshot(folder: Path) -> Dict[str, bytes]:
    return {name: (folder / name).read_bytes() for name in listing(folder)}


def root_of(server: ScriptedServer) -> str:
    """``http://127.0.0.1:PORT`` of a scripted server."""
    return server.base_url[: -len("/v1")]


def url_body(*urls: str, revised_prompt: Optional[str] = None) -> Dict[str, Any]:
    data = []
    for url in urls:
        item = {"url": url}
        if revised_prompt is not None:
            item["revised_prompt"] = revised_prompt
        data.append(item)
    return {"created": 1713833700, "data": data}


def image_reply(data: bytes = PNG, content_type: str = "image/png", **headers: str) -> Reply:
    return Reply(200, data, dict({"Content-Type": content_type}, **headers))


def lowered(headers: Dict[str, str]) -> Dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


def assert_no_credentials(headers: Dict[str, str], *secrets: str) -> None:
    names = lowered(headers)
    for name in CREDENTIAL_HEADERS:
        assert name not in names, f"{name} was sent to the storage host"
    for secret in (API_KEY,) + secrets:
        assert all(secret not in value for value in headers.values())


def scripted(replies: List[Reply]) -> ScriptedServer:
    """A ScriptedServer playing ``replies``."""
    return ScriptedServer(replies)


def generate_url_result(api: ScriptedServer, **options: Any) -> Any:
    """A provider pointed at ``api`` and the (URL) response it gives to a dall-e-3 generation."""
    provider = OpenAIImageProvider(clock=BEFORE_SHUTDOWNS, api_key=API_KEY, base_url=api.base_url, **options)
    return provider, provider.generate_image("An otter", model="dall-e-3", response_format="url")


@contextmanager
def streaming_storage(body: bytes, piece: int = 16 * 1024) -> Iterator[Any]:
    """A loopback storage host that sends one image with chunked encoding (no Content-Length);
    its ``url`` names the image."""

    def handle(request: Seen, connection: Any) -> bool:
        pieces = [chunk(body[start : start + piece]) for start in range(0, len(body), piece)]
        send(connection, head(200, {"Content-Type": "image/png", "Transfer-Encoding": "chunked"}))
        for framed in [*pieces, LAST_CHUNK]:
            if not send(connection, framed):
                break
        return False

    with raw_server(handle) as storage:
        yield SimpleNamespace(url=storage.url("/blob/image.png?sig=abc"), server=storage)


# -- names and extensions --------------------------------------------------------


@pytest.mark.parametrize(
    "data, name, expected",
    [
        (PNG, "x.png", "x.png"),
        (JPEG, "x.png", "x.jpg"),
        (PNG, "x", "x.png"),
        (JPEG, "x.jpeg", "x.jpeg"),
        (JPEG, "x.jpg", "x.jpg"),
        (PNG, "x.JPG", "x.png"),
        (WEBP, "x.png", "x.webp"),
        (PNG, "v1.5", "v1.5.png"),
        (JPEG, "photo.final", "photo.final.jpg"),
    ],
    ids=[
        "png-png",
        "jpeg-to-png-name",
        "png-bare",
        "jpeg-keeps-jpeg",
        "jpeg-jpg",
        "png-upper-jpg",
        "webp-png-name",
        "dotted-version",
        "dotted-name",
    ],
)
def test_extension_follows_the_bytes_not_the_request(tmp_path: Path, data: bytes, name: str, expected: str) -> None:
    """The request said png; the bytes decide: a wrong image suffix is replaced, a missing one appended."""
    out = tmp_path / "out"
    out.mkdir()
    response = response_of(data, output_format="png")
    saved = response.images[0].save(out / name)
    assert saved == out / expected
    assert saved.read_bytes() == data
    assert listing(out) == [expected]


def test_save_into_a_folder_uses_the_sanitised_prompt(tmp_path: Path) -> None:
    """A folder (existing, or a path ending in a separator) gets ``<prompt stem>.<ext>`` inside it."""
    response = response_of(JPEG, prompt="An Otter, on a rock!")
    existing = tmp_path / "existing"
    existing.mkdir()
    assert response.images[0].save(existing) == existing / "an-otter-on-a-rock.jpg"
    fresh = str(tmp_path / "fresh" / "nested") + os.sep
    saved = response.images[0].save(fresh)
    assert saved == tmp_path / "fresh" / "nested" / "an-otter-on-a-rock.jpg"
    assert saved.read_bytes() == JPEG


def test_save_all_numbers_several_images_and_gives_each_its_own_extension(tmp_path: Path) -> None:
    response = response_of(PNG, JPEG, WEBP, prompt="An otter")
    out = tmp_path / "new" / "folder"
    paths = response.save_all(out)
    assert paths == [out / "an-otter-1.png", out / "an-otter-2.jpg", out / "an-otter-3.webp"]
    assert [path.read_bytes() for path in paths] == [PNG, JPEG, WEBP]
    named = response.save_all(out, stem="My Set")
    assert named == [out / "my-set-1.png", out / "my-set-2.jpg", out / "my-set-3.webp"]
    assert len(listing(out)) == 6


def test_save_all_of_one_image_has_no_number(tmp_path: Path) -> None:
    assert response_of(PNG, prompt="A lighthouse").save_all(tmp_path) == [tmp_path / "a-lighthouse.png"]


def test_bytes_that_are_not_an_image_are_not_saved(tmp_path: Path) -> None:
    response = response_of(b"BM\x36\x00 a bitmap header")
    with pytest.raises(ResponseValidationError, match="not PNG, JPEG, WEBP, GIF or SVG"):
        response.images[0].save(tmp_path / "x.png")
    assert listing(tmp_path) == []


# -- atomic writes ----------------------------------------------------------------


def test_write_goes_through_a_flushed_fsynced_temporary_in_the_same_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "x.png"
    real_fsync = os.fsync
    seen: List[Any] = []

    def fsync(descriptor: int) -> None:
        if stat.S_ISREG(os.fstat(descriptor).st_mode):
            seen.append((os.fstat(descriptor).st_size, target.exists(), listing(tmp_path)))
        real_fsync(descriptor)

    monkeypatch.setattr(_files.os, "fsync", fsync)
    assert response_of(PNG).images[0].save(target) == target
    assert len(seen) == 1
    size, published, names = seen[0]
    assert size == len(PNG), "the data was not flushed before fsync"
    assert not published, "the final name existed before the data was fsynced"
    assert len(names) == 1 and names[0].startswith(".imageprovider-") and names[0].endswith(".part")
    assert listing(tmp_path) == ["x.png"] and target.read_bytes() == PNG


def test_failed_fsync_leaves_neither_the_file_nor_a_temporary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fsync(descriptor: int) -> None:
        raise OSError(errno.EIO, "disk on fire")

    monkeypatch.setattr(_files.os, "fsync", fsync)
    with pytest.raises(OSError, match="disk on fire"):
        response_of(PNG).images[0].save(tmp_path / "x.png")
    assert listing(tmp_path) == []


@pytest.mark.parametrize("error", [RuntimeError("interrupted"), KeyboardInterrupt()], ids=["error", "ctrl-c"])
def test_a_fill_that_fails_midway_leaves_nothing(tmp_path: Path, error: BaseException) -> None:
    def fill(stream: Any) -> None:
        stream.write(PNG[:20])
        stream.flush()
        raise error

    with pytest.raises(type(error)):
        _files.write_atomic_from(tmp_path / "x.png", fill)
    assert listing(tmp_path) == []


def test_a_name_that_appears_during_the_write_is_not_clobbered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The final publish is exclusive: a file created after the existence checks still wins."""
    target = tmp_path / "x.png"
    monkeypatch.setattr(
        _files, "refuse_existing_file", lambda target, overwrite=False: None
    )  # the checks lose the race

    def fill(stream: Any) -> None:
        target.write_bytes(b"theirs")  # another process, mid-write
        stream.write(PNG)

    with pytest.raises(FileExistsError, match="overwrite"):
        _files.write_atomic_from(target, fill)
    assert target.read_bytes() == b"theirs"
    assert listing(tmp_path) == ["x.png"]


def test_file_systems_without_hard_links_still_get_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_links(source: str, destination: str) -> None:
        raise PermissionError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(_files.os, "link", no_links)
    saved = response_of(PNG).images[0].save(tmp_path / "x.png")
    assert saved.read_bytes() == PNG and listing(tmp_path) == ["x.png"]
    response_of(WEBP).images[0].save(tmp_path / "x.webp")
    with pytest.raises(FileExistsError, match="overwrite"):
        response_of(WEBP).images[0].save(tmp_path / "x.webp")
    assert (tmp_path / "x.webp").read_bytes() == WEBP
    assert listing(tmp_path) == ["x.png", "x.webp"]


@contextlib.contextmanager
def process_umask(mask: int) -> Iterator[None]:
    """The process umask set to ``mask`` for the block (tests only: the library never sets it)."""
    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.mark.skipif(os.name != "posix", reason="the umask and permission bits are POSIX")
@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_saved_files_get_the_permissions_of_any_new_file(tmp_path: Path, umask: int, mode: int) -> None:
    with process_umask(umask):
        saved = response_of(PNG).images[0].save(tmp_path / "x.png", metadata=True)
    assert stat.S_IMODE(saved.stat().st_mode) == mode
    assert stat.S_IMODE((tmp_path / "x.json").stat().st_mode) == mode


IMPORT_WITHOUT_UMASK = """
import os, sys
calls = []
real = os.umask
def recording(mask):
    calls.append(oct(mask))
    return real(mask)
os.umask = recording
import imageprovider, imageprovider._files, imageprovider._saving, imageprovider.batch, imageprovider.cli
import imageprovider.testing
os.umask = real
print(calls)
"""

SAVE_UNDER_UMASK = """
import os, stat, sys
os.umask(0o022)
from imageprovider import _files
from imageprovider._files import PartFile
folder = sys.argv[1]
modes = []
for mask in (0o027, 0o077, 0o002, 0o000):
    os.umask(mask)  # after the import: the mask in force when the file is made counts
    saved = _files.write_atomic(os.path.join(folder, "x-%o.png" % mask), b"data")
    part = PartFile(folder)
    part.write(b"more")
    part.close()
    published = part.publish(_files.Path(folder) / ("part-%o.png" % mask))
    modes.append([mask, stat.S_IMODE(os.stat(saved).st_mode), stat.S_IMODE(os.stat(published).st_mode)])
print(modes)
"""


def run_child(code: str, *args: str) -> str:
    finished = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=60, check=False
    )
    assert finished.returncode == 0, finished.stderr
    return finished.stdout.strip()


def test_regression_importing_the_package_never_touches_the_umask() -> None:
    """Regression: importing set the process umask to 0 for a moment (to read it), a race for other threads."""
    assert run_child(IMPORT_WITHOUT_UMASK) == "[]"


@pytest.mark.skipif(os.name != "posix", reason="the umask and permission bits are POSIX")
def test_regression_saved_files_get_the_umask_in_force_when_they_are_made(tmp_path: Path) -> None:
    """Regression: the umask read at import was applied later; the kernel applies the current one now."""
    modes = json.loads(run_child(SAVE_UNDER_UMASK, str(tmp_path)))
    assert modes == [[mask, 0o666 & ~mask, 0o666 & ~mask] for mask in (0o027, 0o077, 0o002, 0o000)]
    assert sorted(path.name for path in tmp_path.iterdir() if path.name.endswith(".part")) == []


# -- existing files -----------------------------------------------------------------


def test_an_existing_file_is_refused_untouched_then_replaced_on_request(tmp_path: Path) -> None:
    target = tmp_path / "x.png"
    target.write_bytes(b"precious")
    image = response_of(PNG).images[0]
    with pytest.raises(FileExistsError) as raised:
        image.save(target)
    assert str(target) in str(raised.value) and "overwrite" in str(raised.value)
    assert target.read_bytes() == b"precious"
    assert listing(tmp_path) == ["x.png"]
    assert image.save(target, overwrite=True) == target
    assert target.read_bytes() == PNG
    assert listing(tmp_path) == ["x.png"]


def test_save_all_checks_every_target_before_writing_any(tmp_path: Path) -> None:
    (tmp_path / "an-otter-3.webp").write_bytes(b"precious")
    before = snapshot(tmp_path)
    response = response_of(PNG, JPEG, WEBP)
    with pytest.raises(FileExistsError) as raised:
        response.save_all(tmp_path)
    assert str(tmp_path / "an-otter-3.webp") in str(raised.value) and "overwrite" in str(raised.value)
    assert snapshot(tmp_path) == before
    paths = response.save_all(tmp_path, overwrite=True)
    assert [path.read_bytes() for path in paths] == [PNG, JPEG, WEBP]
    assert listing(tmp_path) == ["an-otter-1.png", "an-otter-2.jpg", "an-otter-3.webp"]


def test_save_all_with_metadata_checks_the_sidecars_before_writing_any(tmp_path: Path) -> None:
    """With metadata=True the .json files are targets too: a clash on one writes nothing at all."""
    (tmp_path / "an-otter-2.json").write_text("{}")
    before = snapshot(tmp_path)
    with pytest.raises(FileExistsError, match="an-otter-2.json"):
        response_of(PNG, JPEG).save_all(tmp_path, metadata=True)
    assert snapshot(tmp_path) == before


def test_save_all_of_url_results_checks_every_target_before_downloading_any(tmp_path: Path) -> None:
    """The documented promise holds for URL results too: one clash, no new file."""
    (tmp_path / "an-otter-2.png").write_bytes(b"precious")
    before = snapshot(tmp_path)
    with scripted([image_reply(PNG)]) as storage:
        root = root_of(storage)
        with scripted([Reply(200, url_body(root + "/a.png", root + "/b.png"))]) as api:
            provider = OpenAIImageProvider(clock=BEFORE_SHUTDOWNS, api_key=API_KEY, base_url=api.base_url)
            with provider:
                response = provider.generate_image("An otter", model="dall-e-2", n=2, response_format="url")
                with pytest.raises(FileExistsError, match="an-otter-2"):
                    response.save_all(tmp_path)
    assert snapshot(tmp_path) == before


# -- names from prompts ---------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("A cat / on ../../etc\n the mat!", "a-cat-on-etc-the-mat"),
        ("../../etc/passwd\n\x00 evil / name", "etc-passwd-evil-name"),
        ("..\\..\\Windows\\System32", "windows-system32"),
        ("C:\\Users\\me", "c-users-me"),
        ("/absolute/path", "absolute-path"),
        ('x:y*z?<>|"', "x-y-z"),
        ("..", "image"),
        ("...", "image"),
        ("", "image"),
        ("   ", "image"),
        ("\x00\x01\x7f", "image"),
        ("!!!", "image"),
        ("☕🦦", "image"),
        ("a\u202eb", "ab"),
        ("a\u200bb", "ab"),
        (".hidden", "hidden"),
        ("-dash-", "dash"),
        ("snake_case name", "snake-case-name"),
        ("CON", "image"),
        ("con", "image"),
        ("nul", "image"),
        ("Nul ", "image"),
        ("AUX", "image"),
        ("prn", "image"),
        ("COM1", "image"),
        ("lpt9", "image"),
        ("COM\u00b9", "image"),
        ("con.txt", "con-txt"),
        ("console", "console"),
        ("Café au lait", "café-au-lait"),
        ("東京の夜", "東京の夜"),
        ("Ünïcödé Straße", "ünïcödé-straße"),
        ("\uff26\uff55\uff4c\uff4c width", "full-width"),
        ("\ufb01sh", "fish"),
        ("\U0001d538\U0001d539", "ab"),
        ("e\u0301t\u00e9", "\u00e9t\u00e9"),
        ("a\u2215b\uff0fc", "a-b-c"),
    ],
)
def test_safe_stem_sanitises_nasty_text(text: str, expected: str) -> None:
    assert _saving.safe_stem(text) == expected


NASTY = [
    "../" * 50,
    "..",
    "./.",
    "a/../b",
    "a\\..\\b",
    "\x00" * 10,
    "x" * 500,
    "é" * 300,
    "東" * 300,
    "-" * 200 + "a",
    "a" + "." * 200,
    "CON",
    "com9",
    "LPT1",
    "aux",
    "a\nb\rc\td",
    "\u202e\u2066evil\u2069",
    "\ud800broken surrogate",
    "name\x1b[31mred",
    "tail.",
    "tail-",
    "ｃｏｎ",
    "a" * 79 + "-b",
    "a" * 79 + ".b",
]


@pytest.mark.parametrize("text", NASTY)
def test_safe_stem_output_is_always_a_safe_single_name(text: str) -> None:
    stem = _saving.safe_stem(text)
    assert stem and len(stem) <= _saving.MAX_STEM_LENGTH
    assert "/" not in stem and "\\" not in stem and ".." not in stem and os.sep not in stem
    assert not any(unicodedata.category(char)[0] == "C" for char in stem)
    assert not stem.startswith((".", "-")) and not stem.endswith((".", "-"))
    assert stem.split(".")[0].lower() not in {"con", "prn", "aux", "nul", "com1", "com9", "lpt1"}
    assert _saving.safe_stem(stem) == stem
    assert 0 < len(_saving.safe_stem(text, max_length=10)) <= 10


def test_safe_stem_bounds_length_and_keeps_a_fallback() -> None:
    assert _saving.safe_stem("word " * 100) == ("word-" * 16).rstrip("-")
    assert len(_saving.safe_stem("a" * 1000)) == 80
    assert _saving.safe_stem("???", default="untitled") == "untitled"


def test_safe_stem_line_breaks_and_tabs_separate_words() -> None:
    """A multi-line prompt's words stay apart, as with spaces (control characters are still removed)."""
    assert _saving.safe_stem("A cat\non the mat") == "a-cat-on-the-mat"
    assert _saving.safe_stem("A cat\r\non\tthe mat") == "a-cat-on-the-mat"


def test_save_all_with_a_hostile_prompt_stays_inside_the_folder(tmp_path: Path) -> None:
    out = tmp_path / "a" / "b" / "out"
    response = response_of(PNG, JPEG, prompt="../../etc/passwd\n\x00 evil / name")
    paths = response.save_all(out, metadata=True)
    assert paths == [out / "etc-passwd-evil-name-1.png", out / "etc-passwd-evil-name-2.jpg"]
    for path in paths:
        assert path.resolve().parent == out.resolve()
    assert listing(out) == sorted(
        [
            "etc-passwd-evil-name-1.png",
            "etc-passwd-evil-name-1.json",
            "etc-passwd-evil-name-2.jpg",
            "etc-passwd-evil-name-2.json",
        ]
    )
    assert listing(tmp_path) == ["a"] and listing(tmp_path / "a") == ["b"] and listing(tmp_path / "a" / "b") == ["out"]
    reserved = response_of(PNG, prompt="CON").save_all(tmp_path / "reserved")
    assert reserved == [tmp_path / "reserved" / "image.png"]


def test_a_long_prompt_in_any_script_still_gives_a_name_the_file_system_takes(tmp_path: Path) -> None:
    """80 letters of a 4-byte UTF-8 script (320 bytes) must not exceed the usual 255-byte name limit."""
    prompt = "\U00020000" * 100  # CJK Extension B: letters, 4 bytes each in UTF-8
    assert prompt[0].isalnum()
    paths = response_of(PNG, JPEG, prompt=prompt).save_all(tmp_path, metadata=True)
    assert len(paths) == 2 and all(path.read_bytes() for path in paths)
    assert all(path.parent == tmp_path for path in paths)


# -- URL results: downloads ---------------------------------------------------------------


def test_url_results_are_downloaded_without_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The storage host (another port) gets no key, organization, project or extra header; the API gets them."""
    with scripted([image_reply(JPEG)]) as storage:
        with scripted([Reply(200, url_body(root_of(storage) + "/blob/x.png?sig=1"))]) as api:
            provider, result = generate_url_result(
                api, organization=ORGANIZATION, project=PROJECT, extra_headers={"X-Gateway-Key": "gateway-secret"}
            )
            with provider, process_umask(0o022):
                saved = result.images[0].save(tmp_path / "otter.png")
    assert saved == tmp_path / "otter.jpg" and saved.read_bytes() == JPEG
    if os.name == "posix":
        assert stat.S_IMODE(saved.stat().st_mode) == 0o644
    assert listing(tmp_path) == ["otter.jpg"]
    sent = lowered(api.received[0].headers)
    assert sent["authorization"] == "Bearer " + API_KEY
    assert sent["openai-organization"] == ORGANIZATION and sent["openai-project"] == PROJECT
    assert [request.method for request in storage.received] == ["GET"]
    assert storage.received[0].path == "/blob/x.png?sig=1"
    assert_no_credentials(storage.received[0].headers, ORGANIZATION, PROJECT, "gateway-secret")
    assert "x-gateway-key" not in lowered(storage.received[0].headers)


def test_azure_api_key_is_not_sent_to_the_storage_host(tmp_path: Path) -> None:
    with scripted([image_reply(PNG)]) as storage:
        with scripted([Reply(200, url_body(root_of(storage) + "/blob/x.png"))]) as api:
            with AzureOpenAIImageProvider(
                api_key="azure-secret-key", endpoint=root_of(api), deployment="dalle", api_version="2024-02-01"
            ) as azure:
                result = azure.generate_image("An otter", model="dall-e-3", response_format="url")
                result.images[0].save(tmp_path / "x.png")
    assert lowered(api.received[0].headers)["api-key"] == "azure-secret-key"
    assert_no_credentials(storage.received[0].headers, "azure-secret-key")
    assert (tmp_path / "x.png").read_bytes() == PNG


def test_a_redirect_from_the_api_origin_sends_credentials_to_the_first_hop_only(tmp_path: Path) -> None:
    with scripted([image_reply(PNG)]) as storage:
        target = root_of(storage) + "/blob/x.png?sig=2"
        api = scripted([])
        api.replies = [
            Reply(200, url_body(root_of(api) + "/v1/files/img-1/content")),
            Reply(302, b"", {"Location": target}),
        ]
        with api:
            provider, result = generate_url_result(api, organization=ORGANIZATION, project=PROJECT)
            with provider:
                saved = result.images[0].save(tmp_path)
    assert saved.read_bytes() == PNG
    first_hop = api.received[1]
    assert (first_hop.method, first_hop.path) == ("GET", "/v1/files/img-1/content")
    assert lowered(first_hop.headers)["authorization"] == "Bearer " + API_KEY
    assert lowered(first_hop.headers)["openai-organization"] == ORGANIZATION
    assert len(storage.received) == 1 and storage.received[0].path == "/blob/x.png?sig=2"
    assert_no_credentials(storage.received[0].headers, ORGANIZATION, PROJECT)


def test_a_redirect_to_a_plain_http_host_is_not_followed(tmp_path: Path) -> None:
    with scripted([Reply(302, b"", {"Location": "http://example.com/x.png"})]) as storage:
        with scripted([Reply(200, url_body(root_of(storage) + "/x.png"))]) as api:
            provider, result = generate_url_result(api)
            with provider:
                with pytest.raises(ResponseValidationError, match="only https"):
                    result.images[0].save(tmp_path / "x.png")
    assert len(storage.received) == 1
    assert listing(tmp_path) == []


def test_a_busy_storage_host_is_retried_with_the_provider_policy(tmp_path: Path, sleeps: List[float]) -> None:
    with scripted([Reply(503, b"busy", {"Content-Type": "text/plain"}), image_reply(PNG)]) as storage:
        with scripted([Reply(200, url_body(root_of(storage) + "/x.png"))]) as api:
            provider, result = generate_url_result(api)
            with provider:
                saved = result.images[0].save(tmp_path / "x.png")
    assert saved.read_bytes() == PNG
    assert [request.method for request in storage.received] == ["GET", "GET"]
    assert len(sleeps) == 1 and 0 < sleeps[0] <= 0.5
    assert listing(tmp_path) == ["x.png"]


def test_the_download_is_streamed_to_disk_in_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    body = PNG + bytes(range(256)) * 4096  # ~1 MiB behind a real PNG signature
    writes: List[int] = []
    with streaming_storage(body) as storage:
        with scripted([Reply(200, url_body(storage.url))]) as api:
            provider, result = generate_url_result(api)
            with provider:
                real_download = provider_module.download

                def download(transport: Any, url: str, sink: Any, **options: Any) -> int:
                    class CountingSink:
                        def write(self, chunk: bytes) -> int:
                            writes.append(len(chunk))
                            return sink.write(chunk)

                    return real_download(transport, url, CountingSink(), **options)

                monkeypatch.setattr(provider_module, "download", download)
                saved = result.images[0].save(tmp_path / "big")
    assert saved == tmp_path / "big.png" and saved.read_bytes() == body
    assert len(writes) >= 4 and max(writes) <= len(body) // 4
    assert_no_credentials(storage.server.seen[0].named_headers)


def test_a_download_interrupted_midway_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    body = PNG + b"\x00" * 300_000
    with streaming_storage(body) as storage:
        with scripted([Reply(200, url_body(storage.url))]) as api:
            provider, result = generate_url_result(api)
            with provider:
                real_download = provider_module.download

                def download(transport: Any, url: str, sink: Any, **options: Any) -> int:
                    class FailingSink:
                        calls = 0

                        def write(self, chunk: bytes) -> int:
                            FailingSink.calls += 1
                            if FailingSink.calls > 1:
                                raise RuntimeError("interrupted after the first chunk")
                            return sink.write(chunk)

                    return real_download(transport, url, FailingSink(), **options)

                monkeypatch.setattr(provider_module, "download", download)
                with pytest.raises(RuntimeError, match="interrupted"):
                    result.images[0].save(tmp_path / "x.png")
    assert listing(tmp_path) == []


def test_a_full_disk_during_a_download_is_not_reported_as_a_connection_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A local write failure must surface as the OSError it is, not as a network problem with the API host."""
    body = PNG + b"\x00" * 300_000
    with streaming_storage(body) as storage:
        with scripted([Reply(200, url_body(storage.url))]) as api:
            provider, result = generate_url_result(api)
            with provider:
                real_download = provider_module.download

                def download(transport: Any, url: str, sink: Any, **options: Any) -> int:
                    class FullDisk:
                        def write(self, chunk: bytes) -> int:
                            raise OSError(errno.ENOSPC, "No space left on device")

                    return real_download(transport, url, FullDisk(), **options)

                monkeypatch.setattr(provider_module, "download", download)
                with pytest.raises(Exception) as raised:
                    result.images[0].save(tmp_path / "x.png")
    assert not isinstance(raised.value, APIConnectionError), raised.value
    assert isinstance(raised.value, OSError) and raised.value.errno == errno.ENOSPC
    assert listing(tmp_path) == []


def test_a_declared_size_over_the_cap_is_refused_before_writing(tmp_path: Path) -> None:
    body = PNG + b"\x00" * 2000
    with scripted([image_reply(body)]) as storage:
        with scripted([Reply(200, url_body(root_of(storage) + "/x.png"))]) as api:
            provider, result = generate_url_result(api, max_download_bytes=1000)
            with provider:
                with pytest.raises(ResponseValidationError, match="download limit") as raised:
                    result.images[0].save(tmp_path / "x.png")
    assert "1,000" in str(raised.value)
    assert listing(tmp_path) == []


def test_a_declared_size_over_the_cap_is_refused_without_reading_the_body(tmp_path: Path) -> None:
    """Content-Length alone decides: a storage host announcing 50 MB is refused before any byte is read."""
    announced = Reply(200, PNG, {"Content-Type": "image/png", "Content-Length": str(50_000_000)})
    with scripted([announced]) as storage:
        with scripted([Reply(200, url_body(root_of(storage) + "/x.png"))]) as api:
            provider, result = generate_url_result(api, max_download_bytes=1000)
            with provider:
                with pytest.raises(ResponseValidationError, match="download limit"):
                    result.images[0].save(tmp_path / "x.png")
    assert listing(tmp_path) == []


def test_a_size_over_the_cap_found_while_streaming_is_refused(tmp_path: Path) -> None:
    body = PNG + b"\x00" * 300_000
    with streaming_storage(body) as storage:
        with scripted([Reply(200, url_body(storage.url))]) as api:
            provider, result = generate_url_result(api, max_download_bytes=100_000)
            with provider:
                with pytest.raises(ResponseValidationError, match="download limit"):
                    result.images[0].save(tmp_path / "x.png")
    assert listing(tmp_path) == []


def test_a_body_exactly_at_the_cap_is_saved(tmp_path: Path) -> None:
    body = PNG + b"\x00" * 927
    with streaming_storage(body) as storage, scripted([image_reply(body)]) as declared:
        with scripted([Reply(200, url_body(storage.url, root_of(declared) + "/x.png"))]) as api:
            with OpenAIImageProvider(
                clock=BEFORE_SHUTDOWNS, api_key=API_KEY, base_url=api.base_url, max_download_bytes=len(body)
            ) as provider:
                result = provider.generate_image("An otter", model="dall-e-2", n=2, response_format="url")
                paths = result.save_all(tmp_path)
    assert [path.read_bytes() for path in paths] == [body, body]


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/x.png",
        "file:///etc/passwd",
        "ftp://127.0.0.1/x.png",
        "http://localhost.example.com/x.png",
        "http://127.0.0.1@example.com/x.png",
        "https:///x.png",
        "//example.com/x.png",
        "javascript:alert(1)",
        "data:image/png;base64," + PNG_B64,
    ],
)
def test_only_https_or_loopback_http_urls_are_fetched(
    mocked: Any, provider: OpenAIImageProvider, tmp_path: Path, url: str
) -> None:
    mocked.add("POST", GENERATIONS_URL, json={"created": 1, "data": [{"url": url}]})
    result = provider.generate_image("An otter", model="dall-e-3", response_format="url")
    with pytest.raises(ResponseValidationError, match="only https|carries credentials|has no host"):
        result.images[0].save(tmp_path / "x.png")
    assert len(mocked.calls) == 1  # the generation only: nothing was fetched
    assert listing(tmp_path) == []


def test_an_expired_url_raises_image_expired_error(tmp_path: Path) -> None:
    with FakeImagesServer(url_ttl=0.2, detail_bits=0, today=BEFORE_SHUTDOWNS) as server:
        with OpenAIImageProvider(clock=BEFORE_SHUTDOWNS, api_key=server.api_key, base_url=server.base_url) as provider:
            result = provider.generate_image("An otter", model="dall-e-2", size="256x256", response_format="url")
            assert result.images[0].url and "/fake-files/" in result.images[0].url
            time.sleep(0.3)
            with pytest.raises(ImageExpiredError) as raised:
                result.images[0].save(tmp_path / "x.png")
    assert raised.value.status_code == 403
    assert "60 minutes" in str(raised.value)
    assert listing(tmp_path) == []


@pytest.mark.parametrize("status", [403, 404, 410])
def test_storage_refusals_read_as_expired(tmp_path: Path, status: int, sleeps: List[float]) -> None:
    with scripted([Reply(status, b"<Error>gone</Error>", {"Content-Type": "application/xml"})]) as storage:
        with scripted([Reply(200, url_body(root_of(storage) + "/x.png"))]) as api:
            provider, result = generate_url_result(api)
            with provider:
                with pytest.raises(ImageExpiredError, match="60 minutes") as raised:
                    result.images[0].save(tmp_path / "x.png")
    assert raised.value.status_code == status
    assert len(storage.received) == 1 and sleeps == []
    assert listing(tmp_path) == []


def test_a_download_cut_short_raises_connection_error_and_leaves_no_file(tmp_path: Path) -> None:
    body = PNG + b"\x00" * 5000
    short = Reply(200, body[:1000], {"Content-Type": "image/png", "Content-Length": str(len(body))})
    with scripted([short]) as storage:
        with scripted([Reply(200, url_body(root_of(storage) + "/x.png"))]) as api:
            provider, result = generate_url_result(api)
            with provider:
                with pytest.raises(APIConnectionError):
                    result.images[0].save(tmp_path / "x.png")
    assert listing(tmp_path) == []


def test_a_download_that_is_not_an_image_is_not_saved(tmp_path: Path) -> None:
    with scripted([Reply(200, b"<html>login</html>", {"Content-Type": "text/html"})]) as storage:
        with scripted([Reply(200, url_body(root_of(storage) + "/x.png"))]) as api:
            provider, result = generate_url_result(api)
            with provider:
                with pytest.raises(ResponseValidationError, match="not PNG, JPEG, WEBP, GIF or SVG"):
                    result.images[0].save(tmp_path / "x.png")
    assert listing(tmp_path) == []


def test_an_existing_file_is_not_replaced_by_a_download(tmp_path: Path) -> None:
    (tmp_path / "x.png").write_bytes(b"precious")
    with scripted([image_reply(PNG)]) as storage:
        with scripted([Reply(200, url_body(root_of(storage) + "/x.png"))]) as api:
            provider, result = generate_url_result(api)
            with provider:
                with pytest.raises(FileExistsError, match="overwrite"):
                    result.images[0].save(tmp_path / "x.png")
                assert (tmp_path / "x.png").read_bytes() == b"precious"
                assert listing(tmp_path) == ["x.png"]
                result.images[0].save(tmp_path / "x.png", overwrite=True)
    assert (tmp_path / "x.png").read_bytes() == PNG and listing(tmp_path) == ["x.png"]


def test_a_url_image_without_a_provider_cannot_be_saved(tmp_path: Path) -> None:
    with pytest.raises(ImageProviderError, match="no provider"):
        GeneratedImage(url="https://example.com/x.png").save(tmp_path / "x.png")
    assert listing(tmp_path) == []


# -- sidecar metadata -------------------------------------------------------------------


def test_sidecar_metadata_says_exactly_what_was_asked_and_answered(
    mocked: Any, provider: OpenAIImageProvider, tmp_path: Path
) -> None:
    body = images_body()
    mocked.add("POST", GENERATIONS_URL, json=body, headers={"x-request-id": "req_meta_1"})
    result = provider.generate_image("An otter on a rock", size="1024x1024", quality="high")
    saved = result.images[0].save(tmp_path / "otter.png", metadata=True)
    assert listing(tmp_path) == ["otter.json", "otter.png"]
    text = (tmp_path / "otter.json").read_text("utf-8")
    assert json.loads(text) == {
        "created": 1713833628,
        "file": "otter.png",
        "index": 0,
        "model": "gpt-image-2",
        "parameters": {"prompt": "An otter on a rock", "model": "gpt-image-2", "size": "1024x1024", "quality": "high"},
        "prompt": "An otter on a rock",
        "request_id": "req_meta_1",
        "revised_prompt": None,
        "size": "1024x1024",
        "url": None,
        "usage": body["usage"],
    }
    assert API_KEY not in text and saved.read_bytes() == PNG


def test_sidecars_of_save_all_share_each_image_stem(tmp_path: Path) -> None:
    response = response_of(PNG, JPEG, prompt="v1.5 release", size="1024x1024")
    paths = response.save_all(tmp_path, metadata=True)
    assert listing(tmp_path) == sorted(
        ["v1-5-release-1.png", "v1-5-release-1.json", "v1-5-release-2.jpg", "v1-5-release-2.json"]
    )
    for index, path in enumerate(paths):
        document = json.loads(path.with_suffix(".json").read_text("utf-8"))
        assert (document["file"], document["index"], document["request_id"]) == (path.name, index, "req_local")
    dotted = response_of(PNG).images[0].save(tmp_path / "v2.0", metadata=True)
    assert dotted == tmp_path / "v2.0.png" and (tmp_path / "v2.0.json").exists()


def test_sidecar_of_a_url_result_has_the_revised_prompt_and_url(tmp_path: Path) -> None:
    with scripted([image_reply(PNG)]) as storage:
        url = root_of(storage) + "/blob/x.png"
        body = url_body(url, revised_prompt="A photorealistic otter")
        with scripted([Reply(200, body, {"x-request-id": "req_url_1"})]) as api:
            with OpenAIImageProvider(
                clock=BEFORE_SHUTDOWNS, api_key=API_KEY, base_url=api.base_url, organization=ORGANIZATION
            ) as provider:
                result = provider.generate_image("An otter", model="dall-e-3", size="1024x1024", response_format="url")
                saved = result.images[0].save(tmp_path, metadata=True)
    assert saved == tmp_path / "an-otter.png"
    text = (tmp_path / "an-otter.json").read_text("utf-8")
    assert json.loads(text) == {
        "created": 1713833700,
        "file": "an-otter.png",
        "index": 0,
        "model": "dall-e-3",
        "parameters": {"prompt": "An otter", "model": "dall-e-3", "size": "1024x1024", "response_format": "url"},
        "prompt": "An otter",
        "request_id": "req_url_1",
        "revised_prompt": "A photorealistic otter",
        "size": "1024x1024",
        "url": url,
        "usage": None,
    }
    assert API_KEY not in text and ORGANIZATION not in text


def test_no_saved_file_contains_the_api_key(tmp_path: Path) -> None:
    with FakeImagesServer(detail_bits=0, today=BEFORE_SHUTDOWNS) as server:
        with OpenAIImageProvider(
            clock=BEFORE_SHUTDOWNS, api_key=server.api_key, base_url=server.base_url, project=PROJECT
        ) as provider:
            result = provider.generate_image("An otter", size="1024x1024", n=2, quality="low")
            b64_paths = result.save_all(tmp_path / "b64", metadata=True)
            urls = provider.generate_image("An otter", model="dall-e-2", size="256x256", response_format="url")
            url_paths = urls.save_all(tmp_path / "url", metadata=True)
    assert len(b64_paths) == 2 and len(url_paths) == 1
    for folder in (tmp_path / "b64", tmp_path / "url"):
        for name in listing(folder):
            content = (folder / name).read_bytes()
            assert server.api_key.encode() not in content and PROJECT.encode() not in content
    document = json.loads((tmp_path / "b64" / "an-otter-2.json").read_text("utf-8"))
    assert document["request_id"] == result.request_id and document["usage"] == result.raw["usage"]
    assert document["created"] == result.created and document["file"] == "an-otter-2.png"


def test_edit_parameters_summarise_files_without_their_content(
    mocked: Any, provider: OpenAIImageProvider, tmp_path: Path
) -> None:
    photo, other, mask = make_png(2, 2), make_png(2, 2), make_png(2, 2, 6)
    on_disk = tmp_path / "inputs" / "holiday.png"
    on_disk.parent.mkdir()
    on_disk.write_bytes(other)
    mocked.add("POST", BASE_URL + "/images/edits", json=images_body())
    result = provider.edit_image(
        "Add a hat", [("photo.png", photo, "image/png"), str(on_disk)], mask=("mask.png", mask, "image/png")
    )
    expected = {
        "prompt": "Add a hat",
        "model": "gpt-image-2",
        "images": [
            {"filename": "photo.png", "content_type": "image/png", "bytes": len(photo)},
            {"filename": "holiday.png", "content_type": "image/png", "bytes": len(other)},
        ],
        "mask": {"filename": "mask.png", "content_type": "image/png", "bytes": len(mask)},
    }
    assert dict(result.request) == expected
    saved = result.images[0].save(tmp_path / "out" / "hat.png", metadata=True)
    text = (tmp_path / "out" / "hat.json").read_text("utf-8")
    assert json.loads(text)["parameters"] == expected
    for data in (photo, other, mask):
        assert b64(data) not in text and repr(data) not in text
    assert str(tmp_path / "inputs") not in text and API_KEY not in text
    assert saved.read_bytes() == PNG
