"""
imageprovider.results
~~~~~~~~~~~~~~~~~~~~~

Plain, read-only result objects built from a validated response body.
They do no I/O of their own.
"""

import base64
import binascii
import re
from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional, Tuple

from ._imageinfo import sniff_mime_type
from .exceptions import ResponseValidationError

__all__ = [
    "GeneratedImage",
    "ImageResponse",
    "ImageUsage",
    "InputTokensDetails",
    "OutputTokensDetails",
    "RateLimits",
    "sniff_mime_type",
]

@dataclass(frozen=True)
class GeneratedImage:
    """One image of a response: inline base64 data, a URL, or both."""

    #: Base64 text as sent by the API (GPT image models always send it).
    b64_json: Optional[str] = None
    #: A URL valid for 60 minutes (DALL-E with ``response_format="url"``).
    url: Optional[str] = None
    #: The prompt as rewritten by the model (dall-e-3).
    revised_prompt: Optional[str] = None
    #: Position in the response's ``data`` list, for error messages.
    index: int = 0
    _decoded: Dict[str, bytes] = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def data(self) -> Optional[bytes]:
        """The decoded image bytes (decoded on first access), or ``None`` for a URL-only image.

        :raises ResponseValidationError: if ``b64_json`` is not valid base64.
        """
        if self.b64_json is None:
            return None
        cached = self._decoded.get("data")
        if cached is None:
            try:
                cached = base64.b64decode(self.b64_json, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise ResponseValidationError(
                    "Image {} of the response is not valid base64".format(self.index),
                    path=("data", self.index, "b64_json"),
                ) from exc
            self._decoded["data"] = cached
        return cached

    @property
    def mime_type(self) -> Optional[str]:
        """``image/png``, ``image/jpeg`` or ``image/webp``, sniffed from the decoded bytes; ``None`` if unknown."""
        data = self.data
        return sniff_mime_type(data) if data is not None else None

    def __repr__(self) -> str:
        size = "{} b64 chars".format(len(self.b64_json)) if self.b64_json is not None else "no inline data"
        return "GeneratedImage(index={}, {}, url={!r}, revised_prompt={!r})".format(
            self.index, size, self.url, self.revised_prompt)


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
            if inputs is not None else None,
            output_tokens_details=OutputTokensDetails(outputs.get("text_tokens"), outputs.get("image_tokens"))
            if outputs is not None else None,
        )


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


def _parse_count(text: Optional[str]) -> Optional[int]:
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
            limit_requests=_parse_count(lowered.get("x-ratelimit-limit-requests")),
            limit_tokens=_parse_count(lowered.get("x-ratelimit-limit-tokens")),
            remaining_requests=_parse_count(lowered.get("x-ratelimit-remaining-requests")),
            remaining_tokens=_parse_count(lowered.get("x-ratelimit-remaining-tokens")),
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
    #: The validated response body, as received. Treat it as read-only.
    raw: Dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_body(cls, body: Dict[str, Any], headers: Optional[Mapping[str, str]] = None) -> "ImageResponse":
        """Build from a body that passed ``schemas/images_response.json``."""
        headers = headers or {}
        lowered = {key.lower(): value for key, value in headers.items()}
        images = tuple(
            GeneratedImage(
                b64_json=item.get("b64_json"),
                url=item.get("url"),
                revised_prompt=item.get("revised_prompt"),
                index=index,
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
            raw=body,
        )
