"""
imageprovider.results
~~~~~~~~~~~~~~~~~~~~~

Plain, read-only result objects built from a validated response body.
They do no I/O of their own.
"""

import base64
import binascii
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Callable, Dict, List, Mapping, Optional, Tuple

from . import _files
from ._files import PathLike
from ._imagebody import strict_b64decode
from ._imageinfo import SNIFF_BYTES, sniff_mime_type
from .exceptions import ImageProviderError, ResponseValidationError

#: Downloads ``url`` into a binary stream (the provider supplies one bound to its session).
Fetcher = Callable[[str, IO[bytes]], object]


class InlineImage:
    """An image decoded while its response arrived: in memory, in a file, or invalid."""

    def __init__(
        self,
        data: Optional[bytes] = None,
        path: Optional[Path] = None,
        error: Optional[ResponseValidationError] = None,
        text: Optional[str] = None,
    ) -> None:
        self.data = data
        self.path = path
        self.error = error
        #: The base64 text, when it is kept as received (it is invalid).
        self.text = text


__all__ = [
    "GeneratedImage",
    "ImageResponse",
    "ImageUsage",
    "InputTokensDetails",
    "OutputTokensDetails",
    "RateLimits",
    "SvgUsage",
    "sniff_mime_type",
]


def image_context(
    request: Mapping[str, Any], *, size: Optional[str], usage: Any, request_id: Optional[str], created: Optional[int]
) -> Tuple[str, Dict[str, Any]]:
    """The file stem (from the prompt) and the sidecar metadata of an image made for ``request``."""
    prompt = request.get("prompt")
    stem = request_stem(request)
    return stem, {
        "stem": stem,
        "prompt": prompt,
        "model": request.get("model"),
        "parameters": dict(request),
        "size": size,
        "usage": usage,
        "request_id": request_id,
        "created": created,
    }


def request_stem(request: Mapping[str, Any]) -> str:
    """The file stem for images made for ``request``: its prompt, sanitised (``image`` without one)."""
    prompt = request.get("prompt")
    return _files.safe_stem(prompt) if isinstance(prompt, str) else "image"


def expected_images(request: Mapping[str, Any]) -> int:
    """How many images ``request`` asks for: its ``n``, or 1."""
    count = request.get("n")
    return count if isinstance(count, int) and not isinstance(count, bool) and count > 0 else 1


def image_names(stem: str, count: int) -> List[str]:
    """File names (without extension) for ``count`` images: ``stem``, or ``stem-1``, ``stem-2``..."""
    return [stem] if count == 1 else [f"{stem}-{index + 1}" for index in range(count)]


def refuse_existing(folder: Path, name: str, mime_type: Optional[str], metadata: bool) -> None:
    """Raise ``FileExistsError`` if saving image ``name`` into ``folder`` would replace a file.

    With ``mime_type`` unknown (a URL result, or an image yet to arrive), any image extension clashes.
    """
    extensions = [_files.EXTENSIONS[mime_type]] if mime_type else sorted(set(_files.EXTENSIONS.values()))
    candidates = [folder / (name + extension) for extension in extensions]
    if metadata:
        candidates.append(folder / (name + ".json"))
    for candidate in candidates:
        _files.refuse_existing_file(candidate)


@dataclass(frozen=True, init=False)
class GeneratedImage:
    """One image of a response: its bytes (inline, or in the file it was saved to), a URL, or both.

    Construct with ``GeneratedImage(b64_json=..., url=..., revised_prompt=..., index=...)``.
    """

    _b64: Optional[str] = field(repr=False)
    #: A URL valid for 60 minutes (DALL-E with ``response_format="url"``).
    url: Optional[str]
    #: The prompt as rewritten by the model (dall-e-3).
    revised_prompt: Optional[str]
    #: Position in the response's ``data`` list, for error messages.
    index: int
    #: The decoded bytes, when they were decoded while the response arrived.
    _data: Optional[bytes] = field(repr=False)
    #: The file the image was written to as it arrived (``save_to=``).
    _path: Optional[Path] = field(repr=False)
    #: Why the inline data is unusable (invalid base64), raised on use.
    _error: Optional[ResponseValidationError] = field(repr=False, compare=False)
    _decoded: Dict[str, bytes] = field(repr=False, compare=False)
    #: File stem for saving (from the prompt), what the sidecar metadata says, and the URL fetcher.
    _stem: str = field(repr=False, compare=False)
    _context: Mapping[str, Any] = field(repr=False, compare=False)
    _fetch: Optional[Fetcher] = field(repr=False, compare=False)

    def __init__(
        self,
        b64_json: Optional[str] = None,
        url: Optional[str] = None,
        revised_prompt: Optional[str] = None,
        index: int = 0,
        *,
        _data: Optional[bytes] = None,
        _path: Optional[Path] = None,
        _error: Optional[ResponseValidationError] = None,
        _stem: str = "image",
        _context: Optional[Mapping[str, Any]] = None,
        _fetch: Optional[Fetcher] = None,
    ) -> None:
        values = {
            "_b64": b64_json,
            "url": url,
            "revised_prompt": revised_prompt,
            "index": index,
            "_data": _data,
            "_path": _path,
            "_error": _error,
            "_decoded": {},
            "_stem": _stem,
            "_context": _context if _context is not None else {},
            "_fetch": _fetch,
        }
        for name, value in values.items():
            object.__setattr__(self, name, value)

    @property
    def has_data(self) -> bool:
        """Whether the image came inline (base64), as opposed to a URL only."""
        return self._b64 is not None or self._data is not None or self._path is not None or self._error is not None

    @property
    def b64_json(self) -> Optional[str]:
        """The image as base64 text, or ``None`` for a URL-only image.

        Responses are decoded as they arrive and the text is not kept: it is
        re-encoded from the bytes on each access.

        :raises ResponseValidationError: the API sent invalid base64.
        """
        if self._b64 is not None:
            return self._b64
        data = self.data
        return base64.b64encode(data).decode("ascii") if data is not None else None

    @property
    def data(self) -> Optional[bytes]:
        """The decoded image bytes, or ``None`` for a URL-only image.

        For an image saved as it arrived (``save_to=``), the bytes are read
        from :attr:`path` on each access.

        :raises ResponseValidationError: the API sent invalid base64.
        """
        if self._error is not None:
            raise self._error
        if self._data is not None:
            return self._data
        if self._path is not None:
            return self._path.read_bytes()
        if self._b64 is None:
            return None
        cached = self._decoded.get("data")
        if cached is None:
            try:
                cached = strict_b64decode(self._b64.encode("ascii"))
            except (UnicodeEncodeError, binascii.Error, ValueError) as exc:
                raise ResponseValidationError(
                    f"Image {self.index} of the response is not valid base64",
                    path=("data", self.index, "b64_json"),
                ) from exc
            self._decoded["data"] = cached
        return cached

    @property
    def path(self) -> Optional[Path]:
        """The file the image was written to as it arrived (``save_to=``); otherwise ``None``."""
        return self._path

    @property
    def mime_type(self) -> Optional[str]:
        """``image/png``, ``image/jpeg``, ``image/webp``, ``image/gif`` or ``image/svg+xml``, sniffed from
        the decoded bytes; ``None`` if unknown."""
        if self._path is not None and self._error is None:
            with open(self._path, "rb") as handle:
                return sniff_mime_type(handle.read(SNIFF_BYTES))
        data = self.data
        return sniff_mime_type(data) if data is not None else None

    def save(self, path_or_dir: PathLike, *, overwrite: bool = False, metadata: bool = False) -> Path:
        """Write the image to ``path_or_dir`` (a file, or a folder to put it in) and return the path.

        The extension follows the image's bytes: a wrong image suffix is
        replaced, a missing one appended. The write is atomic: an interrupted
        save leaves no file under the final name. URL results are downloaded
        (through the provider's session and retry policy, without credentials
        for the storage host, up to the provider's size limit).

        :param overwrite: replace an existing file instead of raising ``FileExistsError``.
        :param metadata: also write a ``.json`` sidecar: prompt, revised prompt,
            model, parameters sent, size, usage, request id, created time.
        :raises FileExistsError: the target exists and ``overwrite`` is false.
        :raises ImageExpiredError: a URL result has expired.
        """
        if self.has_data:
            data = self.data or b""
            mime_type = sniff_mime_type(data)
            if mime_type is None:
                raise ResponseValidationError(f"Image {self.index} is not {_files.FORMAT_NAMES}; not saving it")
            target = _files.resolve_target(path_or_dir, self._stem, _files.EXTENSIONS[mime_type])
            _files.ensure_folder(target.parent)
            saved = _files.write_atomic(target, data, overwrite=overwrite)
        elif self.url is not None:
            saved = self._download(path_or_dir, overwrite)
        else:  # pragma: no cover - the response schema requires one of the two
            raise ResponseValidationError(f"Image {self.index} has neither data nor a URL")
        if metadata:
            self._write_metadata(saved, overwrite)
        return saved

    def _download(self, path_or_dir: PathLike, overwrite: bool) -> Path:
        if self._fetch is None:
            raise ImageProviderError("This image has only a URL and no provider to download it with")
        fetch, url = self._fetch, self.url or ""
        # The format is known only once the bytes arrive: download beside the
        # target, then publish under the name the bytes call for.
        probe = _files.resolve_target(path_or_dir, self._stem, ".png")
        _files.ensure_folder(probe.parent)

        def target_for(head: bytes) -> Path:
            mime_type = sniff_mime_type(head)
            if mime_type is None:
                raise ResponseValidationError(
                    f"The image downloaded from the URL of image {self.index} is not {_files.FORMAT_NAMES}; not saving it"
                )
            return _files.resolve_target(path_or_dir, self._stem, _files.EXTENSIONS[mime_type])

        return _files.write_atomic_sniffed(
            probe.parent, lambda stream: fetch(url, stream), target_for, overwrite=overwrite
        )

    def _write_metadata(self, saved: Path, overwrite: bool) -> Path:
        document = {key: value for key, value in self._context.items() if key != "stem"}
        document.update(file=saved.name, index=self.index, revised_prompt=self.revised_prompt, url=self.url)
        text = json.dumps(document, indent=2, sort_keys=True, default=str).encode("utf-8")
        return _files.write_atomic(saved.with_suffix(".json"), text, overwrite=overwrite)

    def __repr__(self) -> str:
        if self._error is not None:
            size = "invalid base64"
        elif self._b64 is not None:
            size = f"{len(self._b64)} b64 chars"
        elif self._data is not None:
            size = f"{len(self._data)} bytes"
        elif self._path is not None:
            size = f"saved to {str(self._path)!r}"
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
                if isinstance(item, dict) and item.get("b64_json") == "" and image._error is None
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
        inline: Optional[Mapping[int, "InlineImage"]] = None,
    ) -> "ImageResponse":
        """Build from a body that passed ``schemas/images_response.json``.

        :param request: the parameters sent; names saved files and fills sidecar metadata.
        :param fetch: downloads URL results (the provider passes its own).
        :param inline: images decoded while the body arrived, by index; their
            ``b64_json`` in ``body`` is a placeholder.
        """
        inline = inline or {}
        headers = headers or {}
        request = dict(request or {})
        lowered = {key.lower(): value for key, value in headers.items()}
        stem, context = image_context(
            request,
            size=body.get("size") or request.get("size"),
            usage=body.get("usage"),
            request_id=lowered.get("x-request-id"),
            created=body["created"],
        )
        names = image_names(stem, len(body["data"]))
        images = tuple(
            GeneratedImage(
                b64_json=item.get("b64_json") if index not in inline else inline[index].text,
                url=item.get("url"),
                revised_prompt=item.get("revised_prompt"),
                index=index,
                _data=inline[index].data if index in inline else None,
                _path=inline[index].path if index in inline else None,
                _error=inline[index].error if index in inline else None,
                _stem=names[index],
                _context=context,
                _fetch=fetch,
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
        folder = Path(os.fspath(directory))
        _files.ensure_folder(folder)
        base = _files.safe_stem(stem) if stem is not None else str(self.images[0]._context.get("stem", "image"))
        names = image_names(base, len(self.images))
        if not overwrite:
            for image, name in zip(self.images, names):
                refuse_existing(folder, name, image.mime_type, metadata)
        return [
            image.save(folder / name, overwrite=overwrite, metadata=metadata) for image, name in zip(self.images, names)
        ]
