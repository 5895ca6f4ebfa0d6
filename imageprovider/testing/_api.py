"""
imageprovider.testing._api
~~~~~~~~~~~~~~~~~~~~~~~~~~

What the stand-in server does with an images request, apart from HTTP:
check it with the stand-in's own rules (:mod:`._rules`, independent of the
client's), then make real images (PNG, JPEG, WEBP, animated GIF, SVG) and the
response body or stream events the API would send. Batch lines go through
the same code as live requests.
"""

import base64
import datetime
import math
import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Tuple

from . import _rules
from ._gif import make_gif
from ._images import DEFAULT_DETAIL_BITS, make_image
from ._rules import APIError, ModelRule, UploadedImage
from ._svg import make_svg

__all__ = ["APIError", "ImagesAPI", "Generated", "UrlStore", "error_body", "new_request_id"]

_MIME = {
    "png": "image/png",
    "jpeg": "image/jpeg",
    "webp": "image/webp",
    "gif": "image/gif",
    "svg": "image/svg+xml",
}
#: Output image tokens of the gpt-image-1 family at its three sizes (§10, A).
_GPT_IMAGE_1_TOKENS = {
    (1024, 1024): {"low": 272, "medium": 1056, "high": 4160},
    (1024, 1536): {"low": 408, "medium": 1584, "high": 6240},
    (1536, 1024): {"low": 400, "medium": 1568, "high": 6208},
}
#: ``q`` of the gpt-image-2 token formula per quality (§10: B/C for 2, C for 2.5; 2.6 assumed as 2.5).
_QUALITY_FACTORS = {
    "gpt-image-2": {"low": 16, "medium": 48, "high": 96},
    "gpt-image-2.5": {"low": 16, "medium": 24, "high": 48, "xhigh": 64, "max": 96},
}
#: Reasoning tokens the SVG model spends per ``svg.reasoning.effort`` (a stand-in's choice).
_REASONING_TOKENS = {"minimal": 0, "low": 256, "medium": 1024, "high": 4096}
#: Image tokens counted per input image.
_INPUT_IMAGE_TOKENS = 65
#: Multipart file fields per endpoint.
_FILE_FIELDS = {"edits": ("image", "image[]", "mask"), "variations": ("image",)}

Files = Dict[str, List[Tuple[str, bytes, str]]]


def error_body(
    message: str,
    param: Optional[str] = None,
    code: Optional[str] = "invalid_value",
    type: str = "invalid_request_error",
) -> Dict[str, Any]:
    """An error body in the API's shape."""
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


def new_request_id() -> str:
    """An ``x-request-id`` value."""
    return "req_" + uuid.uuid4().hex[:24]


def utc_today() -> datetime.date:
    """Today's date in UTC, the stand-in's default clock."""
    return datetime.datetime.now(datetime.timezone.utc).date()


class UrlStore:
    """Images served by URL (DALL-E ``response_format=url``) until they expire."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._items: Dict[str, Tuple[bytes, str, float]] = {}
        self._lock = threading.Lock()

    def add(self, data: bytes, mime_type: str) -> str:
        """Keep ``data``; return the token naming it."""
        token = uuid.uuid4().hex
        with self._lock:
            self._items[token] = (data, mime_type, time.monotonic())
        return token

    def get(self, token: str) -> Optional[Tuple[bytes, str, bool]]:
        """``(data, mime_type, expired)``, or ``None`` for an unknown token."""
        with self._lock:
            item = self._items.get(token)
        if item is None:
            return None
        data, mime_type, created = item
        return data, mime_type, time.monotonic() - created > self.ttl


@dataclass
class Generated:
    """A checked request and the images made for it."""

    endpoint: str
    body: Dict[str, Any]
    model: str
    images: List[bytes]
    #: One image's (one GIF frame's) size.
    width: int
    height: int
    quality: str
    output_format: str
    background: str
    stream: bool
    partial_images: int
    gpt: bool
    usage: Optional[Dict[str, Any]]
    response_format: str
    detail_bits: int = DEFAULT_DETAIL_BITS
    #: ``svg_usage`` of an SVG answer.
    svg_usage: Optional[Dict[str, Any]] = None
    extra: Dict[str, Any] = field(default_factory=dict)

    @property
    def size(self) -> str:
        """``WIDTHxHEIGHT``."""
        return f"{self.width}x{self.height}"


class ImagesAPI:
    """Checks images requests and builds their answers.

    :param url_store: where URL results are kept.
    :param url_for: turns a URL-store token into a full URL.
    :param file_lookup: finds uploaded files for ``file_id`` references.
    :param detail_bits: noise bits per channel in generated PNGs (payload size).
    :param today: the stand-in's clock, for shutdown dates.
    """

    def __init__(
        self,
        url_store: UrlStore,
        url_for: Callable[[str, str], str],
        file_lookup: Callable[[str], Optional[bytes]],
        detail_bits: int = DEFAULT_DETAIL_BITS,
        today: Callable[[], datetime.date] = utc_today,
    ) -> None:
        self.url_store = url_store
        self.url_for = url_for
        self.file_lookup = file_lookup
        self.detail_bits = detail_bits
        self.today = today

    # -- checks ------------------------------------------------------------

    def prepare(
        self,
        endpoint: str,
        params: Mapping[str, Any],
        files: Optional[Files] = None,
        *,
        shutdowns: bool = True,
    ) -> Generated:
        """Check a request and make its images.

        :param endpoint: ``generations``, ``edits`` or ``variations``.
        :param params: the JSON body, or the multipart text fields (typed).
        :param files: multipart file parts by field name, or ``None`` for a JSON body.
        :param shutdowns: refuse shut-down models (not on Azure paths).
        :raises APIError: as the API would refuse it: 404 for a shut-down model, else 400 naming the param.
        """
        if not isinstance(params, Mapping):
            raise APIError("The request body must be a JSON object or a multipart form.", None)
        form = "edits-json" if endpoint == "edits" and files is None else endpoint
        body = dict(params)
        if not body.get("model"):
            body["model"] = _rules.default_model(endpoint, body)
        rule = _rules.check_body(endpoint, form, body, self.today(), shutdowns=shutdowns)
        inputs = 0
        if form == "edits-json":
            inputs = self._check_references(rule, body)
        elif files is not None:
            inputs = self._check_uploads(rule, endpoint, files, body.get("output_format"))
        return self._generate(endpoint, body, rule, inputs)

    def _check_uploads(self, rule: Optional[ModelRule], endpoint: str, files: Files, output_format: Any) -> int:
        for name in sorted(files):
            if name not in _FILE_FIELDS[endpoint]:
                raise APIError(f"Unknown parameter: '{name}'.", name, "unknown_parameter")
        single, several = files.get("image", []), files.get("image[]", [])
        if endpoint == "edits" and len(single) > 1:
            raise APIError(
                "Duplicate parameter: 'image'. You provided multiple values for this parameter, whereas only one is "
                "allowed. If you are trying to provide a list of values, use the array syntax instead e.g. "
                "'image[]=<value>'.",
                "image",
                "duplicate_parameter",
            )
        if single and several:
            raise APIError("Send either 'image' or 'image[]', not both.", "image")
        if endpoint == "variations" and len(single) > 1:
            raise APIError("Only one 'image' file is taken.", "image")
        masks = files.get("mask", [])
        if len(masks) > 1:
            raise APIError("Duplicate parameter: 'mask'.", "mask", "duplicate_parameter")
        images: List[Optional[UploadedImage]] = [
            UploadedImage(data, content_type) for _, data, content_type in single or several
        ]
        mask = UploadedImage(masks[0][1], masks[0][2]) if masks else None
        return len(_rules.check_inputs(rule, "image", images, mask, output_format=output_format))

    def _check_references(self, rule: Optional[ModelRule], body: Mapping[str, Any]) -> int:
        images = [self._resolve(ref, "images") for ref in body["images"]]
        mask = self._resolve(body["mask"], "mask") if body.get("mask") else None
        markup = self._resolve(body["markup"], "markup") if body.get("markup") else None
        return len(_rules.check_inputs(rule, "images", images, mask, markup))

    def _resolve(self, ref: Mapping[str, str], param: str) -> Optional[UploadedImage]:
        """The bytes behind an image reference; ``None`` for a remote URL (not fetched)."""
        if "file_id" in ref:
            data = self.file_lookup(ref["file_id"])
            if data is None:
                raise APIError("No such file: '{}'.".format(ref["file_id"]), param)
            return UploadedImage(data)
        url = ref["image_url"]
        if url.startswith("data:"):
            header, _, payload = url.partition(",")
            if ";base64" not in header:
                raise APIError(f"Invalid '{param}': data URLs must be base64-encoded.", param)
            try:
                return UploadedImage(base64.b64decode(payload, validate=True))
            except ValueError:
                raise APIError(f"Invalid '{param}': the data URL is not valid base64.", param) from None
        if not url.startswith(("https://", "http://")):
            raise APIError(f"Invalid '{param}': image_url must be an http(s) URL or a data URL.", param)
        return None

    # -- answers ---------------------------------------------------------

    def _generate(self, endpoint: str, body: Dict[str, Any], rule: Optional[ModelRule], inputs: int) -> Generated:
        gpt = rule is None or not rule.returns_url
        width, height = _dimensions(body.get("size"))
        quality = body.get("quality") or "auto"
        if quality == "auto":
            quality = "medium" if gpt else "standard"
        output_format = body.get("output_format") or "png"
        if output_format not in _MIME:
            raise APIError(f"The stand-in server cannot make '{output_format}' images.", "output_format")
        background = "transparent" if body.get("background") == "transparent" else "opaque"
        count = body.get("n") or 1
        seed = str(body.get("prompt", "variation"))
        frames = body.get("frame_count") or _rules.DEFAULT_FRAME_COUNT
        images = [
            self._image(body, output_format, width, height, f"{seed}#{index}", background == "transparent")
            for index in range(count)
        ]
        usage = None
        if gpt:
            per_image = _output_tokens(rule, quality, width, height)
            if output_format == "gif":
                per_image *= frames
            output_tokens = per_image * count
            text_tokens = max(1, len(seed) // 4)
            image_tokens = _INPUT_IMAGE_TOKENS * inputs
            usage = {
                "input_tokens": text_tokens + image_tokens,
                "output_tokens": output_tokens,
                "total_tokens": text_tokens + image_tokens + output_tokens,
                "input_tokens_details": {"text_tokens": text_tokens, "image_tokens": image_tokens},
            }
        svg_usage = _svg_usage(body, images) if output_format == "svg" else None
        response_format = "b64_json" if gpt else (body.get("response_format") or "url")
        return Generated(
            endpoint=endpoint,
            body=body,
            model=body["model"],
            images=images,
            width=width,
            height=height,
            quality=quality,
            output_format=output_format,
            background=background,
            stream=bool(body.get("stream")),
            partial_images=body.get("partial_images") or 0,
            gpt=gpt,
            usage=usage,
            response_format=response_format,
            detail_bits=self.detail_bits,
            svg_usage=svg_usage,
        )

    def _image(
        self,
        body: Mapping[str, Any],
        output_format: str,
        width: int,
        height: int,
        seed: str,
        transparent: bool,
        detail_bits: Optional[int] = None,
        complexity: Optional[str] = None,
    ) -> bytes:
        if output_format == "gif":
            return make_gif(
                width,
                height,
                frame_count=body.get("frame_count") or _rules.DEFAULT_FRAME_COUNT,
                frame_duration_ms=body.get("frame_duration_ms") or _rules.DEFAULT_FRAME_DURATION_MS,
                seed=seed,
                transparent=transparent,
            )
        if output_format == "svg":
            return make_svg(
                width,
                height,
                prompt=str(body.get("prompt", "")),
                seed=seed,
                complexity=complexity or body.get("complexity") or "high",
                transparent=transparent,
            )
        return make_image(
            output_format,
            width,
            height,
            seed=seed,
            transparent=transparent,
            detail_bits=self.detail_bits if detail_bits is None else detail_bits,
        )

    def json_body(self, generated: Generated) -> Dict[str, Any]:
        """The ``ImagesResponse`` body for a non-streaming request."""
        data = []
        for image in generated.images:
            if generated.response_format == "url":
                token = self.url_store.add(image, _MIME[generated.output_format])
                item: Dict[str, Any] = {"url": self.url_for(token, generated.output_format)}
            else:
                item = {"b64_json": base64.b64encode(image).decode("ascii")}
            if generated.model == "dall-e-3":
                item["revised_prompt"] = "A detailed rendering of: " + str(generated.body.get("prompt"))
            data.append(item)
        body: Dict[str, Any] = {"created": int(time.time()), "data": data}
        if generated.gpt:
            body.update(
                background=generated.background,
                output_format=generated.output_format,
                size=generated.size,
                quality=generated.quality,
                usage=generated.usage,
            )
        if generated.svg_usage is not None:
            body["svg_usage"] = generated.svg_usage
        return body

    def events(self, generated: Generated) -> Iterator[Dict[str, Any]]:
        """The stream events: partial images, then one completed event per image."""
        prefix = "image_generation" if generated.endpoint == "generations" else "image_edit"
        common = {
            "created_at": int(time.time()),
            "size": generated.size,
            "quality": generated.quality,
            "background": generated.background,
            "output_format": generated.output_format,
        }
        for number, image in enumerate(generated.images):
            for index in range(generated.partial_images):
                preview = self._image(
                    generated.body,
                    generated.output_format,
                    generated.width,
                    generated.height,
                    "{}#{}#partial{}".format(generated.body.get("prompt"), number, index),
                    generated.background == "transparent",
                    detail_bits=0,
                    complexity="low",
                )
                yield dict(
                    common,
                    type=prefix + ".partial_image",
                    partial_image_index=index,
                    b64_json=base64.b64encode(preview).decode("ascii"),
                )
            completed = dict(
                common,
                type=prefix + ".completed",
                b64_json=base64.b64encode(image).decode("ascii"),
                usage=generated.usage,
            )
            if generated.svg_usage is not None:
                completed["svg_usage"] = generated.svg_usage
            yield completed

    def latency(self, generated_count: int, latency: Any) -> float:
        """Seconds of simulated generation for ``generated_count`` images."""
        if isinstance(latency, (tuple, list)):
            low, high = latency
            # Simulated latency, not a secret.
            return sum(random.uniform(low, high) for _ in range(generated_count))  # noqa: S311 (latency, not a secret)
        return float(latency) * generated_count


def _dimensions(size: Any) -> Tuple[int, int]:
    # "auto" and an absent size come back square, as the API's usual choice.
    parsed = _rules.parse_size(size)
    if parsed is not None and parsed[0] > 0 and parsed[1] > 0:
        return parsed
    return 1024, 1024


def _output_tokens(rule: Optional[ModelRule], quality: str, width: int, height: int) -> int:
    """Output image tokens of one image (§10)."""
    family = rule.family if rule is not None else "gpt-image-2"
    if family == "gpt-image-1":
        table = _GPT_IMAGE_1_TOKENS.get((width, height), _GPT_IMAGE_1_TOKENS[(1024, 1024)])
        return table.get(quality, table["medium"])
    factors = _QUALITY_FACTORS["gpt-image-2" if family == "gpt-image-2" else "gpt-image-2.5"]
    q = factors.get(quality, factors["medium"])
    long, short = max(width, height), min(width, height)
    f = (2 * q * short + long) // (2 * long)
    return math.ceil(q * f * (2_000_000 + width * height) / 4_000_000)


def _svg_usage(body: Mapping[str, Any], images: List[bytes]) -> Dict[str, Any]:
    """``svg_usage``: the SVG model's own tokens; ``output_tokens`` includes the reasoning tokens."""
    svg = body.get("svg") or {}
    reasoning = svg.get("reasoning") or {}
    effort = reasoning.get("effort") if isinstance(reasoning, Mapping) else None
    reasoning_tokens = _REASONING_TOKENS.get(str(effort), _REASONING_TOKENS["medium"])
    input_tokens = max(1, len(str(body.get("prompt", ""))) // 4) + 85  # the prompt and the reference image
    output_tokens = sum(len(image) for image in images) // 4 + reasoning_tokens
    return {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "reasoning_tokens": reasoning_tokens,
        "total_tokens": input_tokens + output_tokens,
        "model": svg.get("model"),
    }
