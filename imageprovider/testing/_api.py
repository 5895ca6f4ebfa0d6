"""
imageprovider.testing._api
~~~~~~~~~~~~~~~~~~~~~~~~~~

What the stand-in server does with an images request, apart from HTTP:
validate it with the library's own schemas and model rules, then make real
images and the response body or stream events the API would send. Batch
lines go through the same code as live requests.
"""

import base64
import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

from .. import _request, _rules
from .._inputs import ImageFile
from ..exceptions import RequestValidationError
from ..model_specs import get_model_spec
from ._images import DEFAULT_DETAIL_BITS, make_image

__all__ = ["ImagesAPI", "Generated", "UrlStore", "error_body"]

_SCHEMAS = {
    "generations": "create_image_request",
    "edits": "create_image_edit_request",
    "edits-json": "edit_image_body_json_param",
    "variations": "create_image_variation_request",
}
_GPT_ONLY = ("output_format", "output_compression", "background", "moderation", "stream", "partial_images")
_OUTPUT_TOKENS = {"low": 272, "medium": 1056, "high": 4160}
_MIME = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}


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
    """A validated request and the images made for it."""

    endpoint: str
    body: Dict[str, Any]
    model: str
    images: List[bytes]
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
    extra: Dict[str, Any] = field(default_factory=dict)

    @property
    def size(self) -> str:
        """``WIDTHxHEIGHT``."""
        return f"{self.width}x{self.height}"


class ImagesAPI:
    """Validates images requests and builds their answers.

    :param detail_bits: noise bits per channel in generated PNGs (payload size).
    :param url_store: where URL results are kept.
    :param url_for: turns a URL-store token into a full URL.
    :param file_lookup: finds uploaded files for ``file_id`` references.
    """

    def __init__(
        self,
        url_store: UrlStore,
        url_for: Callable[[str, str], str],
        file_lookup: Callable[[str], Optional[bytes]],
        detail_bits: int = DEFAULT_DETAIL_BITS,
    ) -> None:
        self.url_store = url_store
        self.url_for = url_for
        self.file_lookup = file_lookup
        self.detail_bits = detail_bits

    # -- validation ------------------------------------------------------

    def prepare(
        self, endpoint: str, params: Dict[str, Any], files: Optional[Dict[str, List[Tuple[str, bytes, str]]]] = None
    ) -> Generated:
        """Validate a request and make its images.

        :param endpoint: ``generations``, ``edits`` or ``variations``.
        :param params: the JSON body, or the multipart text fields (typed).
        :param files: multipart file parts by field name, or ``None`` for a JSON body.
        :raises RequestValidationError: as the API would refuse it, naming the param.
        """
        form = "edits-json" if endpoint == "edits" and files is None else endpoint
        params = dict(params)
        if not params.get("model"):
            params["model"] = _default_model(endpoint, params)
        body = _request.build_body(_SCHEMAS[form], params)
        _request.check_form(_SCHEMAS[form], endpoint, body)
        _request.check_model_rules(body, endpoint)
        inputs: List[ImageFile] = []
        if form == "edits-json":
            inputs = self._referenced(body)
        elif files is not None:
            inputs = self._uploaded(endpoint, body, files)
        return self._generate(endpoint, body, inputs)

    def _uploaded(
        self, endpoint: str, body: Dict[str, Any], files: Dict[str, List[Tuple[str, bytes, str]]]
    ) -> List[ImageFile]:
        spec = get_model_spec(body["model"])
        if endpoint == "variations":
            images = files.get("image", [])
            if len(images) != 1:
                raise RequestValidationError("Exactly one 'image' file is required", param="image")
            loaded, _ = _request.load_inputs("image", images, None, spec)
            return loaded
        single, several = files.get("image", []), files.get("image[]", [])
        if len(single) > 1:
            raise RequestValidationError(
                "Duplicate parameter: 'image'. To send several images, use the array syntax instead, "
                "e.g. 'image[]=<value>'.",
                param="image",
            )
        if single and several:
            raise RequestValidationError("Send either 'image' or 'image[]', not both", param="image")
        masks = files.get("mask", [])
        if len(masks) > 1:
            raise RequestValidationError("Only one 'mask' file is allowed", param="mask")
        loaded, _ = _request.load_inputs("image", single or several, masks[0] if masks else None, spec)
        return loaded

    def _referenced(self, body: Dict[str, Any]) -> List[ImageFile]:
        refs = list(body["images"]) + ([body["mask"]] if body.get("mask") else [])
        loaded: List[ImageFile] = []
        for index, ref in enumerate(refs):
            param = "images" if index < len(body["images"]) else "mask"
            data = self._resolve(ref, param)
            if data is not None:
                loaded.append(_request.load_inputs(param, [data], None, None)[0][0])
        return loaded[: len(body["images"])]

    def _resolve(self, ref: Dict[str, str], param: str) -> Optional[bytes]:
        if "file_id" in ref:
            data = self.file_lookup(ref["file_id"])
            if data is None:
                raise RequestValidationError("No such file: {!r}".format(ref["file_id"]), param=param)
            return data
        url = ref["image_url"]
        if url.startswith("data:"):
            header, _, payload = url.partition(",")
            if ";base64" not in header:
                raise RequestValidationError("Data URLs must be base64-encoded", param=param)
            try:
                return base64.b64decode(payload, validate=True)
            except ValueError:
                raise RequestValidationError("The data URL is not valid base64", param=param) from None
        if not url.startswith(("https://", "http://")):
            raise RequestValidationError("image_url must be an http(s) or data URL", param=param)
        return None  # A remote URL is not fetched by the stand-in.

    # -- answers ---------------------------------------------------------

    def _generate(self, endpoint: str, body: Dict[str, Any], inputs: List[ImageFile]) -> Generated:
        spec = get_model_spec(body["model"])
        gpt = spec is None or spec.default_response == "b64_json"
        width, height = _dimensions(body.get("size"))
        quality = body.get("quality") or "auto"
        if quality == "auto":
            quality = "medium" if gpt else "standard"
        output_format = body.get("output_format") or "png"
        background = "transparent" if body.get("background") == "transparent" else "opaque"
        count = body.get("n") or 1
        seed = str(body.get("prompt", "variation"))
        images = [
            make_image(
                output_format,
                width,
                height,
                seed=f"{seed}#{index}",
                transparent=background == "transparent",
                detail_bits=self.detail_bits,
            )
            for index in range(count)
        ]
        usage = None
        if gpt:
            output_tokens = int(_OUTPUT_TOKENS.get(quality, 1056) * width * height / (1024 * 1024)) * count
            text_tokens = max(1, len(seed) // 4)
            image_tokens = 65 * len(inputs)
            usage = {
                "input_tokens": text_tokens + image_tokens,
                "output_tokens": output_tokens,
                "total_tokens": text_tokens + image_tokens + output_tokens,
                "input_tokens_details": {"text_tokens": text_tokens, "image_tokens": image_tokens},
                "output_tokens_details": {"image_tokens": output_tokens, "text_tokens": 0},
            }
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
                preview = make_image(
                    generated.output_format,
                    generated.width,
                    generated.height,
                    seed="{}#{}#partial{}".format(generated.body.get("prompt"), number, index),
                    transparent=generated.background == "transparent",
                    detail_bits=0,
                )
                yield dict(
                    common,
                    type=prefix + ".partial_image",
                    partial_image_index=index,
                    b64_json=base64.b64encode(preview).decode("ascii"),
                )
            yield dict(
                common,
                type=prefix + ".completed",
                b64_json=base64.b64encode(image).decode("ascii"),
                usage={key: value for key, value in (generated.usage or {}).items() if key != "output_tokens_details"},
            )

    def latency(self, generated_count: int, latency: Any) -> float:
        """Seconds of simulated generation for ``generated_count`` images."""
        if isinstance(latency, (tuple, list)):
            low, high = latency
            # Simulated latency, not a secret.
            return sum(random.uniform(low, high) for _ in range(generated_count))  # noqa: S311 (latency, not a secret)
        return float(latency) * generated_count


def _default_model(endpoint: str, params: Dict[str, Any]) -> str:
    # The API's own defaults: dall-e-2, unless a GPT-only parameter is used.
    if endpoint == "edits":
        return "gpt-image-1.5"
    if endpoint == "generations" and any(params.get(name) is not None for name in _GPT_ONLY):
        return "gpt-image-1.5"
    return "dall-e-2"


def _dimensions(size: Optional[str]) -> Tuple[int, int]:
    # "auto" and an absent size come back square, as the API's usual choice.
    parsed = _rules.parse_size(size) if size else None
    if parsed is not None and parsed[0] > 0 and parsed[1] > 0:
        return parsed
    return 1024, 1024
