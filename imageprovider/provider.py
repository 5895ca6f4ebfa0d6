"""
imageprovider.provider
~~~~~~~~~~~~~~~~~~~~~~

:class:`OpenAIImageProvider` owns the configuration and one HTTP session.
Each call builds its body from parameters, checks it (JSON Schema, then the
model's rules), sends it through the transport, validates the response body
and returns a plain :class:`~imageprovider.results.ImageResponse`.
"""

import logging
import sys
from types import TracebackType
from typing import IO, AbstractSet, Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Type, cast
from urllib.parse import quote

import requests

from . import _multipart, _request
from .__version__ import __version__
from ._config import Settings, TimeoutArg, check_extra_headers, resolve_settings, resolve_timeout
from ._files import PathLike
from ._imagebody import Extracted, ImageBodyScanner, MemorySink
from ._inputs import ImageInput
from ._retry import DEFAULT_MAX_RETRY_AFTER, make_retry
from ._rules import ClockArg, ModelRules, as_clock
from ._saveto import FolderSaver
from ._transport import Transport
from .exceptions import ConfigurationError, RequestValidationError
from .model_specs import ModelTable, builtin_table, load_overlay
from .results import ImageResponse, InlineImage
from .streaming import ImageStream, check_event_stream

log = logging.getLogger("imageprovider")

_PYTHON_VERSION = "{}.{}.{}".format(*sys.version_info[:3])

#: Endpoints OpenAI's Batch API runs for images (JSON bodies only).
BATCH_ENDPOINTS = ("/v1/images/generations", "/v1/images/edits")

#: The API parameters generate_image, edit_image and create_variation take as
#: keywords, besides their prompt, input images and mask: what the command line
#: and batch items may set. (A test holds them to the signatures.)
GENERATION_PARAMETERS = (
    "model",
    "n",
    "size",
    "quality",
    "background",
    "output_format",
    "output_compression",
    "moderation",
    "style",
    "response_format",
    "complexity",
    "frame_count",
    "frame_duration_ms",
    "svg",
    "user",
    "safety_identifier",
)
EDIT_PARAMETERS = (
    "model",
    "n",
    "size",
    "quality",
    "background",
    "output_format",
    "output_compression",
    "input_fidelity",
    "response_format",
    "complexity",
    "frame_count",
    "frame_duration_ms",
    "user",
    "safety_identifier",
)
VARIATION_PARAMETERS = ("model", "n", "size", "response_format", "user")

#: Largest image downloaded from a URL result, by default.
DEFAULT_MAX_DOWNLOAD_BYTES = 64 * 1024 * 1024


def user_agent() -> str:
    """The ``User-Agent`` sent with every request."""
    return f"imageprovider/{__version__} (Python {_PYTHON_VERSION}; requests {requests.__version__})"


class OpenAIImageProvider:
    """A client for OpenAI's images API (and servers compatible with it).

    Settings come from the arguments, else the environment (``OPENAI_API_KEY``,
    ``OPENAI_BASE_URL``, ``OPENAI_ORG_ID``, ``OPENAI_PROJECT_ID``,
    ``IMAGEPROVIDER_MODEL``), else the INI config file (``IMAGEPROVIDER_CONFIG``
    or the per-user one).

    Usage::

        >>> from imageprovider import OpenAIImageProvider
        >>> with OpenAIImageProvider() as provider:
        ...     result = provider.generate_image("A lighthouse at dusk", size="1536x1024")
        ...     png_bytes = result.images[0].data

    :param api_key: (optional) the API key; better kept in the environment or config file.
    :param base_url: (optional) API root, default ``https://api.openai.com/v1``.
    :param organization: (optional) sent as ``OpenAI-Organization``.
    :param project: (optional) sent as ``OpenAI-Project``.
    :param timeout: (optional) a number (the read timeout, in seconds) or a
        ``(connect, read)`` pair; default ``(5, 600)``.
    :param max_retries: (optional) retries after the first attempt, default 2.
    :param default_model: (optional) the model used when a call names none,
        default :data:`~imageprovider.model_specs.DEFAULT_MODEL`.
    :param max_retry_after: longest server-requested wait honoured, in seconds (default 60).
    :param retry_read_timeouts: also retry read timeouts and connections
        dropped after sending, at the risk of paying twice (default ``False``).
    :param check_model_rules: apply the per-model rules before sending
        (default ``True``); turn off for servers whose models differ.
    :param allow_insecure_http: allow plain ``http://`` to a host other than loopback.
    :param config_file: (optional) INI file to read instead of the default one.
    :param extra_headers: (optional) headers added to every API request, for
        compatible servers and gateways; treated as secrets in errors and logs.
    :param max_download_bytes: largest image downloaded from a URL result (default 64 MiB).
    :param models_file: (optional) a JSON overlay of model table entries merged
        over the built-in table; default ``IMAGEPROVIDER_MODELS``, then
        ``models_file`` in the config file.
    :param clock: (optional) today's date for shutdown dates: a ``datetime.date``,
        or a callable returning one; default today in UTC. For tests.
    :raises ConfigurationError: no API key anywhere, an unusable setting, or a bad models file.
    """

    def __init__(
        self,
        api_key: Optional[str] = None,
        *,
        base_url: Optional[str] = None,
        organization: Optional[str] = None,
        project: Optional[str] = None,
        timeout: TimeoutArg = None,
        max_retries: Optional[int] = None,
        default_model: Optional[str] = None,
        max_retry_after: float = DEFAULT_MAX_RETRY_AFTER,
        retry_read_timeouts: bool = False,
        check_model_rules: bool = True,
        allow_insecure_http: bool = False,
        config_file: Optional[str] = None,
        extra_headers: Optional[Mapping[str, str]] = None,
        max_download_bytes: int = DEFAULT_MAX_DOWNLOAD_BYTES,
        models_file: Optional[str] = None,
        clock: ClockArg = None,
    ) -> None:
        settings = resolve_settings(
            api_key=api_key,
            base_url=base_url,
            organization=organization,
            project=project,
            default_model=default_model,
            timeout=timeout,
            max_retries=max_retries,
            max_retry_after=max_retry_after,
            retry_read_timeouts=retry_read_timeouts,
            check_model_rules=check_model_rules,
            allow_insecure_http=allow_insecure_http,
            config_file=config_file,
            models_file=models_file,
        )
        credentials = {"Authorization": "Bearer " + settings.api_key}
        if settings.organization:
            credentials["OpenAI-Organization"] = settings.organization
        if settings.project:
            credentials["OpenAI-Project"] = settings.project
        self._connect(
            settings,
            credentials,
            (settings.api_key,),
            extra_headers,
            max_download_bytes=max_download_bytes,
            rules=self._model_rules(settings, clock),
        )

    def _connect(
        self,
        settings: Settings,
        credentials: Mapping[str, str],
        secrets: Sequence[str],
        extra_headers: Optional[Mapping[str, str]],
        token_provider: Optional[Callable[[], str]] = None,
        max_download_bytes: int = DEFAULT_MAX_DOWNLOAD_BYTES,
        rules: Optional[ModelRules] = None,
    ) -> None:
        """Keep ``settings`` and open the transport; shared with the Azure provider."""
        if isinstance(max_download_bytes, bool) or not isinstance(max_download_bytes, int) or max_download_bytes < 1:
            raise ConfigurationError("max_download_bytes must be a positive whole number of bytes")
        self.settings: Settings = settings
        self._rules = rules if rules is not None else self._model_rules(settings, None)
        self.max_download_bytes = max_download_bytes
        extra = check_extra_headers(extra_headers)
        self._transport = Transport(
            base_url=settings.base_url,
            # Extra headers go last so that a gateway's own auth header can replace ours.
            credential_headers={**credentials, **extra},
            user_agent=user_agent(),
            timeout=settings.timeout,
            retry=make_retry(
                settings.max_retries,
                retry_read_timeouts=settings.retry_read_timeouts,
                max_retry_after=settings.max_retry_after,
            ),
            secrets=tuple(secrets) + tuple(extra.values()),
            token_provider=token_provider,
        )

    @staticmethod
    def _model_rules(settings: Settings, clock: ClockArg, shutdowns: bool = True) -> ModelRules:
        table = load_overlay(settings.models_file) if settings.models_file else builtin_table()
        return ModelRules(table, enabled=settings.check_model_rules, shutdowns=shutdowns, clock=as_clock(clock))

    # -- lifecycle -----------------------------------------------------

    def close(self) -> None:
        """Close the HTTP session and its connections. Safe to call twice."""
        self._transport.close()

    def __enter__(self) -> "OpenAIImageProvider":
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        traceback: Optional[TracebackType],
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"OpenAIImageProvider(base_url={self.settings.base_url!r}, default_model={self.settings.default_model!r}, api_key=<redacted>)"

    @property
    def base_url(self) -> str:
        """The API root requests go to."""
        return self.settings.base_url

    @property
    def default_model(self) -> str:
        """The model used when a call names none."""
        return self.settings.default_model

    @property
    def models(self) -> ModelTable:
        """The model table this provider checks requests against (built-in, with any overlay)."""
        return self._rules.table

    # -- endpoints -----------------------------------------------------

    def generate_image(
        self,
        prompt: str,
        *,
        model: Optional[str] = None,
        n: Optional[int] = None,
        size: Optional[str] = None,
        quality: Optional[str] = None,
        background: Optional[str] = None,
        output_format: Optional[str] = None,
        output_compression: Optional[int] = None,
        moderation: Optional[str] = None,
        style: Optional[str] = None,
        response_format: Optional[str] = None,
        complexity: Optional[str] = None,
        frame_count: Optional[int] = None,
        frame_duration_ms: Optional[int] = None,
        svg: Optional[Mapping[str, Any]] = None,
        user: Optional[str] = None,
        safety_identifier: Optional[str] = None,
        extra_body: Optional[Mapping[str, Any]] = None,
        timeout: TimeoutArg = None,
        save_to: Optional[PathLike] = None,
        overwrite: bool = False,
        metadata: bool = False,
    ) -> ImageResponse:
        """Create images from a text prompt (``POST /images/generations``).

        Parameters left as ``None`` are not sent; ``model`` always is. The
        body is checked against ``schemas/create_image_request.json`` and the
        model's rules before anything is sent.

        :param prompt: what to draw.
        :param model: default :attr:`default_model`.
        :param complexity: ``low``, ``medium`` or ``high`` (gpt-image-2.6).
        :param frame_count: frames of an animated GIF (``output_format="gif"``); ``size`` is one frame's.
        :param frame_duration_ms: how long each GIF frame shows, in milliseconds.
        :param svg: for ``output_format="svg"``: ``{"model": ..., "reasoning": {"effort": ...}}``.
        :param safety_identifier: a stable id of your end user, for OpenAI's abuse monitoring.
        :param extra_body: extra JSON fields, sent as given: type-checked when
            the schema knows them, never value-checked (for new options and
            compatible servers).
        :param timeout: this call's timeout; see the class docstring.
        :param save_to: a folder to write the images into as they arrive
            (named from the prompt, extension from the bytes), never holding
            the whole response in memory; the returned images are backed by
            their files (:attr:`GeneratedImage.path`). The names are checked
            before anything is sent. Also in :meth:`edit_image`,
            :meth:`edit_image_from_refs` and :meth:`create_variation`.
        :param overwrite: with ``save_to``, replace existing files instead of
            raising ``FileExistsError``.
        :param metadata: with ``save_to``, also write a ``.json`` sidecar per image.
        :raises RequestValidationError: a parameter is invalid (nothing was sent).
        :raises FileExistsError: a ``save_to`` target exists (nothing was sent).
        :raises APIStatusError: the API refused (a subclass by status).
        :raises APIConnectionError: no response could be had.
        :raises ResponseValidationError: the response body is unusable.
        """
        params = {
            "prompt": prompt,
            "model": self._model_for(model, extra_body),
            "n": n,
            "size": size,
            "quality": quality,
            "background": background,
            "output_format": output_format,
            "output_compression": output_compression,
            "moderation": moderation,
            "style": style,
            "response_format": response_format,
            "complexity": complexity,
            "frame_count": frame_count,
            "frame_duration_ms": frame_duration_ms,
            "svg": svg,
            "user": user,
            "safety_identifier": safety_identifier,
        }
        body = self._build("create_image_request", "generations", params, extra_body)
        _refuse_stream(body, "generate_image", "stream_image")
        saver = self._saver(save_to, body, overwrite, metadata)
        return self._json_call("generations", body, timeout, saver)

    def stream_image(
        self,
        prompt: str,
        *,
        partial_images: Optional[int] = None,
        model: Optional[str] = None,
        n: Optional[int] = None,
        size: Optional[str] = None,
        quality: Optional[str] = None,
        background: Optional[str] = None,
        output_format: Optional[str] = None,
        output_compression: Optional[int] = None,
        moderation: Optional[str] = None,
        complexity: Optional[str] = None,
        user: Optional[str] = None,
        safety_identifier: Optional[str] = None,
        extra_body: Optional[Mapping[str, Any]] = None,
        timeout: TimeoutArg = None,
    ) -> ImageStream:
        """Generate with streaming: yields :class:`PartialImage` previews, then :class:`Completed` images.

        :param partial_images: previews to send before the final image, 0-3.
        :returns: an :class:`~imageprovider.streaming.ImageStream` (iterator and context manager).
        :raises RequestValidationError: a parameter is invalid (nothing was sent).
        :raises APIStatusError: the API refused before the stream started (retried like other calls).
        """
        params = {
            "prompt": prompt,
            "model": self._model_for(model, extra_body),
            "n": n,
            "size": size,
            "quality": quality,
            "background": background,
            "output_format": output_format,
            "output_compression": output_compression,
            "moderation": moderation,
            "complexity": complexity,
            "user": user,
            "safety_identifier": safety_identifier,
            "stream": True,
            "partial_images": partial_images,
        }
        body = self._build("create_image_request", "generations", params, extra_body)
        response = self._send(
            "generations", body.get("model"), _request.encode_json(body), "application/json", timeout, stream=True
        )
        return self._open_stream(response, body)

    def edit_image(
        self,
        prompt: str,
        images: Any,
        *,
        mask: Optional[ImageInput] = None,
        model: Optional[str] = None,
        n: Optional[int] = None,
        size: Optional[str] = None,
        quality: Optional[str] = None,
        background: Optional[str] = None,
        output_format: Optional[str] = None,
        output_compression: Optional[int] = None,
        input_fidelity: Optional[str] = None,
        response_format: Optional[str] = None,
        complexity: Optional[str] = None,
        frame_count: Optional[int] = None,
        frame_duration_ms: Optional[int] = None,
        user: Optional[str] = None,
        safety_identifier: Optional[str] = None,
        extra_body: Optional[Mapping[str, Any]] = None,
        timeout: TimeoutArg = None,
        save_to: Optional[PathLike] = None,
        overwrite: bool = False,
        metadata: bool = False,
    ) -> ImageResponse:
        """Edit or extend one or more images following a prompt (``POST /images/edits``, multipart).

        :param images: one input or a list of up to 16: a path, ``bytes``, a
            binary file object (left open), or a ``(filename, bytes, mime_type)`` tuple.
        :param mask: a PNG with an alpha channel, the size of the first image;
            its transparent pixels mark where to edit.
        :raises RequestValidationError: a parameter or input image is invalid (nothing was sent).
        """
        params = {
            "prompt": prompt,
            "model": self._model_for(model, extra_body),
            "n": n,
            "size": size,
            "quality": quality,
            "background": background,
            "output_format": output_format,
            "output_compression": output_compression,
            "input_fidelity": input_fidelity,
            "response_format": response_format,
            "complexity": complexity,
            "frame_count": frame_count,
            "frame_duration_ms": frame_duration_ms,
            "user": user,
            "safety_identifier": safety_identifier,
        }
        body, payload, content_type = self._multipart(
            "create_image_edit_request", "edits", params, extra_body, "images", images, mask
        )
        _refuse_stream(body, "edit_image", "stream_edit")
        saver = self._saver(save_to, body, overwrite, metadata)
        return self._read_images(self._send("edits", body.get("model"), payload, content_type, timeout), body, saver)

    def stream_edit(
        self,
        prompt: str,
        images: Any,
        *,
        mask: Optional[ImageInput] = None,
        partial_images: Optional[int] = None,
        model: Optional[str] = None,
        n: Optional[int] = None,
        size: Optional[str] = None,
        quality: Optional[str] = None,
        background: Optional[str] = None,
        output_format: Optional[str] = None,
        output_compression: Optional[int] = None,
        input_fidelity: Optional[str] = None,
        complexity: Optional[str] = None,
        user: Optional[str] = None,
        safety_identifier: Optional[str] = None,
        extra_body: Optional[Mapping[str, Any]] = None,
        timeout: TimeoutArg = None,
    ) -> ImageStream:
        """Edit with streaming; takes the inputs of :meth:`edit_image` and returns an :class:`ImageStream`."""
        params = {
            "prompt": prompt,
            "model": self._model_for(model, extra_body),
            "n": n,
            "size": size,
            "quality": quality,
            "background": background,
            "output_format": output_format,
            "output_compression": output_compression,
            "input_fidelity": input_fidelity,
            "complexity": complexity,
            "user": user,
            "safety_identifier": safety_identifier,
            "stream": True,
            "partial_images": partial_images,
        }
        body, payload, content_type = self._multipart(
            "create_image_edit_request", "edits", params, extra_body, "images", images, mask
        )
        response = self._send("edits", body.get("model"), payload, content_type, timeout, stream=True)
        return self._open_stream(response, body)

    def edit_image_from_refs(
        self,
        prompt: str,
        images: Sequence[Mapping[str, str]],
        *,
        mask: Optional[Mapping[str, str]] = None,
        model: Optional[str] = None,
        n: Optional[int] = None,
        size: Optional[str] = None,
        quality: Optional[str] = None,
        background: Optional[str] = None,
        output_format: Optional[str] = None,
        output_compression: Optional[int] = None,
        input_fidelity: Optional[str] = None,
        moderation: Optional[str] = None,
        complexity: Optional[str] = None,
        frame_count: Optional[int] = None,
        frame_duration_ms: Optional[int] = None,
        markup: Optional[Mapping[str, str]] = None,
        user: Optional[str] = None,
        safety_identifier: Optional[str] = None,
        extra_body: Optional[Mapping[str, Any]] = None,
        timeout: TimeoutArg = None,
        save_to: Optional[PathLike] = None,
        overwrite: bool = False,
        metadata: bool = False,
    ) -> ImageResponse:
        """Edit images given by reference (``POST /images/edits`` with a JSON body).

        :param images: up to 16 references, each ``{"image_url": ...}`` (an
            https URL, or a data URL from :func:`image_data_url`) or ``{"file_id": ...}``.
        :param mask: a reference of the same kind.
        :param markup: a reference to a transparent PNG drawn over the first
            image, the same width and height (gpt-image-2.6); a data URL is
            checked before sending.
        """
        params = {
            "prompt": prompt,
            "images": list(images) if isinstance(images, (list, tuple)) else images,
            "mask": mask,
            "model": self._model_for(model, extra_body),
            "n": n,
            "size": size,
            "quality": quality,
            "background": background,
            "output_format": output_format,
            "output_compression": output_compression,
            "input_fidelity": input_fidelity,
            "moderation": moderation,
            "complexity": complexity,
            "frame_count": frame_count,
            "frame_duration_ms": frame_duration_ms,
            "markup": markup,
            "user": user,
            "safety_identifier": safety_identifier,
        }
        body = self._build("edit_image_body_json_param", "edits", params, extra_body)
        spec = self._rules.spec_for(body)
        if spec is not None and "markup" in params and markup is not None:
            _request.check_markup_refs(body)
        if spec is not None and spec.json_edits is False:
            raise RequestValidationError(
                f"Parameter 'model' {spec.name!r} takes edits as multipart uploads only; use edit_image()",
                param="model",
            )
        _refuse_stream(body, "edit_image_from_refs", "stream_edit")
        saver = self._saver(save_to, body, overwrite, metadata)
        return self._json_call("edits", body, timeout, saver)

    def create_variation(
        self,
        image: ImageInput,
        *,
        model: Optional[str] = "dall-e-2",
        n: Optional[int] = None,
        size: Optional[str] = None,
        response_format: Optional[str] = None,
        user: Optional[str] = None,
        extra_body: Optional[Mapping[str, Any]] = None,
        timeout: TimeoutArg = None,
        save_to: Optional[PathLike] = None,
        overwrite: bool = False,
        metadata: bool = False,
    ) -> ImageResponse:
        """Create variations of one square PNG (``POST /images/variations``, multipart).

        Only dall-e-2 offers variations, and OpenAI retired it in 2026: this
        serves compatible servers and older deployments.
        """
        params = {"model": model, "n": n, "size": size, "response_format": response_format, "user": user}
        if isinstance(extra_body, Mapping) and "model" in extra_body and model == "dall-e-2":
            params["model"] = None
        body, payload, content_type = self._multipart(
            "create_image_variation_request", "variations", params, extra_body, "image", image, None
        )
        saver = self._saver(save_to, body, overwrite, metadata)
        return self._read_images(
            self._send("variations", body.get("model"), payload, content_type, timeout), body, saver
        )

    # -- files and batches (OpenAI's Batch API) ---------------------------

    def upload_file(
        self, data: bytes, *, filename: str, purpose: str = "batch", timeout: TimeoutArg = None
    ) -> Dict[str, Any]:
        """Upload ``data`` (``POST /files``); returns the file object (``id``, ``bytes``...)."""
        if not isinstance(data, (bytes, bytearray)) or not isinstance(filename, str) or not filename:
            raise RequestValidationError("upload_file needs bytes and a file name", param="file")
        payload, content_type = _multipart.encode(
            {"purpose": purpose}, [("file", (filename, bytes(data), "application/jsonl"))]
        )
        response = self._transport.request(
            "POST", "/files", body=payload, content_type=content_type, timeout=self._timeout(timeout)
        )
        return self._transport.read_json(response, "openai_file")

    def create_batch(
        self,
        input_file_id: str,
        endpoint: str,
        *,
        completion_window: str = "24h",
        metadata: Optional[Mapping[str, str]] = None,
        timeout: TimeoutArg = None,
    ) -> Dict[str, Any]:
        """Start a batch over an uploaded JSONL file (``POST /batches``); returns the batch object."""
        if endpoint not in BATCH_ENDPOINTS:
            raise RequestValidationError(
                "Parameter 'endpoint' must be one of {}".format(", ".join(BATCH_ENDPOINTS)), param="endpoint"
            )
        if completion_window != "24h":
            raise RequestValidationError("Parameter 'completion_window' must be '24h'", param="completion_window")
        body: Dict[str, Any] = {
            "input_file_id": input_file_id,
            "endpoint": endpoint,
            "completion_window": completion_window,
        }
        if metadata:
            body["metadata"] = dict(metadata)
        response = self._transport.request(
            "POST",
            "/batches",
            body=_request.encode_json(body),
            content_type="application/json",
            timeout=self._timeout(timeout),
        )
        return self._transport.read_json(response, "batch")

    def list_models(self, *, timeout: TimeoutArg = None) -> List[Dict[str, Any]]:
        """The models the API offers this key (``GET /models``): dicts with ``id`` and, when announced, ``shutdown_date``."""
        response = self._transport.request("GET", "/models", timeout=self._timeout(timeout))
        return list(self._transport.read_json(response, "model_list")["data"])

    def retrieve_batch(self, batch_id: str, *, timeout: TimeoutArg = None) -> Dict[str, Any]:
        """The batch object as it stands (``GET /batches/{id}``)."""
        response = self._transport.request(
            "GET", "/batches/" + quote(batch_id, safe=""), timeout=self._timeout(timeout)
        )
        return self._transport.read_json(response, "batch")

    def cancel_batch(self, batch_id: str, *, timeout: TimeoutArg = None) -> Dict[str, Any]:
        """Ask for a batch to stop (``POST /batches/{id}/cancel``); returns the batch object."""
        response = self._transport.request(
            "POST", "/batches/{}/cancel".format(quote(batch_id, safe="")), timeout=self._timeout(timeout)
        )
        return self._transport.read_json(response, "batch")

    def download_file(self, file_id: str, sink: IO[bytes], *, timeout: TimeoutArg = None) -> int:
        """Stream a file's content (``GET /files/{id}/content``) into ``sink``; returns the bytes written."""
        response = self._transport.request(
            "GET",
            "/files/{}/content".format(quote(file_id, safe="")),
            timeout=self._timeout(timeout),
            stream=True,
            accept="*/*",
        )
        return self._transport.copy_body(response, sink)

    def _timeout(self, timeout: TimeoutArg) -> Optional[Tuple[float, float]]:
        return resolve_timeout(timeout, self.settings.timeout) if timeout is not None else None

    # -- shared steps --------------------------------------------------

    def _model_for(self, model: Optional[str], extra_body: Optional[Mapping[str, Any]]) -> Optional[str]:
        # A model named in extra_body (for compatible servers) stands in for the default.
        if model is None and isinstance(extra_body, Mapping) and "model" in extra_body:
            return None
        return model if model is not None else self.settings.default_model

    def _build(
        self,
        schema: str,
        endpoint: str,
        params: Dict[str, Any],
        extra_body: Optional[Mapping[str, Any]],
        files: AbstractSet[str] = frozenset(),
    ) -> Dict[str, Any]:
        body, from_extra = _request.assemble(schema, params, extra_body)
        _request.check_form(schema, endpoint, body, self._rules.table.known_params(endpoint), from_extra)
        self._rules.check(body, endpoint, given_by_extra=from_extra, files=files)
        if log.isEnabledFor(logging.DEBUG):
            shown = dict(body)
            if isinstance(shown.get("prompt"), str):
                shown["prompt"] = _request.shorten(shown["prompt"])
            if isinstance(shown.get("images"), list):
                shown["images"] = "[{} references]".format(len(shown["images"]))
            try:
                text = repr(shown)
            except ValueError:  # Python will not print ints of over 4300 digits
                text = "<parameters too large to show>"
            log.debug("Request parameters: %s", text, extra={"params": shown})
        return body

    def _multipart(
        self,
        schema: str,
        endpoint: str,
        params: Dict[str, Any],
        extra_body: Optional[Mapping[str, Any]],
        file_param: str,
        images: Any,
        mask: Any,
    ) -> Tuple[Dict[str, Any], bytes, str]:
        body = self._build(
            schema, endpoint, params, extra_body, frozenset({"mask"}) if mask is not None else frozenset()
        )
        spec = self._rules.spec_for(body)
        files, mask_file = _request.load_inputs(file_param, _request.as_input_list(images), mask, spec)
        payload, content_type = _multipart.encode(body, _multipart.image_fields(files), mask_file)
        # What was sent, for records and sidecar metadata: the files by name, type and size.
        sent = dict(body)
        sent[file_param] = [{"filename": f.filename, "content_type": f.mime_type, "bytes": len(f.data)} for f in files]
        if mask_file is not None:
            sent["mask"] = {
                "filename": mask_file.filename,
                "content_type": mask_file.mime_type,
                "bytes": len(mask_file.data),
            }
        return sent, payload, content_type

    def _route(self, endpoint: str, model: Optional[str]) -> Tuple[str, Optional[Dict[str, str]]]:
        """The path (under the base URL) and query of ``endpoint``; Azure routes differently."""
        return "/images/" + endpoint, None

    def _send(
        self,
        endpoint: str,
        model: Optional[str],
        payload: bytes,
        content_type: str,
        timeout: TimeoutArg,
        stream: bool = False,
    ) -> requests.Response:
        """Send an images request; the body is left unread (events, or images read as they arrive)."""
        path, query = self._route(endpoint, model)
        return self._transport.request(
            "POST",
            path,
            body=payload,
            content_type=content_type,
            timeout=self._timeout(timeout),
            stream=True,
            accept="text/event-stream" if stream else None,
            query=query,
            # Uncompressed, so events can be read as they arrive, beneath any decoder.
            headers={"Accept-Encoding": "identity"} if stream else None,
        )

    def _open_stream(self, response: requests.Response, body: Mapping[str, Any]) -> ImageStream:
        check_event_stream(response, self._transport)
        return ImageStream(response, self._transport, expected_images=body.get("n") or 1, request=body)

    def _json_call(
        self, endpoint: str, body: Mapping[str, Any], timeout: TimeoutArg, saver: Optional[FolderSaver]
    ) -> ImageResponse:
        response = self._send(endpoint, body.get("model"), _request.encode_json(body), "application/json", timeout)
        return self._read_images(response, body, saver)

    def _saver(
        self, save_to: Optional[PathLike], body: Mapping[str, Any], overwrite: bool, metadata: bool
    ) -> Optional[FolderSaver]:
        if save_to is None:
            return None
        saver = FolderSaver(save_to, body, overwrite=overwrite, metadata=metadata)
        saver.check()
        return saver

    def _read_images(
        self, response: requests.Response, body: Mapping[str, Any], saver: Optional[FolderSaver] = None
    ) -> ImageResponse:
        """Read the body as it arrives: images decoded into memory, or into ``saver``'s folder."""
        scanner = ImageBodyScanner(saver.open_sink) if saver is not None else ImageBodyScanner()
        try:
            parsed = self._transport.read_json(response, "images_response", scanner)

            def build(inline: Mapping[int, InlineImage]) -> ImageResponse:
                return ImageResponse.from_body(parsed, response.headers, request=body, fetch=self._fetch, inline=inline)

            images = scanner.images_in(parsed)
            if saver is None:
                return build({index: _in_memory(item) for index, item in images.items()})
            return saver.finish(images, build)
        finally:
            if saver is not None:
                saver.discard()

    def _fetch(self, url: str, sink: IO[bytes]) -> int:
        return self._transport.download(url, sink, max_bytes=self.max_download_bytes)


def _in_memory(item: Extracted) -> InlineImage:
    if item.text is not None:  # invalid base64, kept as text: it fails on use, as received
        return InlineImage(text=item.text)
    return InlineImage(data=cast(MemorySink, item.sink).data, error=item.error)


def _refuse_stream(body: Mapping[str, Any], method: str, streaming_method: str) -> None:
    if body.get("stream"):
        raise RequestValidationError(
            f"Parameter 'stream' is not supported by {method}, which returns whole images; use {streaming_method}()",
            param="stream",
        )
