"""
imageprovider.provider
~~~~~~~~~~~~~~~~~~~~~~

:class:`OpenAIImageProvider` owns the configuration, the model rules and one
transport (a session and its connection pool). A call goes one way through
the package: :mod:`._request` builds and checks it, :mod:`._transport` sends
it, :mod:`._response` reads and validates the body, :mod:`.results` holds
the result, and :mod:`._saveto` writes the images when ``save_to`` asks.
"""

import sys
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Type, Union, cast

import requests

from . import _response
from .__version__ import __version__
from ._config import (
    DEFAULT_DEADLINE,
    Limits,
    NetworkOptions,
    Settings,
    TimeoutArg,
    check_deadline,
    check_extra_headers,
    check_max_retries,
    check_network,
    resolve_settings,
    resolve_timeout,
)
from ._download import DownloadPolicy, download
from ._files import PathLike
from ._hooks import Hooks
from ._imagebody import MemorySink
from ._inputs import ImageInput
from ._log import LOGGER
from ._request import KINDS, PreparedImageRequest, prepare
from ._retry import DEFAULT_MAX_RETRY_AFTER, make_retry
from ._rules import ClockArg, ModelRules, as_clock
from ._saving import FolderSaver
from ._transport import UNCHANGED, Sent, Transport, Unchanged
from .exceptions import ConfigurationError, RequestValidationError
from .model_specs import ModelTable, builtin_table, load_overlay
from .results import ImageResponse, InlineBytes, SavedFile
from .streaming import ImageStream

log = LOGGER

_PYTHON_VERSION = "{}.{}.{}".format(*sys.version_info[:3])

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
    :param deadline: seconds a whole call may take, from sending to the last
        byte read, retries included (default 900; ``None`` for no bound). The
        ``timeout`` bounds each wait for the server; this bounds the call, so a
        server trickling its body cannot hold it for hours.
    :param limits: (optional) bounds on what is read (:class:`~imageprovider.Limits`).
    :param allow_private_image_hosts: download URL results from loopback,
        private, link-local or unique-local addresses (refused by default
        unless the API itself is on such an address).
    :param verify: TLS verification: a CA bundle path, ``True`` (certifi's
        bundle) or ``False`` (off; warned about). Default: the first of
        ``REQUESTS_CA_BUNDLE``, ``CURL_CA_BUNDLE``, ``SSL_CERT_FILE``,
        ``SSL_CERT_DIR``, else ``True``.
    :param cert: a client certificate for mutual TLS: a PEM file with the
        certificate and key, or a ``(certificate, key)`` pair of paths.
    :param proxies: scheme to proxy URL (``{"https": "http://proxy:3128"}``);
        what it leaves out comes from ``HTTPS_PROXY``, ``HTTP_PROXY``,
        ``ALL_PROXY`` and ``NO_PROXY``.
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
        deadline: Optional[float] = DEFAULT_DEADLINE,
        limits: Optional[Limits] = None,
        allow_private_image_hosts: bool = False,
        verify: Union[None, bool, str] = None,
        cert: Union[None, str, Tuple[str, str]] = None,
        proxies: Optional[Mapping[str, str]] = None,
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
            deadline=deadline,
            limits=limits,
            allow_private_image_hosts=allow_private_image_hosts,
            network=check_network(verify, cert, proxies),
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
        deadline: Optional[float] = DEFAULT_DEADLINE,
        limits: Optional[Limits] = None,
        allow_private_image_hosts: bool = False,
        network: Optional[NetworkOptions] = None,
    ) -> None:
        """Keep ``settings`` and open the transport; shared with the Azure provider."""
        if limits is not None and not isinstance(limits, Limits):
            raise ConfigurationError("limits must be an imageprovider.Limits")
        #: Where URL results may be downloaded from (see :mod:`._download`).
        self.download_policy = DownloadPolicy.for_api(settings.base_url, allow_private=bool(allow_private_image_hosts))
        if isinstance(max_download_bytes, bool) or not isinstance(max_download_bytes, int) or max_download_bytes < 1:
            raise ConfigurationError("max_download_bytes must be a positive whole number of bytes")
        self.settings: Settings = settings
        self._rules = rules if rules is not None else self._model_rules(settings, None)
        self.max_download_bytes = max_download_bytes
        extra = check_extra_headers(extra_headers)
        #: Callbacks told of every API response and retry (see :mod:`imageprovider._hooks`).
        self.hooks = Hooks()
        #: The transport every request of this provider goes through (the batch
        #: module sends the files and batches requests with it).
        self.transport = Transport(
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
            hooks=self.hooks,
            limits=limits,
            deadline=check_deadline(deadline),
            network=network,
        )

    @staticmethod
    def _model_rules(settings: Settings, clock: ClockArg, shutdowns: bool = True) -> ModelRules:
        table = load_overlay(settings.models_file) if settings.models_file else builtin_table()
        return ModelRules(table, enabled=settings.check_model_rules, shutdowns=shutdowns, clock=as_clock(clock))

    def with_options(
        self,
        *,
        timeout: TimeoutArg = None,
        max_retries: Optional[int] = None,
        max_retry_after: Optional[float] = None,
        retry_read_timeouts: Optional[bool] = None,
        retry_rate_limits: Optional[bool] = None,
        check_model_rules: Optional[bool] = None,
        deadline: Union[Optional[float], Unchanged] = UNCHANGED,
    ) -> "OpenAIImageProvider":
        """A provider like this one (credentials, settings, model table, connection pool) with some options changed.

        The copy has its own retry policy and its own :attr:`hooks` (starting
        with this provider's callbacks), so changing them never touches this
        provider or other copies. Closing the copy leaves the shared connections
        open; close this provider when done with both.

        Usage::

            >>> patient = provider.with_options(timeout=900, max_retries=5)

        :param retry_rate_limits: ``False`` hands every 429 back at once instead
            of retrying it (a batch's shared limiter schedules the item again).
        :param deadline: seconds a whole call may take, or ``None`` for no
            bound; left as it is when not given.
        """
        settings = replace(
            self.settings,
            timeout=resolve_timeout(timeout, self.settings.timeout) if timeout is not None else self.settings.timeout,
            max_retries=self.settings.max_retries if max_retries is None else check_max_retries(max_retries),
            max_retry_after=self.settings.max_retry_after if max_retry_after is None else max_retry_after,
            retry_read_timeouts=self.settings.retry_read_timeouts
            if retry_read_timeouts is None
            else bool(retry_read_timeouts),
            check_model_rules=self.settings.check_model_rules if check_model_rules is None else bool(check_model_rules),
        )
        copy = object.__new__(type(self))
        copy.__dict__.update(self.__dict__)
        copy.settings = settings
        copy.hooks = self.hooks.copy()
        copy._rules = ModelRules(
            self._rules.table,
            enabled=settings.check_model_rules,
            shutdowns=self._rules.shutdowns,
            clock=self._rules.clock,
        )
        copy.transport = self.transport.derive(
            retry=make_retry(
                settings.max_retries,
                retry_read_timeouts=settings.retry_read_timeouts,
                max_retry_after=settings.max_retry_after,
                retry_rate_limits=self.transport.retry.retry_rate_limits
                if retry_rate_limits is None
                else bool(retry_rate_limits),
            ),
            timeout=settings.timeout,
            hooks=copy.hooks,
            deadline=deadline if isinstance(deadline, Unchanged) else check_deadline(deadline),
        )
        return copy

    # -- lifecycle -----------------------------------------------------

    def close(self) -> None:
        """Close the HTTP session and its connections. Safe to call twice."""
        self.transport.close()

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
        prepared = self.prepare_request(
            "generate",
            prompt=prompt,
            model=model,
            n=n,
            size=size,
            quality=quality,
            background=background,
            output_format=output_format,
            output_compression=output_compression,
            moderation=moderation,
            style=style,
            response_format=response_format,
            complexity=complexity,
            frame_count=frame_count,
            frame_duration_ms=frame_duration_ms,
            svg=svg,
            user=user,
            safety_identifier=safety_identifier,
            extra_body=extra_body,
        )
        return self._images_call(prepared, timeout, save_to, overwrite, metadata)

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
        prepared = self.prepare_request(
            "stream",
            prompt=prompt,
            partial_images=partial_images,
            model=model,
            n=n,
            size=size,
            quality=quality,
            background=background,
            output_format=output_format,
            output_compression=output_compression,
            moderation=moderation,
            complexity=complexity,
            user=user,
            safety_identifier=safety_identifier,
            extra_body=extra_body,
        )
        return self._stream_call(prepared, timeout)

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
        prepared = self.prepare_request(
            "edit",
            prompt=prompt,
            images=images,
            mask=mask,
            model=model,
            n=n,
            size=size,
            quality=quality,
            background=background,
            output_format=output_format,
            output_compression=output_compression,
            input_fidelity=input_fidelity,
            response_format=response_format,
            complexity=complexity,
            frame_count=frame_count,
            frame_duration_ms=frame_duration_ms,
            user=user,
            safety_identifier=safety_identifier,
            extra_body=extra_body,
        )
        return self._images_call(prepared, timeout, save_to, overwrite, metadata)

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
        prepared = self.prepare_request(
            "stream_edit",
            prompt=prompt,
            images=images,
            mask=mask,
            partial_images=partial_images,
            model=model,
            n=n,
            size=size,
            quality=quality,
            background=background,
            output_format=output_format,
            output_compression=output_compression,
            input_fidelity=input_fidelity,
            complexity=complexity,
            user=user,
            safety_identifier=safety_identifier,
            extra_body=extra_body,
        )
        return self._stream_call(prepared, timeout)

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
        prepared = self.prepare_request(
            "edit_refs",
            prompt=prompt,
            images=list(images) if isinstance(images, (list, tuple)) else images,
            mask=mask,
            model=model,
            n=n,
            size=size,
            quality=quality,
            background=background,
            output_format=output_format,
            output_compression=output_compression,
            input_fidelity=input_fidelity,
            moderation=moderation,
            complexity=complexity,
            frame_count=frame_count,
            frame_duration_ms=frame_duration_ms,
            markup=markup,
            user=user,
            safety_identifier=safety_identifier,
            extra_body=extra_body,
        )
        return self._images_call(prepared, timeout, save_to, overwrite, metadata)

    def create_variation(
        self,
        image: ImageInput,
        *,
        model: Optional[str] = None,
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

        Only dall-e-2 offers variations, and OpenAI shut it down in 2026: this
        serves compatible servers and older deployments (pass
        ``check_model_rules=False`` for them).

        :param model: default ``dall-e-2``, the one model that makes variations.
        """
        prepared = self.prepare_request(
            "variation",
            image=image,
            model=model,
            n=n,
            size=size,
            response_format=response_format,
            user=user,
            extra_body=extra_body,
        )
        return self._images_call(prepared, timeout, save_to, overwrite, metadata)

    # -- other endpoints ---------------------------------------------------

    def list_models(self, *, timeout: TimeoutArg = None) -> List[Dict[str, Any]]:
        """The models the API offers this key (``GET /models``): dicts with ``id`` and, when announced, ``shutdown_date``."""
        sent = self.transport.request("GET", "/models", timeout=self._timeout(timeout))
        return list(_response.read_json(sent, "model_list")["data"])

    # -- the steps of a call -----------------------------------------------

    def prepare_request(self, kind: str, **params: Any) -> PreparedImageRequest:
        """Build and check a request as the matching method would, without sending it.

        The seam through which ``--dry-run`` shows a request and the Batch API
        writes its lines.

        :param kind: ``generate``, ``stream``, ``edit``, ``stream_edit``,
            ``edit_refs`` or ``variation``.
        :param params: the method's keyword parameters (the prompt, the input
            images and the mask included), and ``extra_body``.
        :raises RequestValidationError: a parameter or input is invalid.
        """
        if kind not in KINDS:
            raise RequestValidationError(
                "Unknown kind of request {!r}; the kinds are {}".format(kind, ", ".join(KINDS)), param="kind"
            )
        extra_body = params.pop("extra_body", None)
        model = params.get("model")
        # A model named in extra_body (for compatible servers) stands in for the default.
        if model is None and not (isinstance(extra_body, Mapping) and "model" in extra_body):
            params["model"] = "dall-e-2" if kind == "variation" else self.settings.default_model
        return prepare(kind, params, extra_body, self._rules)

    def http_request(self, prepared: PreparedImageRequest) -> requests.PreparedRequest:
        """The HTTP request :meth:`prepare_request`'s result would be sent as, credentials attached (keep it private)."""
        path, query = self._route(prepared.endpoint, prepared.model)
        return self.transport.prepare(
            "POST",
            self.settings.base_url + path,
            body=prepared.payload,
            content_type=prepared.content_type,
            accept="text/event-stream" if prepared.stream else None,
            query=query,
            # Uncompressed, so events can be read as they arrive, beneath any decoder.
            headers={"Accept-Encoding": "identity"} if prepared.stream else None,
        )

    def _send(self, prepared: PreparedImageRequest, timeout: TimeoutArg) -> Sent:
        path, _ = self._route(prepared.endpoint, prepared.model)
        return self.transport.send(self.http_request(prepared), timeout=self._timeout(timeout), shown=path)

    def _images_call(
        self,
        prepared: PreparedImageRequest,
        timeout: TimeoutArg,
        save_to: Optional[PathLike],
        overwrite: bool,
        metadata: bool,
    ) -> ImageResponse:
        """Send, read the images as they arrive (into memory, or into ``save_to``), and build the result."""
        saver = None
        if save_to is not None:
            # Names are checked before sending: nothing is paid for in vain.
            saver = FolderSaver(save_to, prepared.body, overwrite=overwrite, metadata=metadata)
            saver.check()
        sent = self._send(prepared, timeout)
        try:
            body, images = _response.read_images(
                sent, saver.open_sink if saver is not None else None, expected_images=prepared.expected_images
            )

            if saver is None:
                in_memory = {
                    index: InlineBytes(cast(MemorySink, item.sink).data or b"") for index, item in images.items()
                }
                return ImageResponse.from_body(
                    body, sent.shown_headers, request=prepared.body, fetch=self._fetch, inline=in_memory
                )

            def build(files: Mapping[int, Path]) -> ImageResponse:
                inline = {index: SavedFile(path) for index, path in files.items()}
                return ImageResponse.from_body(
                    body, sent.shown_headers, request=prepared.body, fetch=self._fetch, inline=inline
                )

            return saver.finish(images, build)
        finally:
            if saver is not None:
                saver.discard()

    def _stream_call(self, prepared: PreparedImageRequest, timeout: TimeoutArg) -> ImageStream:
        sent = self._send(prepared, timeout)
        _response.check_event_stream(sent)
        return ImageStream(sent, expected_images=prepared.expected_images, request=prepared.body)

    def _route(self, endpoint: str, model: Optional[str]) -> Tuple[str, Optional[Dict[str, str]]]:
        """The path (under the base URL) and query of ``endpoint``; Azure routes differently."""
        return "/images/" + endpoint, None

    def _timeout(self, timeout: TimeoutArg) -> Optional[Tuple[float, float]]:
        return resolve_timeout(timeout, self.settings.timeout) if timeout is not None else None

    def _fetch(self, url: str, sink: IO[bytes]) -> int:
        return download(self.transport, url, sink, max_bytes=self.max_download_bytes, policy=self.download_policy)
