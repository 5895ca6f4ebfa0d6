"""
imageprovider.provider
~~~~~~~~~~~~~~~~~~~~~~

:class:`OpenAIImageProvider` owns the configuration and one HTTP session.
Each call builds its body from parameters, checks it (JSON Schema, then the
model's rules), sends it through the transport, validates the response body
and returns a plain :class:`~imageprovider.results.ImageResponse`.
"""

import logging
import platform
from types import TracebackType
from typing import Any, Dict, Mapping, Optional, Type

import requests

from . import _request
from ._config import Settings, TimeoutArg, resolve_settings, resolve_timeout
from ._retry import DEFAULT_MAX_RETRY_AFTER, make_retry
from ._transport import Transport
from .__version__ import __version__
from .exceptions import RequestValidationError
from .results import ImageResponse

log = logging.getLogger("imageprovider")

#: Request schema and path of each endpoint.
GENERATIONS_PATH = "/images/generations"


def user_agent() -> str:
    """The ``User-Agent`` sent with every request."""
    return "imageprovider/{} (Python {}; requests {})".format(
        __version__, platform.python_version(), requests.__version__)


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
    :raises ConfigurationError: no API key anywhere, or an unusable setting.
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
    ) -> None:
        self.settings: Settings = resolve_settings(
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
        )
        settings = self.settings
        credentials = {"Authorization": "Bearer " + settings.api_key}
        if settings.organization:
            credentials["OpenAI-Organization"] = settings.organization
        if settings.project:
            credentials["OpenAI-Project"] = settings.project
        self._transport = Transport(
            base_url=settings.base_url,
            credential_headers=credentials,
            user_agent=user_agent(),
            timeout=settings.timeout,
            retry=make_retry(
                settings.max_retries,
                retry_read_timeouts=settings.retry_read_timeouts,
                max_retry_after=settings.max_retry_after,
            ),
            secrets=(settings.api_key,),
        )

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
        return "OpenAIImageProvider(base_url={!r}, default_model={!r}, api_key=<redacted>)".format(
            self.settings.base_url, self.settings.default_model)

    @property
    def base_url(self) -> str:
        """The API root requests go to."""
        return self.settings.base_url

    @property
    def default_model(self) -> str:
        """The model used when a call names none."""
        return self.settings.default_model

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
        user: Optional[str] = None,
        extra_body: Optional[Mapping[str, Any]] = None,
        timeout: TimeoutArg = None,
    ) -> ImageResponse:
        """Create images from a text prompt (``POST /images/generations``).

        Parameters left as ``None`` are not sent; ``model`` always is. The
        body is checked against ``schemas/create_image_request.json`` and the
        model's rules before anything is sent.

        :param prompt: what to draw.
        :param model: default :attr:`default_model`.
        :param extra_body: extra JSON fields for compatible servers.
        :param timeout: this call's timeout; see the class docstring.
        :raises RequestValidationError: a parameter is invalid (nothing was sent).
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
            "user": user,
        }
        body = self._build("create_image_request", params, extra_body)
        if body.get("stream"):
            raise RequestValidationError(
                "Parameter 'stream' is not supported by generate_image, which returns whole images", param="stream")
        return self._post_json(GENERATIONS_PATH, body, timeout)

    # -- shared steps --------------------------------------------------

    def _model_for(self, model: Optional[str], extra_body: Optional[Mapping[str, Any]]) -> Optional[str]:
        # A model named in extra_body (for compatible servers) stands in for the default.
        if model is None and isinstance(extra_body, Mapping) and "model" in extra_body:
            return None
        return model if model is not None else self.settings.default_model

    def _build(self, schema: str, params: Dict[str, Any], extra_body: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
        body = _request.build_body(schema, params, extra_body)
        if self.settings.check_model_rules:
            _request.check_model_rules(body)
        if log.isEnabledFor(logging.DEBUG):
            shown = dict(body)
            if isinstance(shown.get("prompt"), str):
                shown["prompt"] = _request.shorten(shown["prompt"])
            log.debug("Request parameters: %s", shown, extra={"params": shown})
        return body

    def _post_json(self, path: str, body: Mapping[str, Any], timeout: TimeoutArg) -> ImageResponse:
        payload = _request.encode_json(body)
        call_timeout = resolve_timeout(timeout, self.settings.timeout) if timeout is not None else None
        response = self._transport.request(
            "POST", path, body=payload, content_type="application/json", timeout=call_timeout)
        parsed = self._transport.read_json(response, "images_response")
        return ImageResponse.from_body(parsed, response.headers)
