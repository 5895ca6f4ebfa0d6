"""
imageprovider.azure
~~~~~~~~~~~~~~~~~~~

:class:`AzureOpenAIImageProvider`: the same calls against Azure OpenAI, which
routes generations and edits through a deployment, takes an ``api-version``
query parameter on every request, and authenticates with an ``api-key``
header or an Entra ID bearer token.
"""

import os
from typing import Callable, Dict, Mapping, Optional, Tuple, Union
from urllib.parse import quote

from ._config import DEFAULT_DEADLINE, Limits, TimeoutArg, check_base_url, check_network, resolve_settings
from ._retry import DEFAULT_MAX_RETRY_AFTER
from .exceptions import ConfigurationError
from .provider import DEFAULT_MAX_DOWNLOAD_BYTES, OpenAIImageProvider

ENV_AZURE_ENDPOINT = "AZURE_OPENAI_ENDPOINT"
ENV_AZURE_API_KEY = "AZURE_OPENAI_API_KEY"
ENV_AZURE_AD_TOKEN = "AZURE_OPENAI_AD_TOKEN"  # noqa: S105 (the variable's name, not a token)
ENV_API_VERSION = "OPENAI_API_VERSION"

#: Endpoints Azure serves under ``/deployments/{deployment}``; variations are not among them.
DEPLOYMENT_ENDPOINTS = frozenset({"generations", "edits"})

# OpenAI's own settings must not leak into an Azure provider.
_OPENAI_ONLY_ENV = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID")


class AzureOpenAIImageProvider(OpenAIImageProvider):
    """A provider for Azure OpenAI deployments.

    Requests go to ``{endpoint}/openai/deployments/{deployment}/images/{generations|edits}?api-version=...``
    (variations to ``{endpoint}/openai/images/variations``). Without a
    ``deployment``, each call's model name is used as the deployment name.

    Usage::

        >>> from imageprovider import AzureOpenAIImageProvider
        >>> with AzureOpenAIImageProvider(endpoint="https://my-resource.openai.azure.com",
        ...                               deployment="gpt-image-1", api_version="2025-04-01-preview") as azure:
        ...     result = azure.generate_image("A lighthouse at dusk")

    :param api_key: sent as ``api-key``; default ``AZURE_OPENAI_API_KEY``.
    :param endpoint: the resource URL; default ``AZURE_OPENAI_ENDPOINT``.
    :param deployment: (optional) the deployment name.
    :param api_version: default ``OPENAI_API_VERSION``; required.
    :param azure_ad_token: an Entra ID token, sent as ``Authorization: Bearer``;
        default ``AZURE_OPENAI_AD_TOKEN`` (which wins over the key in the environment).
    :param azure_ad_token_provider: a callable returning a fresh token, asked before each request.
    :param models_file: (optional) an overlay of model table entries, as for
        :class:`OpenAIImageProvider`. OpenAI's shutdown dates are not acted on:
        Azure retires models on dates of its own.
    :param deadline: also ``limits``, ``allow_private_image_hosts``, ``verify``, ``cert`` and ``proxies``:
        as for :class:`OpenAIImageProvider`.
    :raises ConfigurationError: no endpoint, no API version, no credential, or more than one credential given.
    """

    def __init__(
        self,
        api_key: Optional[str] = None,
        *,
        endpoint: Optional[str] = None,
        deployment: Optional[str] = None,
        api_version: Optional[str] = None,
        azure_ad_token: Optional[str] = None,
        azure_ad_token_provider: Optional[Callable[[], str]] = None,
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
        deadline: Optional[float] = DEFAULT_DEADLINE,
        limits: Optional[Limits] = None,
        allow_private_image_hosts: bool = False,
        verify: Union[None, bool, str] = None,
        cert: Union[None, str, Tuple[str, str]] = None,
        proxies: Optional[Mapping[str, str]] = None,
    ) -> None:
        given = [
            name
            for name, value in (
                ("api_key", api_key),
                ("azure_ad_token", azure_ad_token),
                ("azure_ad_token_provider", azure_ad_token_provider),
            )
            if value is not None
        ]
        if len(given) > 1:
            raise ConfigurationError(
                "Pass only one of api_key, azure_ad_token and azure_ad_token_provider; got " + " and ".join(given)
            )
        environ = {key: value for key, value in os.environ.items() if key not in _OPENAI_ONLY_ENV}
        endpoint = endpoint or environ.get(ENV_AZURE_ENDPOINT, "").strip()
        api_version = api_version or environ.get(ENV_API_VERSION, "").strip()
        if not endpoint:
            raise ConfigurationError(f"No Azure endpoint: pass endpoint= or set {ENV_AZURE_ENDPOINT}")
        if not api_version:
            raise ConfigurationError(f"No Azure API version: pass api_version= or set {ENV_API_VERSION}")
        if deployment is not None and (not isinstance(deployment, str) or not deployment.strip()):
            raise ConfigurationError("deployment must be a non-empty string")
        if not given:
            azure_ad_token = environ.get(ENV_AZURE_AD_TOKEN, "").strip() or None
            api_key = None if azure_ad_token else (environ.get(ENV_AZURE_API_KEY, "").strip() or None)
        secret = api_key or azure_ad_token
        if secret is None and azure_ad_token_provider is None:
            raise ConfigurationError(
                f"No Azure credential: pass api_key=, azure_ad_token= or azure_ad_token_provider=, or set {ENV_AZURE_API_KEY} or {ENV_AZURE_AD_TOKEN}"
            )
        if azure_ad_token_provider is not None and not callable(azure_ad_token_provider):
            raise ConfigurationError("azure_ad_token_provider must be a callable returning a token string")
        base_url = check_base_url(endpoint, allow_insecure_http) + "/openai"
        settings = resolve_settings(
            api_key=secret,
            require_api_key=secret is not None,
            base_url=base_url,
            default_model=default_model,
            timeout=timeout,
            max_retries=max_retries,
            max_retry_after=max_retry_after,
            retry_read_timeouts=retry_read_timeouts,
            check_model_rules=check_model_rules,
            allow_insecure_http=allow_insecure_http,
            config_file=config_file,
            models_file=models_file,
            environ=environ,
        )
        if api_key is not None:
            credentials: Dict[str, str] = {"api-key": settings.api_key}
        elif azure_ad_token is not None:
            credentials = {"Authorization": "Bearer " + settings.api_key}
        else:
            credentials = {}
        self.deployment = deployment.strip() if deployment else None
        self.api_version = api_version
        self._connect(
            settings,
            credentials,
            (secret,) if secret else (),
            extra_headers,
            token_provider=azure_ad_token_provider,
            max_download_bytes=max_download_bytes,
            # Azure retires models on dates of its own (gpt-image-1.5 two weeks after OpenAI),
            # and a deployment may carry any name: OpenAI's shutdown dates do not apply.
            rules=self._model_rules(settings, None, shutdowns=False),
            deadline=deadline,
            limits=limits,
            allow_private_image_hosts=allow_private_image_hosts,
            network=check_network(verify, cert, proxies),
        )

    def __repr__(self) -> str:
        return f"AzureOpenAIImageProvider(base_url={self.settings.base_url!r}, deployment={self.deployment!r}, api_version={self.api_version!r}, credentials=<redacted>)"

    def _route(self, endpoint: str, model: Optional[str]) -> Tuple[str, Optional[Dict[str, str]]]:
        query = {"api-version": self.api_version}
        if endpoint not in DEPLOYMENT_ENDPOINTS:
            return "/images/" + endpoint, query
        deployment = self.deployment or model
        if not deployment:
            raise ConfigurationError("No Azure deployment: pass deployment= to the provider or model= to the call")
        return "/deployments/{}/images/{}".format(quote(deployment, safe=""), endpoint), query
