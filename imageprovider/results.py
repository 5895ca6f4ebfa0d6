"""
imageprovider.results
~~~~~~~~~~~~~~~~~~~~~

Plain, read-only result objects built from a validated response body: the
images (each with one :class:`ImageSource` saying where its bytes are), token
usage and rate limits. Decoding happens here; saving is delegated to
:mod:`imageprovider._saving` and downloading to the fetcher the provider gives.
"""

import base64
import binascii
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Callable, Dict, List, Mapping, Optional, Tuple

from . import _saving
from ._files import PathLike
from ._imagebody import strict_b64decode
from ._imageinfo import SNIFF_BYTES, sniff_mime_type
from .exceptions import ResponseValidationError

__all__ = [
    "Base64Text",
    "GeneratedImage",
    "ImageResponse",
    "ImageSource",
    "ImageUsage",
    "InlineBytes",
    "InputTokensDetails",
    "OutputTokensDetails",
    "RateLimits",
    "RemoteImage",
    "SavedFile",
    "SvgUsage",
    "sniff_mime_type",
]

#: Downloads ``url`` into a binary stream (the provider supplies one bound to its transport).
Fetcher = Callable[[str, IO[bytes]], object]


# -- where an image's bytes are ----------------------------------------------------------


class ImageSource:
    """Where an image's bytes are: :class:`InlineBytes`, :class:`Base64Text`, :class:`SavedFile` or :class:`RemoteImage`."""


@dataclass(frozen=True)
class InlineBytes(ImageSource):
    """Decoded bytes, in memory (decoded while the response arrived)."""

    data: bytes = field(repr=False)

    def __repr__(self) -> str:
        return f"InlineBytes({len(self.data)} bytes)"


@dataclass(frozen=True)
class Base64Text(ImageSource):
    """Base64 text, decoded on first use (an event of a stream, or an image built by hand)."""

    text: str = field(repr=False)
    _decoded: Dict[str, bytes] = field(default_factory=dict, repr=False, compare=False)

    def decode(self, index: int) -> bytes:
        """The bytes, decoded once.

        :raises ResponseValidationError: the text is not valid base64.
        """
        cached = self._decoded.get("data")
        if cached is None:
            try:
                cached = strict_b64decode(self.text.encode("ascii"))
            except (UnicodeEncodeError, binascii.Error, ValueError) as exc:
                raise ResponseValidationError(
                    f"Image {index} of the response is not valid base64", path=("data", index, "b64_json")
                ) from exc
            self._decoded["data"] = cached
        return cached

    def __repr__(self) -> str:
        return f"Base64Text({len(self.text)} chars)"


@dataclass(frozen=True)
class SavedFile(ImageSource):
    """The file the image was written to as it arrived (``save_to=``)."""

    path: Path


@dataclass(frozen=True)
class RemoteImage(ImageSource):
    """An image known only by its URL; ``fetch(sink)`` downloads it (``None`` without a provider)."""

    url: str
    fetch: Optional[Callable[[IO[bytes]], object]] = field(default=None, repr=False, compare=False)


@dataclass(frozen=True, init=False)
class GeneratedImage:
    """One image of a response: its bytes (inline, in a file, or as base64), a URL, or both.

    Construct with ``GeneratedImage(b64_json=..., url=..., revised_prompt=..., index=...)``.
    """

    #: Where the bytes are; ``None`` for an image with neither data nor a URL.
    source: Optional[ImageSource] = field(repr=False)
    #: A URL valid for 60 minutes (DALL-E with ``response_format="url"``).
    url: Optional[str]
    #: The prompt as rewritten by the model (dall-e-3).
    revised_prompt: Optional[str]
    #: Position in the response's ``data`` list, for error messages.
    index: int
    #: The file stem used when saving into a folder (from the prompt).
    name: str = field(repr=False, compare=False)
    #: What a ``.json`` sidecar says about the image (prompt, model, parameters, usage...).
    metadata: Mapping[str, Any] = field(repr=False, compare=False)

    def __init__(
        self,
        b64_json: Optional[str] = None,
        url: Optional[str] = None,
        revised_prompt: Optional[str] = None,
        index: int = 0,
        *,
        source: Optional[ImageSource] = None,
        name: str = "image",
        metadata: Optional[Mapping[str, Any]] = None,
        fetch: Optional[Fetcher] = None,
    ) -> None:
        if source is None and b64_json is not None:
            source = Base64Text(b64_json)
        if source is None and url is not None:
            source = RemoteImage(url, (lambda sink: fetch(url, sink)) if fetch is not None else None)
        values = {
            "source": source,
            "url": url,
            "revised_prompt": revised_prompt,
            "index": index,
            "name": name,
            "metadata": dict(metadata or {}),
        }
        for key, value in values.items():
            object.__setattr__(self, key, value)

    @property
    def has_data(self) -> bool:
        """Whether the image came inline (base64), as opposed to a URL only."""
        return isinstance(self.source, (InlineBytes, Base64Text, SavedFile))

    @property
    def b64_json(self) -> Optional[str]:
        """The image as base64 text, or ``None`` for a URL-only image.

        Responses are decoded as they arrive and the text is not kept: it is
        re-encoded from the bytes on each access.

        :raises ResponseValidationError: the text this image was built from is not valid base64.
        """
        if isinstance(self.source, Base64Text):
            return self.source.text
        data = self.data
        return base64.b64encode(data).decode("ascii") if data is not None else None

    @property
    def data(self) -> Optional[bytes]:
        """The decoded image bytes, or ``None`` for a URL-only image.

        For an image saved as it arrived (``save_to=``), the bytes are read
        from :attr:`path` on each access.

        :raises ResponseValidationError: the text this image was built from is not valid base64.
        """
        source = self.source
        if isinstance(source, InlineBytes):
            return source.data
        if isinstance(source, SavedFile):
            return source.path.read_bytes()
        if isinstance(source, Base64Text):
            return source.decode(self.index)
        return None

    @property
    def path(self) -> Optional[Path]:
        """The file the image was written to as it arrived (``save_to=``); otherwise ``None``."""
        return self.source.path if isinstance(self.source, SavedFile) else None

    @property
    def mime_type(self) -> Optional[str]:
        """``image/png``, ``image/jpeg``, ``image/webp``, ``image/gif`` or ``image/svg+xml``, sniffed from
        the decoded bytes; ``None`` if unknown."""
        if isinstance(self.source, SavedFile):
            with open(self.source.path, "rb") as handle:
                return sniff_mime_type(handle.read(SNIFF_BYTES))
        data = self.data
        return sniff_mime_type(data) if data is not None else None

    def save(self, path_or_dir: PathLike, *, overwrite: bool = False, metadata: bool = False) -> Path:
        """Write the image to ``path_or_dir`` (a file, or a folder to put it in) and return the path.

        The extension follows the image's bytes: a wrong image suffix is
        replaced, a missing one appended. The write is atomic: an interrupted
        save leaves no file under the final name. URL results are downloaded
        (through the provider's transport and retry policy, without credentials
        for the storage host, up to the provider's size limit).

        :param overwrite: replace an existing file instead of raising ``FileExistsError``.
        :param metadata: also write a ``.json`` sidecar: prompt, revised prompt,
            model, parameters sent, size, usage, request id, created time.
        :raises FileExistsError: the target exists and ``overwrite`` is false.
        :raises ImageExpiredError: a URL result has expired.
        """
        return _saving.save_image(self, path_or_dir, overwrite=overwrite, metadata=metadata)

    def __repr__(self) -> str:
        source = self.source
        if isinstance(source, Base64Text):
            size = f"{len(source.text)} b64 chars"
        elif isinstance(source, InlineBytes):
            size = f"{len(source.data)} bytes"
        elif isinstance(source, SavedFile):
            size = f"saved to {str(source.path)!r}"
        else:
            size = "no inline data"
        return f"GeneratedImage(index={self.index}, {size}, url={self.url!r}, revised_prompt={self.revised_prompt!r})"


@dataclass(frozen=True)
class InputTokensDetails:
    """How the input tokens divide between text and images."""

    text_tokens: Optional[int] = None
    image_tokens: Optional[int] = None


@dataclass(frozen=True)
class OutputTokensDetails:
    """How the output tokens divide between text and images."""

    text_tokens: Optional[int] = None
    image_tokens: Optional[int] = None


@dataclass(frozen=True)
class ImageUsage:
    """Token usage of a GPT image model call."""

    input_tokens: int
    output_tokens: int
    total_tokens: int
    input_tokens_details: Optional[InputTokensDetails] = None
    output_tokens_details: Optional[OutputTokensDetails] = None

    @classmethod
    def from_body(cls, usage: Optional[Mapping[str, Any]]) -> Optional["ImageUsage"]:
        """Build from a validated ``usage`` object; ``None`` stays ``None``."""
        if usage is None:
            return None
        inputs = usage.get("input_tokens_details")
        outputs = usage.get("output_tokens_details")
        return cls(
            input_tokens=usage["input_tokens"],
            output_tokens=usage["output_tokens"],
            total_tokens=usage["total_tokens"],
            input_tokens_details=InputTokensDetails(inputs.get("text_tokens"), inputs.get("image_tokens"))
            if inputs is not None
            else None,
            output_tokens_details=OutputTokensDetails(outputs.get("text_tokens"), outputs.get("image_tokens"))
            if outputs is not None
            else None,
        )


@dataclass(frozen=True)
class SvgUsage:
    """Tokens the SVG model used to turn an image into SVG (``output_format="svg"``), billed at its own rates."""

    input_tokens: Optional[int] = None
    output_tokens: Optional[int] = None
    reasoning_tokens: Optional[int] = None
    total_tokens: Optional[int] = None
    #: The SVG model that did the work.
    model: Optional[str] = None

    @classmethod
    def from_body(cls, usage: Optional[Mapping[str, Any]]) -> Optional["SvgUsage"]:
        """Build from a validated ``svg_usage`` object; ``None`` stays ``None``."""
        if usage is None:
            return None
        return cls(
            input_tokens=usage.get("input_tokens"),
            output_tokens=usage.get("output_tokens"),
            reasoning_tokens=usage.get("reasoning_tokens"),
            total_tokens=usage.get("total_tokens"),
            model=usage.get("model"),
        )


def total_tokens(body: Mapping[str, Any]) -> int:
    """All tokens a response body reports: ``usage`` plus ``svg_usage``."""
    total = 0
    for key in ("usage", "svg_usage"):
        usage = body.get(key)
        if isinstance(usage, Mapping) and isinstance(usage.get("total_tokens"), int):
            total += usage["total_tokens"]
    return total


_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|h|m|s)")
_DURATION = re.compile(r"^(?:[0-9]+(?:\.[0-9]+)?(?:ms|h|m|s))+$")
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def parse_duration(text: Optional[str]) -> Optional[float]:
    """``"6m0s"`` -> ``360.0``, ``"12ms"`` -> ``0.012``, ``"1.5"`` -> ``1.5``; ``None`` if unparsable."""
    if text is None:
        return None
    text = text.strip()
    try:
        value = float(text)
    except ValueError:
        if not _DURATION.match(text):
            return None
        return sum(float(number) * _UNIT_SECONDS[unit] for number, unit in _DURATION_PART.findall(text))
    return value if value >= 0 else None


def parse_count(text: Optional[str]) -> Optional[int]:
    """A rate-limit count header as an int; ``None`` if absent, unparsable or negative."""
    # Azure sends -1 for "unknown"; that is not a count.
    if text is None:
        return None
    try:
        value = int(text.strip())
    except ValueError:
        return None
    return value if value >= 0 else None


@dataclass(frozen=True)
class RateLimits:
    """The ``x-ratelimit-*`` headers of a response; ``None`` where absent or unparsable."""

    limit_requests: Optional[int] = None
    limit_tokens: Optional[int] = None
    remaining_requests: Optional[int] = None
    remaining_tokens: Optional[int] = None
    #: Seconds until the request budget is replenished.
    reset_requests: Optional[float] = None
    #: Seconds until the token budget is replenished.
    reset_tokens: Optional[float] = None

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> "RateLimits":
        """Parse the rate-limit headers (names are case-insensitive)."""
        lowered = {key.lower(): value for key, value in headers.items()}
        return cls(
            limit_requests=parse_count(lowered.get("x-ratelimit-limit-requests")),
            limit_tokens=parse_count(lowered.get("x-ratelimit-limit-tokens")),
            remaining_requests=parse_count(lowered.get("x-ratelimit-remaining-requests")),
            remaining_tokens=parse_count(lowered.get("x-ratelimit-remaining-tokens")),
            reset_requests=parse_duration(lowered.get("x-ratelimit-reset-requests")),
            reset_tokens=parse_duration(lowered.get("x-ratelimit-reset-tokens")),
        )


@dataclass(frozen=True)
class ImageResponse:
    """The result of an images call, independent of the provider that produced it."""

    #: Unix time the images were created.
    created: int
    #: The images, in the order the API returned them.
    images: Tuple[GeneratedImage, ...]
    usage: Optional[ImageUsage]
    size: Optional[str]
    quality: Optional[str]
    output_format: Optional[str]
    background: Optional[str]
    #: The ``x-request-id`` header, for OpenAI support.
    request_id: Optional[str]
    rate_limits: RateLimits
    #: The validated body, with the base64 text of images decoded on arrival left out.
    _body: Dict[str, Any] = field(repr=False, compare=False)
    #: The parameters that were sent (file parts summarised), for records and metadata.
    request: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)
    #: Tokens of the SVG model, for ``output_format="svg"``.
    svg_usage: Optional[SvgUsage] = None

    @property
    def fields(self) -> Dict[str, Any]:
        """The body's fields other than ``data``, as received (``usage``, ``svg_usage``, ``size``...): a new copy.

        Cheap, unlike :attr:`raw`, which rebuilds every image's base64 text.
        """
        return {key: value for key, value in self._body.items() if key != "data"}

    @property
    def raw(self) -> Dict[str, Any]:
        """The validated response body, as received: a new copy on each access.

        Images decoded as they arrived have their ``b64_json`` text rebuilt
        from the bytes, so prefer :attr:`images` for the image data.
        """
        body = dict(self._body)
        data = body.get("data")
        if isinstance(data, list):
            body["data"] = [
                # "" stands where an image was decoded on arrival.
                dict(item, b64_json=image.b64_json)
                if isinstance(item, dict) and item.get("b64_json") == "" and image.has_data
                else item
                for item, image in zip(data, self.images)
            ]
        return body

    @classmethod
    def from_body(
        cls,
        body: Dict[str, Any],
        headers: Optional[Mapping[str, str]] = None,
        request: Optional[Mapping[str, Any]] = None,
        fetch: Optional[Fetcher] = None,
        inline: Optional[Mapping[int, ImageSource]] = None,
    ) -> "ImageResponse":
        """Build from a body that passed ``schemas/images_response.json``.

        :param request: the parameters sent; names saved files and fills sidecar metadata.
        :param fetch: downloads URL results (the provider passes its own).
        :param inline: where the images decoded while the body arrived are, by
            index (their ``b64_json`` in ``body`` is a placeholder).
        """
        inline = inline or {}
        headers = headers or {}
        request = dict(request or {})
        lowered = {key.lower(): value for key, value in headers.items()}
        stem, metadata = _saving.image_metadata(
            request,
            size=body.get("size") or request.get("size"),
            usage=body.get("usage"),
            request_id=lowered.get("x-request-id"),
            created=body["created"],
        )
        names = _saving.image_names(stem, len(body["data"]))
        images = tuple(
            GeneratedImage(
                b64_json=item.get("b64_json"),
                url=item.get("url"),
                revised_prompt=item.get("revised_prompt"),
                index=index,
                source=inline.get(index),
                name=names[index],
                metadata=metadata,
                fetch=fetch,
            )
            for index, item in enumerate(body["data"])
        )
        return cls(
            created=body["created"],
            images=images,
            usage=ImageUsage.from_body(body.get("usage")),
            size=body.get("size"),
            quality=body.get("quality"),
            output_format=body.get("output_format"),
            background=body.get("background"),
            request_id=lowered.get("x-request-id"),
            rate_limits=RateLimits.from_headers(lowered),
            _body=body,
            request=request,
            svg_usage=SvgUsage.from_body(body.get("svg_usage")),
        )

    def save_all(
        self, directory: PathLike, *, stem: Optional[str] = None, overwrite: bool = False, metadata: bool = False
    ) -> List[Path]:
        """Save every image into ``directory`` (created if needed); return the paths in order.

        Files are named from ``stem`` (default: the prompt, sanitised), with
        ``-1``, ``-2``... when there are several, and the extension of their
        bytes. Before anything is written, existing files are checked, so a
        refusal leaves the folder as it was.

        :raises FileExistsError: a target exists and ``overwrite`` is false.
        """
        return _saving.save_all(self, directory, stem=stem, overwrite=overwrite, metadata=metadata)
