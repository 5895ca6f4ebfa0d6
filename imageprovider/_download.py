"""
imageprovider._download
~~~~~~~~~~~~~~~~~~~~~~~

URL results (DALL-E, compatible servers): which URLs may be fetched, decided
on the URL exactly as the transport will read it; redirects followed by hand
so that credentials go only to the API's own origin; the address really
connected to checked against the policy (no DNS rebinding between a check and
the connection); and a limit on the size of what is read.
"""

from dataclasses import dataclass
from typing import IO, FrozenSet, Optional, Tuple
from urllib.parse import urljoin, urlsplit

from . import _errors, _response
from ._transport import Timeout, Transport
from ._urls import address_kind, literal_kind, loggable, origin, parse
from .exceptions import ResponseValidationError

#: Redirects followed from an image URL before giving up.
MAX_REDIRECTS = 5
#: Statuses that mean the image is gone (OpenAI's URLs live 60 minutes).
EXPIRED_STATUSES = (403, 404, 410)


@dataclass(frozen=True)
class DownloadPolicy:
    """Where URL results may be fetched from.

    https only (plain http from this machine when the API itself is plain http
    on this machine, as the stand-in is); public addresses, plus the kind of
    network the API itself is on (loopback for a local server), plus loopback,
    private and link-local ones when ``allow_private_image_hosts`` says so.
    """

    #: Whether plain http to this machine is fetched.
    allow_http: bool
    #: The kinds of address (see :func:`address_kind`) downloads may connect to.
    allowed: FrozenSet[str]

    @classmethod
    def for_api(cls, base_url: str, *, allow_private: bool = False) -> "DownloadPolicy":
        """The policy for a provider whose API is at ``base_url``."""
        split = urlsplit(base_url)
        api_kind = literal_kind(split.hostname or "") or "public"
        allowed = {"public", api_kind}
        if allow_private:
            allowed |= {"loopback", "private", "link-local"}
        return cls(allow_http=split.scheme == "http" and api_kind == "loopback", allowed=frozenset(allowed))

    def check_url(self, url: str) -> Tuple[str, str, Optional[int]]:
        """Refuse a URL the policy does not fetch; return how it parses.

        :raises ResponseValidationError: naming the host.
        """
        scheme, host, port = parse(url)
        kind = literal_kind(host)
        if scheme != "https" and not (self.allow_http and kind == "loopback"):
            raise ResponseValidationError(
                f"Refusing to fetch the image from {host[:100]}: only https URLs are downloaded (plain http only from "
                "this machine, when the API itself is plain http here)"
            )
        if kind is not None and kind not in self.allowed:
            raise self._refusal(host, kind)
        return scheme, host, port

    def check_peer(self, url_host: str, connected_host: str, address: str) -> None:
        """Refuse the address a download really connected to, if the policy does not allow its kind.

        A connection to another host than the URL's goes through a proxy,
        which resolves the name itself: only the URL's literal address (checked
        by :meth:`check_url`) can be judged then.

        :raises ResponseValidationError: naming the host and the kind of address.
        """
        if connected_host.lower().strip("[]") != url_host.strip("[]"):
            return
        try:
            kind = address_kind(address)
        except ValueError:
            return
        if kind not in self.allowed:
            raise self._refusal(url_host, kind)

    @staticmethod
    def _refusal(host: str, kind: str) -> ResponseValidationError:
        return ResponseValidationError(
            f"Refusing to fetch the image from {host[:100]}: it is a {kind} address; pass "
            "allow_private_image_hosts=True if this image host is yours"
        )


def download(
    transport: Transport,
    url: str,
    sink: IO[bytes],
    *,
    max_bytes: int,
    policy: Optional[DownloadPolicy] = None,
    timeout: Optional[Timeout] = None,
) -> int:
    """Stream the image at ``url`` into ``sink``; return the number of bytes written.

    Every hop is checked against ``policy`` (the API's network by default);
    credentials go to the API's exact origin and nowhere else; reads are
    retried like connection errors (a GET of a finished image costs nothing twice).

    :raises ImageExpiredError: the URL answered 403, 404 or 410.
    :raises ResponseValidationError: the URL is not fetchable, or the image is larger than ``max_bytes``.
    """
    policy = policy if policy is not None else DownloadPolicy.for_api(transport.base_url)
    api_origin = origin(transport.base_url)
    for _ in range(MAX_REDIRECTS + 1):
        scheme, host, port = policy.check_url(url)
        same_origin = (scheme, host, port or {"https": 443, "http": 80}.get(scheme)) == api_origin
        prepared = transport.prepare("GET", url, accept="image/*", credentials=same_origin)

        def check_peer(connected_host: str, address: str, url_host: str = host) -> None:
            policy.check_peer(url_host, connected_host, address)

        sent = transport.send(
            prepared,
            timeout=timeout,
            shown=loggable(url),
            api=False,
            session=transport.download_session,
            peer_check=check_peer,
        )
        response = sent.response
        if response.is_redirect and response.headers.get("location"):
            location = response.headers["location"]
            sent.close()
            url = urljoin(url, location)
            continue
        if response.status_code in EXPIRED_STATUSES:
            with sent:
                raise _errors.expired_error(response, sent.attempts, transport.redactor)
        if not 200 <= response.status_code < 300:
            with sent:
                raise _errors.status_error(
                    response, sent.attempts, transport.redactor, 4096, source=f"The image host {host}"
                )
        return _response.copy_body(sent, sink, max_bytes, what="The image", limit="download limit (max_download_bytes)")
    raise ResponseValidationError(f"The image URL redirected more than {MAX_REDIRECTS} times")
