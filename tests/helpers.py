"""Constants and builders shared by the tests."""

import base64
import datetime
import email.parser
import email.policy
import re
import struct
import zlib
from pathlib import Path
from typing import Any, Dict, List, Tuple

from hypothesis import settings

#: Also the canary that tests/canary_plugin.py looks for in everything the library emits.
API_KEY = "sk-canary-5f1e0c7a9b3d4e2f8a6c"
BASE_URL = "https://api.openai.com/v1"
GENERATIONS_URL = BASE_URL + "/images/generations"

ISOLATED_VARIABLES = (
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "OPENAI_ORG_ID",
    "OPENAI_PROJECT_ID",
    "IMAGEPROVIDER_MODEL",
    "IMAGEPROVIDER_CONFIG",
    "IMAGEPROVIDER_MODELS",
    "IMAGEPROVIDER_TIMEOUT",
    "IMAGEPROVIDER_MAX_RETRIES",
)

#: A day before every shutdown in the model table: the older models (DALL-E,
#: gpt-image-1 and 1.5) are still served, so their rules can be tested.
BEFORE_SHUTDOWNS = datetime.date(2026, 1, 1)


def before_shutdowns() -> datetime.date:
    """A provider clock set to :data:`BEFORE_SHUTDOWNS`."""
    return BEFORE_SHUTDOWNS


def png_chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk with an honest CRC."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def make_png(width: int = 2, height: int = 2, colour_type: int = 2) -> bytes:
    """A real, tiny PNG: colour type 2 is RGB, 6 is RGBA (fully transparent)."""
    pixel = {2: b"\x80\x40\x20", 6: b"\x80\x40\x20\x00"}[colour_type]
    rows = b"".join(b"\x00" + pixel * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(rows))
        + png_chunk(b"IEND", b"")
    )


def jpeg_segment(marker: int, payload: bytes) -> bytes:
    """One JPEG marker segment with its length."""
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


def make_jpeg(width: int, height: int) -> bytes:
    """SOI, APP0 (JFIF), SOF0 with the dimensions, SOS, a few scan bytes, EOI."""
    sof = jpeg_segment(0xC0, struct.pack(">BHHB", 8, height, width, 3) + b"\x01\x22\x00\x02\x11\x01\x03\x11\x01")
    return (
        b"\xff\xd8"
        + jpeg_segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")
        + sof
        + jpeg_segment(0xDA, b"\x03\x01\x00\x02\x11\x03\x11\x00\x3f\x00")
        + b"\x12\x34\xff\xd9"
    )


def make_webp(width: int, height: int, alpha: bool = False) -> bytes:
    """RIFF/WEBP with a VP8X chunk giving the canvas size."""
    payload = (
        bytes([0x10 if alpha else 0, 0, 0, 0]) + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    )
    body = b"WEBP" + b"VP8X" + struct.pack("<I", len(payload)) + payload
    return b"RIFF" + struct.pack("<I", len(body)) + body


#: A 1x1 GIF: a real image, but not one the API takes.
GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)

Part = Tuple[Any, Any, str, Any]  # name, filename, content type, payload


def multipart_parts(request: Any) -> List[Part]:
    """The (name, filename, content type, payload) of each part of a multipart request, in order."""
    content_type = request.headers["Content-Type"]
    assert content_type.startswith("multipart/form-data; boundary=")
    body = request.body
    assert isinstance(body, bytes)
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("ascii") + b"\r\n\r\n" + body
    )
    assert message.is_multipart()
    return [
        (
            part.get_param("name", header="content-disposition"),
            part.get_filename(),
            part.get_content_type(),
            part.get_payload(decode=True),
        )
        for part in message.iter_parts()
    ]


PNG = make_png()
PNG_B64 = base64.b64encode(PNG).decode("ascii")


def images_body(count: int = 1, **fields: Any) -> Dict[str, Any]:
    """A valid generations response body with ``count`` PNG images."""
    body: Dict[str, Any] = {
        "created": 1713833628,
        "data": [{"b64_json": PNG_B64} for _ in range(count)],
        "background": "opaque",
        "output_format": "png",
        "size": "1024x1024",
        "quality": "high",
        "usage": {
            "total_tokens": 100,
            "input_tokens": 50,
            "output_tokens": 50,
            "input_tokens_details": {"text_tokens": 10, "image_tokens": 40},
        },
    }
    body.update(fields)
    return body


def examples(under_ci: int) -> int:
    """Examples for a property that runs ``under_ci`` of them with the "ci" Hypothesis profile (100 a
    property), scaled to the profile in force (see conftest.py)."""
    return max(10, under_ci * settings.default.max_examples // 100)


def folder_snapshot(folder: Any) -> Dict[str, bytes]:
    """Every file in ``folder`` (hidden ones included) with its content; ``{}`` when there is no folder."""
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())} if folder.exists() else {}


def record_parts(monkeypatch: Any) -> List[str]:
    """Record the temporary file of every ``.part`` a ``save_to`` saver opens for an image as it arrives."""
    from imageprovider._saving import FolderSaver

    opened: List[str] = []
    open_sink = FolderSaver.open_sink

    def recording(self: FolderSaver, index: int) -> Any:
        part = open_sink(self, index)
        opened.append(part.temporary)
        return part

    monkeypatch.setattr(FolderSaver, "open_sink", recording)
    return opened


#: The project's README, whose examples the tests run.
README = Path(__file__).resolve().parents[1] / "README.rst"


def readme_python_blocks() -> List[str]:
    """Every ``.. code-block:: python`` of README.rst, unindented."""
    text = README.read_text(encoding="utf-8")
    blocks = re.findall(r"\.\. code-block:: python\n\n((?:    .*\n|\n)+)", text)
    return [re.sub(r"(?m)^    ", "", block) for block in blocks]


def readme_recipe(name: str) -> str:
    """The code of the README's ``# recipe: NAME`` block (a deployment recipe the integration tests run)."""
    found = [block for block in readme_python_blocks() if block.startswith(f"# recipe: {name}\n")]
    assert len(found) == 1, f"README.rst has {len(found)} '# recipe: {name}' blocks"
    return found[0]
