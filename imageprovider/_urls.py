"""
imageprovider._urls
~~~~~~~~~~~~~~~~~~~

URLs read exactly as the transport will connect: requests and urllib3 parse
with ``urllib3.util.parse_url``, and a URL that ``urllib.parse`` reads
differently (a backslash in the authority, say) is refused outright, so that
no check is ever made on another host than the one connected to.
"""

import functools
import ipaddress
from typing import Optional, Tuple
from urllib.parse import urlsplit

from urllib3.util import parse_url

from .exceptions import ResponseValidationError

Origin = Tuple[str, str, Optional[int]]


def address_kind(address: str) -> str:
    """``loopback``, ``link-local``, ``private`` (private, unique-local, reserved, multicast...) or ``public``."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    mapped = getattr(ip, "ipv4_mapped", None)
    if mapped is not None:
        ip = mapped
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_private or ip.is_reserved or ip.is_multicast or ip.is_unspecified or not ip.is_global:
        return "private"
    return "public"


def literal_kind(host: str) -> Optional[str]:
    """The kind of address ``host`` names when it is an address (or ``localhost``); ``None`` for other names."""
    if host.lower().rstrip(".") == "localhost":
        return "loopback"
    try:
        return address_kind(host.strip("[]"))
    except ValueError:
        return None


def parse(url: str) -> Tuple[str, str, Optional[int]]:
    """``(scheme, host, port)`` of ``url`` as urllib3 (and so requests) will connect, refusing any ambiguity.

    :raises ResponseValidationError: not a plain absolute http(s) URL: a backslash or a control character
        before the query, credentials in it, or parsers that read it differently.
    """
    head = url.split("#", 1)[0].split("?", 1)[0]
    if "\\" in head or any(ord(char) < 0x21 or ord(char) == 0x7F for char in url):
        raise ResponseValidationError("The image URL holds a backslash, a space or a control character; refused")
    try:
        parsed = parse_url(url)
        split = urlsplit(url)
        split_port = split.port
    except ValueError as exc:  # urllib3's LocationParseError is one, and a bad port
        raise ResponseValidationError(f"The image URL is not a valid URL ({type(exc).__name__})") from None
    scheme = (parsed.scheme or "").lower()
    host = (parsed.host or "").lower().strip("[]").rstrip(".")
    if scheme not in ("http", "https"):
        raise ResponseValidationError(
            "Refusing to fetch the image: only https URLs are downloaded, not {}".format(repr(scheme + ":")[:20])
        )
    if parsed.auth or "@" in (split.netloc or ""):
        raise ResponseValidationError(f"The image URL for {host or 'its host'} carries credentials; refused")
    if (scheme, host, parsed.port) != (split.scheme.lower(), (split.hostname or "").lower().rstrip("."), split_port):
        raise ResponseValidationError("The image URL reads differently to different parsers; refused")
    if not host:
        raise ResponseValidationError("The image URL has no host")
    return scheme, host, parsed.port


@functools.lru_cache(maxsize=256)
def origin(url: str) -> Origin:
    """(scheme, host, port) of ``url``, the port made explicit, as the transport connects.

    Remembered for the last URLs asked about: every request's credentials are
    checked against its URL, and an API's few endpoint URLs repeat.
    """
    scheme, host, port = parse(url)
    return scheme, host, port or {"https": 443, "http": 80}.get(scheme)


def loggable(url: str) -> str:
    """``url`` without credentials or query: signed storage URLs carry their secrets in the query string."""
    try:
        parts = urlsplit(url)
        return "{}://{}{}".format(parts.scheme, parts.netloc.rsplit("@", 1)[-1], parts.path)[:300]
    except ValueError:
        return "the image URL"
