"""
imageprovider.testing._svg
~~~~~~~~~~~~~~~~~~~~~~~~~~

Real SVG documents for ``output_format="svg"``: an XML prolog, an ``<svg>``
element of the requested width, height and view box, the prompt (escaped)
in ``<title>``, and a few shapes whose colours and places come from a hash of
the seed. ``complexity`` sets how many shapes there are; ``transparent``
leaves out the background rectangle.
"""

import hashlib
import re
from typing import List
from xml.sax.saxutils import escape, quoteattr

__all__ = ["make_svg", "SHAPES_BY_COMPLEXITY"]

#: Shapes drawn per ``complexity`` (the API's default is ``high``).
SHAPES_BY_COMPLEXITY = {"low": 3, "medium": 6, "high": 12}

# Characters XML 1.0 cannot carry at all (control characters, lone surrogates, U+FFFE/U+FFFF).
_NOT_XML = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(text: str) -> str:
    """``text`` made safe for XML character data: markup escaped, characters XML cannot hold dropped."""
    return escape(_NOT_XML.sub("", text))


def make_svg(
    width: int, height: int, *, prompt: str = "", seed: str = "", complexity: str = "high", transparent: bool = False
) -> bytes:
    """A UTF-8 SVG document of ``width`` x ``height`` user units.

    Usage::

        >>> make_svg(64, 32, prompt="A <red> fox")[:38]
        b'<?xml version="1.0" encoding="UTF-8"?>'
    """
    digest = hashlib.sha256(seed.encode("utf-8")).digest()
    stream = hashlib.sha256(digest).digest() * 4  # 128 bytes of shape parameters
    lines: List[str] = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}">',
        f"  <title>{xml_text(prompt)}</title>",
        "  <desc>Drawn by imageprovider's stand-in server; the shapes are placeholders.</desc>",
    ]
    if not transparent:
        lines.append(f'  <rect x="0" y="0" width="{width}" height="{height}" fill="{_colour(digest, 0)}"/>')
    for index in range(SHAPES_BY_COMPLEXITY.get(complexity, SHAPES_BY_COMPLEXITY["high"])):
        a, b, c, d = stream[4 * index : 4 * index + 4]
        x, y = a * width // 255, b * height // 255
        size = max(1, (16 + c) * min(width, height) // 1024)
        fill = quoteattr(_colour(stream, 4 * index + 1))
        kind = d % 3
        if kind == 0:
            lines.append(f'  <circle cx="{x}" cy="{y}" r="{size}" fill={fill} fill-opacity="0.8"/>')
        elif kind == 1:
            lines.append(f'  <rect x="{x}" y="{y}" width="{size * 2}" height="{size}" fill={fill}/>')
        else:
            points = f"{x},{y - size} {x + size},{y + size} {x - size},{y + size}"
            lines.append(f'  <polygon points="{points}" fill={fill} stroke="#000000" stroke-width="2"/>')
    lines.append("</svg>")
    return ("\n".join(lines) + "\n").encode("utf-8")


def _colour(data: bytes, offset: int) -> str:
    return f"#{data[offset]:02x}{data[offset + 1]:02x}{data[offset + 2]:02x}"
