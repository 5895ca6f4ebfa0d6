"""
imageprovider._download
~~~~~~~~~~~~~~~~~~~~~~~

URL results (DALL-E, compatible servers): the policy for which URLs are
fetched, redirects followed by hand so that credentials go only to the API's
own origin, and a limit on the size of what is read.
"""

from typing import IO, Optional, Tuple
from urllib.parse import urljoin, urlsplit

from . import _errors, _response
from ._config import is_loopback
from ._transport import Timeout, Transport
from .exceptions import ResponseValidationError

#: Redirects followed from an image URL before giving up.
MAX_REDIRECTS = 5
#: Statuses that mean the image is gone (OpenAI's URLs live 60 minutes).
EXPIRED_STATUSES = (403, 404, 410)


def download(
    transport: Transport, url: str, sink: IO[bytes], *, max_bytes: int, timeout: Optional[Timeout] = None
) -> int:
    """Stream the image at ``url`` into ``sink``; return the number of bytes written.

    Only https URLs (or http on loopback) are fetched. Redirects are followed
    by hand: credentials go to the API's own origin and nowhere else, at every
    hop. Reads are retried like connection errors: a GET of a finished image
    costs nothing twice.

    :raises ImageExpiredError: the URL answered 403, 404 or 410.
    :raises ResponseValidationError: the URL is not fetchable, or the image is larger than ``max_bytes``.
    """
    for _ in range(MAX_REDIRECTS + 1):
        check_url(url)
        prepared = transport.prepare(
            "GET", url, accept="image/*", credentials=origin(url) == origin(transport.base_url)
        )
        sent = transport.send(
            prepared, timeout=timeout, shown=loggable(url), api=False, session=transport.download_session
        )
        response = sent.response
        if response.is_redirect and response.headers.get("location"):
            url = urljoin(url, response.headers["location"])
            sent.close()
            continue
        if response.status_code in EXPIRED_STATUSES:
            with response:
                raise _errors.expired_error(response, sent.attempts, transport.redactor)
        if not 200 <= response.status_code < 300:
            with response:
                raise _errors.status_error(response, sent.attempts, transport.redactor)
        return _response.copy_body(sent, sink, max_bytes, what="The image", limit="download limit")
    raise ResponseValidationError(f"The image URL redirected more than {MAX_REDIRECTS} times")


def origin(url: str) -> Tuple[str, str, Optional[int]]:
    """(scheme, host, port) of ``url``, the port made explicit."""
    parts = urlsplit(url)
    port = parts.port or {"https": 443, "http": 80}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), port


def check_url(url: str) -> None:
    """Refuse a URL that is not https (or http on this machine).

    :raises ResponseValidationError: naming the URL without its query.
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        _ = parts.port  # parsed lazily: a port like ":99999" or ":abc" raises only here
    except ValueError:
        raise ResponseValidationError("The image URL is not a valid URL") from None
    if parts.scheme == "https" and host:
        return
    if parts.scheme == "http" and is_loopback(host):
        return
    raise ResponseValidationError(
        f"Refusing to fetch the image from {loggable(url)!r}: only https URLs (or http on this machine) are downloaded"
    )


def loggable(url: str) -> str:
    """``url`` without credentials or query: signed storage URLs carry their secrets in the query string."""
    parts = urlsplit(url)
    return "{}://{}{}".format(parts.scheme, parts.netloc.rsplit("@", 1)[-1], parts.path)
