"""
imageprovider._multipart
~~~~~~~~~~~~~~~~~~~~~~~~

Encodes multipart/form-data bodies the way the images API expects: text
fields first, in order (booleans as ``true``/``false``, absent ones not sent),
then the file parts, each with the MIME type sniffed from its bytes. One
image goes as the field ``image``, several as repeated ``image[]`` parts.
The body is built once as bytes, so a retry resends exactly the same thing.
"""

import json
import math
from typing import Any, List, Mapping, NamedTuple, Optional, Sequence, Tuple, Union

from urllib3.filepost import encode_multipart_formdata

from ._inputs import ImageFile
from .exceptions import RequestValidationError

Field = Tuple[str, Union[str, Tuple[str, bytes, str]]]


#: Names the file parts use; a text field of the same name would be read as one of them.
FILE_FIELDS = frozenset({"image", "image[]", "mask"})


def text_value(value: Any) -> str:
    """How a parameter is written as a text part.

    :raises ValueError: the value has no text form (not finite, too many digits, not JSON).
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{value!r} is not a finite number")
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def _text_field(key: str, value: Any) -> Field:
    # The JSON endpoints refuse these through their encoder; form data must too,
    # rather than send a renamed field or leak a ValueError.
    if key in FILE_FIELDS:
        raise RequestValidationError(
            f"Parameter {key!r} is the name of a file part; it cannot be a text field", param=key
        )
    if any(char in '"\\\x7f' or char < " " for char in key):
        raise RequestValidationError(f"Parameter {key!r} cannot be a form field name", param=key)
    try:
        text = text_value(value)
        text.encode("utf-8")
        key.encode("utf-8")
    except (ValueError, TypeError) as exc:  # UnicodeEncodeError is a ValueError
        raise RequestValidationError(f"Parameter {key!r} cannot be sent as form data: {exc}", param=key) from None
    return key, text


def image_fields(images: Sequence[ImageFile], field: str = "image") -> List[Field]:
    """File parts for ``images``: the scalar field for one, ``field[]`` repeated for several."""
    name = field if len(images) == 1 else field + "[]"
    return [(name, (image.filename, image.data, image.mime_type)) for image in images]


def encode(
    params: Mapping[str, Any],
    files: Sequence[Field],
    mask: Optional[ImageFile] = None,
    boundary: Optional[str] = None,
) -> Tuple[bytes, str]:
    """Return ``(body, content_type)`` for ``params`` (``None`` values skipped), ``files`` and ``mask``."""
    fields: List[Field] = [_text_field(key, value) for key, value in params.items() if value is not None]
    fields.extend(files)
    if mask is not None:
        fields.append(("mask", (mask.filename, mask.data, mask.mime_type)))
    body, content_type = encode_multipart_formdata(fields, boundary=boundary)
    return body, content_type


class Part(NamedTuple):
    """One part of a multipart body, as read back."""

    name: str
    #: ``None`` for a text field.
    filename: Optional[str]
    content_type: str
    payload: bytes


def parse(content_type: str, body: bytes) -> List[Part]:
    """Read a multipart/form-data ``body`` back into its parts, in order (``[]`` if it is not multipart)."""
    # Imported here: only --dry-run and the stand-in read multipart bodies back.
    import email.parser
    import email.policy

    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    )
    if not message.is_multipart():
        return []
    parts = []
    for part in message.iter_parts():
        payload = part.get_payload(decode=True)
        parts.append(
            Part(
                str(part.get_param("name", header="content-disposition")),
                part.get_filename(),
                part.get_content_type(),
                payload if isinstance(payload, bytes) else b"",
            )
        )
    return parts
