"""
imageprovider._inputs
~~~~~~~~~~~~~~~~~~~~~

Turns the ways a caller can hand over an input image -- a path, ``bytes``, a
binary file object, or a ``(filename, bytes, mime_type)`` tuple -- into one
:class:`ImageFile` whose format is known from its bytes, never from its name.
Files given by path are opened and closed here; file objects the caller owns
are read but left open.
"""

import base64
import io
import os
from typing import IO, Any, NamedTuple, Optional, Tuple, Union

from ._imageinfo import EXTENSIONS, ImageInfo, read_image_info
from ._schemas import format_path
from .exceptions import RequestValidationError

#: Anything accepted where an input image is expected.
ImageInput = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, IO[bytes], Tuple[str, bytes, str]]


class ImageFile(NamedTuple):
    """An input image ready to upload."""

    filename: str
    data: bytes
    info: ImageInfo

    @property
    def mime_type(self) -> str:
        """The format sniffed from the bytes."""
        return self.info.mime_type


def _fail(param: str, path: Tuple[Any, ...], message: str) -> RequestValidationError:
    return RequestValidationError(f"Parameter {format_path(path)!r} {message}", param=param, path=path)


def _read_limited(stream: IO[bytes], limit: Optional[int]) -> Any:
    # Reading one byte past the limit tells "too big" without reading a huge file whole.
    return stream.read() if limit is None else stream.read(limit + 1)


def load_image(value: Any, param: str, path: Tuple[Any, ...], max_bytes: Optional[int] = None) -> ImageFile:
    """Read one input image and identify its format.

    :param param: the parameter name used in errors (``"images"``, ``"mask"``, ``"image"``).
    :param path: where the value sits, e.g. ``("images", 2)``.
    :param max_bytes: refuse larger inputs without reading them whole.
    :raises RequestValidationError: unreadable, not PNG/JPEG/WEBP, mislabelled or too large.
    """
    declared: Optional[str] = None
    filename: Optional[str] = None
    if isinstance(value, tuple):
        if (
            len(value) != 3
            or not isinstance(value[0], str)
            or not isinstance(value[1], (bytes, bytearray))
            or not isinstance(value[2], str)
        ):
            raise _fail(param, path, "must be a (filename, bytes, mime_type) tuple")
        filename, data, declared = value[0], bytes(value[1]), value[2]
    elif isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
    elif isinstance(value, (str, os.PathLike)):
        location = os.fspath(value)
        filename = os.path.basename(location)
        try:
            if max_bytes is not None and os.path.getsize(location) > max_bytes:
                raise _fail(
                    param, path, f"({filename!r}) is {os.path.getsize(location):,} bytes; the maximum is {max_bytes:,}"
                )
            with open(location, "rb") as handle:
                # Bounded even here: the file may have grown since it was measured.
                data = handle.read() if max_bytes is None else handle.read(max_bytes + 1)
        except (OSError, ValueError) as exc:  # ValueError: a NUL or an unencodable character in the path
            raise _fail(param, path, f"cannot be read: {exc}") from exc
    elif hasattr(value, "read"):
        if isinstance(value, io.TextIOBase):
            raise _fail(param, path, "is a file opened in text mode; open it with 'rb'")
        try:
            data = _read_limited(value, max_bytes)
        except UnicodeDecodeError as exc:
            raise _fail(param, path, "is a file opened in text mode; open it with 'rb'") from exc
        except (OSError, ValueError) as exc:
            raise _fail(param, path, f"cannot be read: {exc}") from exc
        if not isinstance(data, (bytes, bytearray)):
            raise _fail(param, path, "is a file opened in text mode; open it with 'rb'")
        data = bytes(data)
        name = getattr(value, "name", None)
        filename = os.path.basename(name) if isinstance(name, str) else None
    else:
        raise _fail(
            param,
            path,
            "must be a path, bytes, a binary file object or a (filename, bytes, mime_type) "
            f"tuple, not {type(value).__name__}",
        )
    if max_bytes is not None and len(data) > max_bytes:
        raise _fail(param, path, "({!r}) is larger than {:,} bytes".format(filename or "bytes", max_bytes))
    info = read_image_info(data)
    if info is None:
        raise _fail(
            param,
            path,
            "({!r}) is not a PNG, JPEG or WEBP image (judged by its bytes, not its name)".format(
                filename or f"{len(data)} bytes"
            ),
        )
    if declared is not None and declared.lower().replace("image/jpg", "image/jpeg") != info.mime_type:
        raise _fail(param, path, f"({filename!r}) is declared {declared} but its bytes are {info.mime_type}")
    stem = "image" if not path[1:] else f"image-{path[1]}"
    return ImageFile(filename or stem + EXTENSIONS[info.mime_type], data, info)


#: Longest ``image_url`` the JSON edits endpoint takes (``maxLength`` in its schema).
MAX_IMAGE_URL_CHARS = 20 * 1024 * 1024
#: Largest image whose data URL fits in :data:`MAX_IMAGE_URL_CHARS` (base64 grows it by 4/3).
MAX_DATA_URL_BYTES = (MAX_IMAGE_URL_CHARS - len("data:image/webp;base64,")) // 4 * 3


def image_data_url(image: ImageInput, max_bytes: Optional[int] = None, param: str = "image") -> str:
    """Return ``image`` as a ``data:`` URL, for ``{"image_url": ...}`` references in JSON edits.

    Usage::

        >>> ref = {"image_url": image_data_url("photo.png")}

    :param max_bytes: refuse a larger image without reading it whole; never
        more than :data:`MAX_DATA_URL_BYTES`, whose data URL the API still takes.
    :raises RequestValidationError: the input is unreadable, too large, or not PNG/JPEG/WEBP.
    """
    limit = MAX_DATA_URL_BYTES if max_bytes is None else min(max_bytes, MAX_DATA_URL_BYTES)
    loaded = load_image(image, param, (param,), limit)
    return "data:{};base64,{}".format(loaded.mime_type, base64.b64encode(loaded.data).decode("ascii"))


def image_from_data_url(url: Any, param: str, path: Tuple[Any, ...]) -> Optional[ImageFile]:
    """The image inside a base64 ``data:`` URL, read like any input; ``None`` for another kind of URL.

    :raises RequestValidationError: a data URL that is not base64 of a PNG, JPEG or WEBP image.
    """
    if not isinstance(url, str) or not url[:5].lower() == "data:":
        return None
    header, _, payload = url.partition(",")
    if not header.lower().endswith(";base64"):
        raise _fail(param, path, "is a data URL that is not base64-encoded")
    try:
        data = base64.b64decode(payload, validate=True)
    except ValueError:
        raise _fail(param, path, "is a data URL whose base64 is invalid") from None
    declared = header[len("data:") : -len(";base64")]
    if not declared:
        return load_image(data, param, path)
    return load_image(("data URL", data, declared), param, path)
