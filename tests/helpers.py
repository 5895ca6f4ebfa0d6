"""Constants and builders shared by the tests."""

import base64
import struct
import zlib
from typing import Any, Dict

API_KEY = "sk-test-0123456789abcdef"
BASE_URL = "https://api.openai.com/v1"
GENERATIONS_URL = BASE_URL + "/images/generations"

ISOLATED_VARIABLES = (
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "OPENAI_ORG_ID",
    "OPENAI_PROJECT_ID",
    "IMAGEPROVIDER_MODEL",
    "IMAGEPROVIDER_CONFIG",
)


def make_png(width: int = 2, height: int = 2) -> bytes:
    """A real, tiny RGB PNG."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    rows = b"".join(b"\x00" + b"\x80\x40\x20" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


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
