"""
imageprovider._config
~~~~~~~~~~~~~~~~~~~~~

Resolves the provider's settings from, in this order of precedence: explicit
arguments, environment variables, and an INI config file. Checks every value
before any network I/O and keeps the API key out of every repr.
"""

import ipaddress
import math
import os
import re
import stat
import sys
import warnings
from dataclasses import dataclass
from typing import Any, Dict, Mapping, NamedTuple, Optional, Tuple, Union
from urllib.parse import urlsplit

from ._log import LOGGER
from ._retry import DEFAULT_MAX_RETRIES, DEFAULT_MAX_RETRY_AFTER
from .exceptions import ConfigurationError, ConfigurationWarning
from .model_specs import DEFAULT_MODEL

log = LOGGER

#: Where requests go when no base URL is configured.
DEFAULT_BASE_URL = "https://api.openai.com/v1"
#: (connect, read) seconds. Connecting is quick; a high-quality image can take minutes.
DEFAULT_TIMEOUT: Tuple[float, float] = (5.0, 600.0)
#: Seconds a whole call may take, from sending to the last byte (retries and their waits included).
#: Longer than the slowest real generation (minutes) with the read timeout's ten minutes of silence on
#: top; short enough that a server trickling a byte a second cannot hold a worker for hours.
DEFAULT_DEADLINE = 900.0

KiB = 1024
MiB = 1024 * KiB


@dataclass(frozen=True)
class Limits:
    """Bounds on what is read from a server, each counted after decoding; going past one is a typed error
    raised before memory grows past it. The defaults are far above what a real response reaches.

    Usage::

        >>> OpenAIImageProvider(limits=Limits(max_image_bytes=128 * 1024 * 1024))
    """

    #: One response body, decoded (an images body holds every image's base64).
    max_response_bytes: int = 1024 * MiB
    #: One image, decoded (a 3840x2160 PNG is about 10 MiB; 24 MiB uncompressed).
    max_image_bytes: int = 64 * MiB
    #: The part of an images body around its images (what the JSON parser sees), and all of a body that
    #: holds no images (a batch, a file object, the models list).
    max_skeleton_bytes: int = 4 * MiB
    #: Nesting of objects and arrays in a body, outside the images.
    max_json_depth: int = 64
    #: What is read of an error body (the message is in its first bytes).
    max_error_body_bytes: int = 64 * KiB
    #: One line of an event stream, and one event (a partial image is one line of base64).
    max_stream_line_bytes: int = 32 * MiB
    #: One line of a Batch API result file (one item's response, images included).
    max_batch_line_bytes: int = 256 * MiB

    def __post_init__(self) -> None:
        for name, value in self.__dict__.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigurationError(f"Limits.{name} must be a positive whole number, not {value!r}")


#: Environment variables naming CA certificates, in the order they are honoured when no ``verify`` is given:
#: requests' own two, then OpenSSL's (which requests ignores).
CA_ENVIRONMENT = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR")


class NetworkOptions(NamedTuple):
    """TLS and proxy settings for every request of a provider.

    ``verify``: ``True`` (the default CA bundle, certifi's), a CA bundle file or
    directory, or ``False`` (no verification: warned about on every request);
    ``None`` takes the first of ``REQUESTS_CA_BUNDLE``, ``CURL_CA_BUNDLE``,
    ``SSL_CERT_FILE`` and ``SSL_CERT_DIR`` that is set, else ``True``.
    ``cert``: a client certificate for mutual TLS, as a PEM file holding the
    certificate and its key or a ``(certificate, key)`` pair.
    ``proxies``: scheme (or ``scheme://host``) to proxy URL, as in requests;
    schemes it leaves out come from ``HTTPS_PROXY``/``HTTP_PROXY``/``ALL_PROXY``,
    and ``NO_PROXY`` exempts hosts, unless ``proxies`` holds a ``no_proxy`` of its own.
    """

    verify: Union[None, bool, str] = None
    cert: Union[None, str, Tuple[str, str]] = None
    proxies: Optional[Mapping[str, str]] = None

    def settings_for(self, url: str, session: Any) -> Dict[str, Any]:
        """``proxies``, ``verify``, ``cert`` and ``stream`` for ``session.send`` of a request to ``url``."""
        verify = self.verify
        if verify is None:
            verify = next((os.environ[name] for name in CA_ENVIRONMENT if os.environ.get(name)), True)
        settings: Dict[str, Any] = session.merge_environment_settings(
            url, dict(self.proxies or {}), True, verify, self.cert
        )
        return settings

    @staticmethod
    def proxy_shown(url: str, settings: Mapping[str, Any]) -> Optional[str]:
        """The proxy a request to ``url`` goes through, without credentials or path, or ``None``."""
        from requests.utils import select_proxy  # only when a request failed

        proxy = select_proxy(url, dict(settings.get("proxies") or {}))
        if not proxy:
            return None
        try:
            parts = urlsplit(proxy if "://" in proxy else "http://" + proxy)
            return "{}://{}".format(parts.scheme, parts.netloc.rsplit("@", 1)[-1])[:200]
        except ValueError:
            return "the configured proxy"


def check_network(verify: Any, cert: Any, proxies: Any) -> NetworkOptions:
    """Check the network arguments of a provider.

    :raises ConfigurationError: a value of the wrong type, or a file that does not exist.
    """
    if verify is not None and not isinstance(verify, (bool, str, os.PathLike)):
        raise ConfigurationError(f"verify must be True, False or a CA bundle path, not {type(verify).__name__}")
    if isinstance(verify, (str, os.PathLike)):
        verify = os.path.expanduser(os.fspath(verify))
        if not os.path.exists(verify):
            raise ConfigurationError(f"verify: the CA bundle {verify!r} does not exist")
    if verify is False:
        warnings.warn(
            "TLS certificate verification is off (verify=False): anyone on the network path can read the API key",
            ConfigurationWarning,
            stacklevel=3,
        )
    if cert is not None:
        paths = (
            (cert,) if isinstance(cert, (str, os.PathLike)) else tuple(cert) if isinstance(cert, (tuple, list)) else ()
        )
        if not 1 <= len(paths) <= 2 or not all(isinstance(path, (str, os.PathLike)) for path in paths):
            raise ConfigurationError("cert must be a PEM file path or a (certificate, key) pair of paths")
        paths = tuple(os.path.expanduser(os.fspath(path)) for path in paths)
        for path in paths:
            if not os.path.exists(path):
                raise ConfigurationError(f"cert: the file {path!r} does not exist")
        cert = paths[0] if len(paths) == 1 else (paths[0], paths[1])
    if proxies is not None:
        if not isinstance(proxies, Mapping) or not all(
            isinstance(key, str) and isinstance(value, str) for key, value in proxies.items()
        ):
            raise ConfigurationError('proxies must map schemes to proxy URLs, e.g. {"https": "http://proxy:3128"}')
        proxies = dict(proxies)
    return NetworkOptions(verify, cert, proxies)


#: The INI section read from the config file.
CONFIG_SECTION = "imageprovider"

ENV_API_KEY = "OPENAI_API_KEY"
ENV_BASE_URL = "OPENAI_BASE_URL"
ENV_ORGANIZATION = "OPENAI_ORG_ID"
ENV_PROJECT = "OPENAI_PROJECT_ID"
ENV_MODEL = "IMAGEPROVIDER_MODEL"
ENV_CONFIG = "IMAGEPROVIDER_CONFIG"
ENV_MODELS = "IMAGEPROVIDER_MODELS"
ENV_TIMEOUT = "IMAGEPROVIDER_TIMEOUT"
ENV_MAX_RETRIES = "IMAGEPROVIDER_MAX_RETRIES"

_ENV_NAMES = {
    "api_key": ENV_API_KEY,
    "base_url": ENV_BASE_URL,
    "organization": ENV_ORGANIZATION,
    "project": ENV_PROJECT,
    "default_model": ENV_MODEL,
    "models_file": ENV_MODELS,
}
#: INI key -> setting name.
_FILE_KEYS = {
    "api_key": "api_key",
    "base_url": "base_url",
    "organization": "organization",
    "project": "project",
    "model": "default_model",
    "timeout": "read_timeout",
    "connect_timeout": "connect_timeout",
    "max_retries": "max_retries",
    "models_file": "models_file",
}

TimeoutArg = Union[None, float, int, Tuple[float, float]]


def default_config_path(environ: Optional[Mapping[str, str]] = None) -> str:
    """The per-user config file: ``~/.config/imageprovider/config.ini`` and its platform equivalents."""
    environ = os.environ if environ is None else environ
    if sys.platform.startswith("win"):
        base = environ.get("APPDATA") or os.path.join(os.path.expanduser("~"), "AppData", "Roaming")
    elif sys.platform == "darwin":
        base = os.path.join(os.path.expanduser("~"), "Library", "Application Support")
    else:
        base = environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(base, "imageprovider", "config.ini")


@dataclass(frozen=True, repr=False)
class Settings:
    """Fully resolved, checked provider settings."""

    api_key: str
    base_url: str
    organization: Optional[str]
    project: Optional[str]
    default_model: str
    timeout: Tuple[float, float]
    max_retries: int
    max_retry_after: float
    retry_read_timeouts: bool
    check_model_rules: bool
    #: An overlay of model table entries merged over the built-in table.
    models_file: Optional[str]
    #: Setting name -> where its value came from ("argument", "environment", a file path, "default").
    sources: Mapping[str, str]

    def __repr__(self) -> str:
        return (
            f"Settings(api_key=<redacted>, base_url={self.base_url!r}, organization={self.organization!r}, project={self.project!r}, default_model={self.default_model!r}, "
            f"timeout={self.timeout!r}, max_retries={self.max_retries!r})"
        )


def _read_config_file(path: str, required: bool) -> Dict[str, str]:
    if not os.path.exists(path):
        if required:
            raise ConfigurationError(f"Config file {path!r} does not exist")
        return {}
    # Imported here: most runs have no config file, and start-up time matters to cron jobs.
    import configparser

    parser = configparser.ConfigParser(interpolation=None)
    try:
        with open(path, encoding="utf-8") as handle:
            parser.read_file(handle, source=path)
    except (OSError, UnicodeDecodeError, configparser.Error) as exc:
        raise ConfigurationError(f"Cannot read config file {path!r}: {exc}") from exc
    if not parser.has_section(CONFIG_SECTION):
        return {}
    values = {}
    for key, value in parser.items(CONFIG_SECTION):
        if key not in _FILE_KEYS:
            # A warning, not an error: an application that passes everything it needs must not be stopped by a
            # key a newer (or older) version of the library wrote into the user's file.
            warnings.warn(
                "Unknown setting {!r} in section [{}] of {!r} is ignored; known settings: {}".format(
                    key[:100], CONFIG_SECTION, path, ", ".join(sorted(_FILE_KEYS))
                ),
                ConfigurationWarning,
                stacklevel=5,
            )
            continue
        values[_FILE_KEYS[key]] = value.strip()
    if values.get("models_file"):
        # A relative path in a config file is relative to that file, not to wherever the program runs.
        values["models_file"] = os.path.join(
            os.path.dirname(os.path.abspath(path)), os.path.expanduser(values["models_file"])
        )
    if values.get("api_key"):
        _warn_if_readable_by_others(path)
    return values


def _warn_if_readable_by_others(path: str) -> None:
    if os.name != "posix":
        return
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        # A warning shown by default: logging is often not configured where a config file is first set up.
        warnings.warn(
            f"Config file {path} holds an API key and is readable by other users; run: chmod 600 {path}",
            ConfigurationWarning,
            stacklevel=4,
        )


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine (localhost, 127.0.0.0/8, ::1)."""
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_base_url(url: str, allow_insecure_http: bool) -> str:
    """Return ``url`` without trailing slash, or raise :class:`ConfigurationError`."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as exc:
        raise ConfigurationError(f"base_url {url!r} is not a valid URL: {exc}") from exc
    if parts.scheme not in ("http", "https") or not host:
        raise ConfigurationError(f"base_url must be an http(s) URL with a host, like {DEFAULT_BASE_URL!r}; got {url!r}")
    if parts.username or parts.password:
        raise ConfigurationError("base_url must not contain credentials; set the API key instead")
    if parts.query or parts.fragment:
        raise ConfigurationError(f"base_url must not have a query or fragment; got {url!r}")
    if parts.scheme == "http" and not is_loopback(host) and not allow_insecure_http:
        raise ConfigurationError(
            f"Refusing to send the API key over plain http to {host!r}: use https, or pass "
            "allow_insecure_http=True if this network is trusted"
        )
    return url.rstrip("/")


def is_header_token(value: str) -> bool:
    """Non-empty printable ASCII without spaces: safe to send as a credential header value."""
    return bool(value) and all(0x21 <= ord(char) <= 0x7E for char in value)


def _check_header_value(name: str, value: str, secret: bool = False) -> str:
    if not is_header_token(value):
        shown = "" if secret else f" {value!r}"
        raise ConfigurationError(
            f"{name}{shown} must be non-empty printable ASCII without spaces (it is sent in an HTTP header)"
        )
    return value


_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")


def check_extra_headers(headers: Optional[Mapping[str, str]]) -> Dict[str, str]:
    """Check caller-supplied headers: token names, values without line breaks."""
    if headers is None:
        return {}
    if not isinstance(headers, Mapping):
        raise ConfigurationError("extra_headers must be a mapping of header names to values")
    checked = {}
    for name, value in headers.items():
        if not isinstance(name, str) or not _HEADER_NAME.match(name):
            raise ConfigurationError(f"extra_headers: {name!r} is not a valid header name")
        if not isinstance(value, str) or any(char in value for char in "\r\n\0"):
            raise ConfigurationError(f"extra_headers: the value of {name!r} must be a string without line breaks")
        try:
            value.encode("latin-1")
        except UnicodeEncodeError:
            raise ConfigurationError(f"extra_headers: the value of {name!r} must be Latin-1 text") from None
        checked[name] = value
    return checked


def _positive_seconds(name: str, value: Any) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise ConfigurationError(f"{name} must be a number of seconds, not {value!r}") from None
    if isinstance(value, bool) or not math.isfinite(seconds) or seconds <= 0:
        raise ConfigurationError(f"{name} must be a positive, finite number of seconds, not {value!r}")
    return seconds


def resolve_timeout(timeout: Any, default: Tuple[float, float] = DEFAULT_TIMEOUT) -> Tuple[float, float]:
    """``None`` -> ``default``; a number -> read timeout (connect keeps its default); a pair -> (connect, read)."""
    if timeout is None:
        return default
    if isinstance(timeout, (tuple, list)):
        if len(timeout) != 2:
            raise ConfigurationError(f"timeout must be a number or a (connect, read) pair, not {timeout!r}")
        return (_positive_seconds("connect timeout", timeout[0]), _positive_seconds("read timeout", timeout[1]))
    return (default[0], _positive_seconds("timeout", timeout))


def _check_path(name: str, value: Any) -> Optional[str]:
    if value is None:
        return None
    if not isinstance(value, (str, os.PathLike)):
        raise ConfigurationError(f"{name} must be a file path, not {type(value).__name__}")
    return os.path.expanduser(os.fspath(value))


def check_deadline(value: Any) -> Optional[float]:
    """``None`` (no deadline) or a positive number of seconds.

    :raises ConfigurationError: anything else.
    """
    if value is None:
        return None
    return _positive_seconds("deadline", value)


def check_max_retries(value: Any) -> int:
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            raise ConfigurationError(f"max_retries must be a whole number, not {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
        raise ConfigurationError(f"max_retries must be a whole number from 0 to 100, not {value!r}")
    return value


def resolve_settings(
    *,
    api_key: Optional[str] = None,
    base_url: Optional[str] = None,
    organization: Optional[str] = None,
    project: Optional[str] = None,
    default_model: Optional[str] = None,
    timeout: TimeoutArg = None,
    max_retries: Optional[int] = None,
    max_retry_after: float = DEFAULT_MAX_RETRY_AFTER,
    retry_read_timeouts: bool = False,
    check_model_rules: bool = True,
    allow_insecure_http: bool = False,
    config_file: Optional[str] = None,
    models_file: Optional[str] = None,
    environ: Optional[Mapping[str, str]] = None,
    require_api_key: bool = True,
) -> Settings:
    """Merge arguments > environment > config file > defaults, and check the result.

    With ``require_api_key=False`` (a token provider authenticates instead), the
    key is the argument alone and may be empty.

    :raises ConfigurationError: no API key anywhere, or a value is unusable.
    """
    environ = os.environ if environ is None else environ
    explicit_path = config_file or environ.get(ENV_CONFIG) or None
    path = explicit_path or default_config_path(environ)
    env_timeout = (environ.get(ENV_TIMEOUT) or "").strip()
    env_retries = (environ.get(ENV_MAX_RETRIES) or "").strip()
    given = {
        "api_key": api_key,
        "base_url": base_url,
        "organization": organization,
        "project": project,
        "default_model": default_model,
        "models_file": models_file,
    }
    still_open = [
        name for name, value in given.items() if value is None and not (environ.get(_ENV_NAMES[name]) or "").strip()
    ]
    if not isinstance(timeout, (tuple, list)) and "," not in env_timeout:
        still_open.append("timeout")
    if max_retries is None and not env_retries:
        still_open.append("max_retries")
    # The file is read for what arguments and the environment left open only: an application that passes every
    # setting is not affected by the per-user file of whoever runs it.
    from_file = _read_config_file(path, required=explicit_path is not None) if still_open or explicit_path else {}

    arguments = given
    values: Dict[str, Optional[str]] = {}
    sources: Dict[str, str] = {}
    for name, argument in arguments.items():
        env_value = (environ.get(_ENV_NAMES[name]) or "").strip()
        for value, source in ((argument, "argument"), (env_value, "environment"), (from_file.get(name), path)):
            if value is not None and (not isinstance(value, str) or value.strip()):
                values[name] = value.strip() if isinstance(value, str) else value
                sources[name] = source
                break
        else:
            values[name] = None
            sources[name] = "default"

    key = values["api_key"] if require_api_key else (api_key or "")
    if not key and require_api_key:
        raise ConfigurationError(
            f"No OpenAI API key found. Set it in one of three places: the api_key argument, the {ENV_API_KEY} environment "
            f"variable, or 'api_key = ...' in the [{CONFIG_SECTION}] section of the config file ({path}, or the file named by {ENV_CONFIG})."
        )
    if not isinstance(key, str):
        raise ConfigurationError("api_key must be a string")
    if key:
        _check_header_value("The API key", key, secret=True)
    for name in ("organization", "project"):
        if values[name] is not None:
            _check_header_value(name, str(values[name]))
    model = values["default_model"] or DEFAULT_MODEL
    if not isinstance(model, str):
        raise ConfigurationError(f"default_model must be a string, not {model!r}")

    # The file's timeouts are the defaults an argument refines: timeout=30 sets
    # the read timeout and keeps the file's connect timeout.
    default_timeout = resolve_timeout(
        (from_file.get("connect_timeout", DEFAULT_TIMEOUT[0]), from_file.get("read_timeout", DEFAULT_TIMEOUT[1]))
    )
    if env_timeout:
        # IMAGEPROVIDER_TIMEOUT: "READ" or "CONNECT,READ", in seconds, between the argument and the file.
        parts = [part.strip() for part in env_timeout.split(",")]
        try:
            default_timeout = resolve_timeout(tuple(parts) if len(parts) > 1 else parts[0], default_timeout)
        except ConfigurationError as exc:
            raise ConfigurationError(f"{ENV_TIMEOUT}: {exc}") from None
    # An int from the argument, or the environment's or the file's text; check_max_retries reads and checks either.
    retries: Any = max_retries
    if retries is None and env_retries:
        retries = env_retries
    elif retries is None and "max_retries" in from_file:
        retries = from_file["max_retries"]
    return Settings(
        api_key=key,
        base_url=check_base_url(str(values["base_url"] or DEFAULT_BASE_URL), allow_insecure_http),
        organization=values["organization"],
        project=values["project"],
        default_model=model,
        timeout=resolve_timeout(timeout, default_timeout),
        max_retries=check_max_retries(DEFAULT_MAX_RETRIES if retries is None else retries),
        max_retry_after=_positive_seconds("max_retry_after", max_retry_after),
        retry_read_timeouts=bool(retry_read_timeouts),
        check_model_rules=bool(check_model_rules),
        models_file=_check_path("models_file", values["models_file"]),
        sources=sources,
    )
