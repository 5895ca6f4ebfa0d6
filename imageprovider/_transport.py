"""
imageprovider._transport
~~~~~~~~~~~~~~~~~~~~~~~~

The one way requests reach the network: a ``requests.Session`` whose
``HTTPAdapter`` carries the retry policy (:class:`~imageprovider._retry.ImageRetry`),
credentials attached per request (so they can never ride along to another
host), explicit timeouts, and :meth:`Transport.send`, which returns a
:class:`Sent` response with its body unread. Foreign errors and error
statuses are translated by :mod:`imageprovider._errors`; bodies are read by
:mod:`imageprovider._response`.

:class:`_Cycle` is the one helper that times a request cycle, hears its
retries (urllib3 makes them out of sight), counts its attempts, tells the
hooks, and writes the cycle's log record.
"""

import http.client
import logging
import os
import socket
import threading
import time
import weakref
from contextvars import ContextVar
from types import TracebackType
from typing import Any, Callable, Dict, Iterable, Mapping, MutableSet, Optional, Tuple, Type, Union
from urllib.parse import urlsplit

import requests
import urllib3.connection
import urllib3.exceptions
from requests.adapters import DEFAULT_POOLSIZE, HTTPAdapter
from requests.auth import AuthBase
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from . import _errors
from ._config import Limits, NetworkOptions, is_header_token
from ._errors import Redactor
from ._hooks import Hooks
from ._log import LOGGER, fields
from ._retry import ImageRetry, current_watcher
from ._urls import Origin, origin
from ._watchdog import WATCHDOG
from .exceptions import ConfigurationError, ImageProviderError, ProviderClosedError

log = LOGGER

Timeout = Tuple[float, float]

#: What sending can raise when the network fails.
_SEND_ERRORS = (requests.RequestException, urllib3.exceptions.HTTPError, http.client.HTTPException, OSError)

#: Checks the address a download really connected to: ``(host asked for, peer address)``; raises to refuse.
PeerCheck = Callable[[str, str], None]

#: The request cycle running in this thread, told by the connections what they connect to and read from.
#: (A type comment, because vermin reads a subscripted ContextVar annotation as needing 3.9.)
_current_cycle = ContextVar("imageprovider_connection_cycle", default=None)  # type: ContextVar[Optional[_Cycle]]


class Unchanged:
    """An argument left as it was (``None`` is a value: no deadline)."""


UNCHANGED = Unchanged()


class _WatchedConnection:
    """Tells the running cycle about each connection: the peer it reached (downloads check it), and the socket a
    response is read from (the deadline shuts it down)."""

    sock: Any
    #: The socket the last response was read from (see getresponse).
    response_socket: Any = None
    host: str

    def _new_conn(self) -> Any:
        # urllib3 (1.26 and 2.x) opens the TCP connection here and only then starts TLS or a proxy
        # tunnel: checking the peer at this point means a refused address never sees even a ClientHello.
        sock = super()._new_conn()  # type: ignore[misc]  # urllib3's, in the class this is mixed into
        cycle = _current_cycle.get()
        if cycle is not None:
            try:
                cycle.connected(self.host, sock)
            except BaseException:
                sock.close()
                raise
        return sock

    def getresponse(self, *args: Any, **kwargs: Any) -> Any:
        cycle = _current_cycle.get()
        if cycle is not None:
            cycle.reading(self.sock)
        # http.client forgets the socket of a response that ends with the connection (self.sock becomes None)
        # while the response still reads from it; close() must still be able to reach it.
        self.response_socket = self.sock
        return super().getresponse(*args, **kwargs)  # type: ignore[misc]  # as above


class _HTTPConnection(_WatchedConnection, urllib3.connection.HTTPConnection):
    pass


class _HTTPSConnection(_WatchedConnection, urllib3.connection.HTTPSConnection):
    pass


class _TrackedPool:
    """Remembers every connection it made, so that :meth:`Transport.close` can close those a response still holds
    (urllib3's own ``close`` reaches only the idle ones)."""

    def _new_conn(self) -> Any:
        conn = super()._new_conn()  # type: ignore[misc]  # urllib3's, in the class this is mixed into
        made = self.__dict__.setdefault("made", weakref.WeakSet())
        made.add(conn)
        return conn

    def close_every_connection(self) -> None:
        for conn in list(self.__dict__.get("made", ())):
            # Shut down first: a response reading from the socket holds a reference to it (its makefile), so
            # close() alone would leave the connection open until that response is collected.
            for sock in {getattr(conn, "sock", None), getattr(conn, "response_socket", None)} - {None}:
                _shut(sock)
            try:
                conn.close()
            except Exception:  # noqa: S110 (closing what may already be closed or half-open)
                pass


class _HTTPPool(_TrackedPool, HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(_TrackedPool, HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


#: The pools (and so the connections) every manager of this transport uses.
_POOL_CLASSES = {"http": _HTTPPool, "https": _HTTPSPool}


class CredentialAuth(AuthBase):
    """Adds the credential headers to requests bound for the API, and to nothing else.

    :param headers: fixed headers (API key, organization, extra headers).
    :param token_provider: called before each request for a bearer token
        (Azure Entra ID); its result is sent as ``Authorization: Bearer``.
    :param secrets: where each fetched token is added, to be scrubbed from errors and logs.
    :param api_origin: the only (scheme, host, port) credentials are ever attached for.
    """

    def __init__(
        self,
        headers: Mapping[str, str],
        token_provider: Optional[Callable[[], str]] = None,
        secrets: Optional[MutableSet[str]] = None,
        api_origin: Optional[Origin] = None,
    ) -> None:
        self._headers = dict(headers)
        self._token_provider = token_provider
        self.secrets: MutableSet[str] = secrets if secrets is not None else set()
        self._api_origin = api_origin

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        # Decided on the URL as urllib3 will connect to it, whatever decided to ask for credentials.
        if self._api_origin is not None and origin(request.url or "") != self._api_origin:
            raise ConfigurationError("Refusing to attach credentials to a request for another origin than the API's")
        if self._token_provider is not None:
            token = self._fresh_token()
            self.secrets.add(token)
            request.headers["Authorization"] = "Bearer " + token
        request.headers.update(self._headers)
        return request

    def _fresh_token(self) -> str:
        provider = self._token_provider
        if provider is None:  # __call__ asks only when there is one
            raise ConfigurationError("No token provider is configured")
        try:
            token = provider()
        except Exception as exc:
            raise ConfigurationError(f"The token provider failed: {type(exc).__name__}") from exc
        if not isinstance(token, str) or not is_header_token(token):
            raise ConfigurationError("The token provider must return a non-empty ASCII token string")
        return token

    def __repr__(self) -> str:
        names = sorted(self._headers) + (["Authorization (token provider)"] if self._token_provider else [])
        return "CredentialAuth(headers=[{}])".format(", ".join(names))


class _PolicyAdapter(HTTPAdapter):
    """An ``HTTPAdapter`` with one retry policy, optionally sharing another adapter's connection pools.

    Transports derived with other policies (a batch that leaves 429s to its
    limiter, downloads that may retry reads) get adapters of their own, so no
    policy is ever swapped in place, and one pool of connections serves them all.
    """

    def __init__(self, retry: ImageRetry, pools_of: Optional["_PolicyAdapter"] = None) -> None:
        self._pools_of = pools_of
        #: The process the pools were made in: a forked child must never use its parent's sockets.
        self.pid = os.getpid()
        #: Set by :meth:`close_pools` (on the adapter that owns the pools).
        self.closed = False
        self._fork_lock = threading.Lock()
        super().__init__(max_retries=retry)

    @property
    def owner(self) -> "_PolicyAdapter":
        """The adapter whose pools this one uses (itself, unless it was made to share another's)."""
        return self._pools_of if self._pools_of is not None else self

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        if self._pools_of is None:
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = dict(_POOL_CLASSES)
            return
        self.poolmanager = self._pools_of.poolmanager
        self.proxy_manager = self._pools_of.proxy_manager

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        owner = self.owner
        if owner.pid != os.getpid():
            owner.forget_inherited_pools()
        if self.poolmanager is not owner.poolmanager:
            self.poolmanager, self.proxy_manager = owner.poolmanager, owner.proxy_manager
        return super().send(request, *args, **kwargs)

    def forget_inherited_pools(self) -> None:
        """In a forked child: new, empty pools. The parent's connections are dropped, never closed or shut down
        (a socket shared with the parent must not be touched: its requests and responses would interleave)."""
        with self._fork_lock:
            if self.pid == os.getpid():
                return
            self.proxy_manager = {}
            # The sizes this adapter was made with (requests keeps them; the stubs do not declare them).
            super().init_poolmanager(
                getattr(self, "_pool_connections", DEFAULT_POOLSIZE),
                getattr(self, "_pool_maxsize", DEFAULT_POOLSIZE),
                block=getattr(self, "_pool_block", False),
            )
            self.poolmanager.pool_classes_by_scheme = dict(_POOL_CLASSES)
            self.pid = os.getpid()

    def close_pools(self) -> None:
        """Close every connection of every pool, those a response or stream still holds included."""
        self.closed = True
        self.shut_every_connection()
        self.close()

    def shut_every_connection(self) -> None:
        """Shut and close every connection made by this adapter's pools (not a parent process's)."""
        if self.pid != os.getpid():
            # Inherited from the parent process: its sockets are the parent's to close.
            return
        managers = [self.poolmanager, *self.proxy_manager.values()]
        for manager in managers:
            for key in list(manager.pools.keys()):
                pool = manager.pools.get(key)
                if isinstance(pool, _TrackedPool):
                    pool.close_every_connection()

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        manager.pool_classes_by_scheme = dict(_POOL_CLASSES)
        return manager


def _session(adapter: HTTPAdapter, user_agent: str) -> requests.Session:
    session = requests.Session()
    session.headers["User-Agent"] = user_agent
    session.headers["Accept"] = "application/json"
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


class Sent:
    """The response to one request cycle (retries included), its body not yet read.

    Carries what reading the body needs: the limits, and what a failure must
    report truthfully (the attempts the cycle took, the host, the timeout, the
    redactor). Its cycle's deadline runs until the body is read or the
    response closed (use it as a context manager).
    """

    def __init__(self, response: requests.Response, cycle: "_Cycle", transport: "Transport", host: str) -> None:
        self.response = response
        self.cycle = cycle
        self.attempts = cycle.attempts
        self.host = host
        self.timeout = transport.timeout
        self.redactor = transport.redactor
        self.limits = transport.limits

    @property
    def status(self) -> int:
        """The HTTP status."""
        return self.response.status_code

    @property
    def headers(self) -> Mapping[str, str]:
        """The response headers (case-insensitive)."""
        return self.response.headers

    @property
    def shown_headers(self) -> Dict[str, str]:
        """The response headers for a result to read: names lower-cased, the request id redacted and bounded.

        A result keeps only the request id as text (the rate-limit headers are
        read as numbers), and a proxy may reflect a credential into it; redacting
        every header of every response would cost each call for nothing.
        """
        shown = {str(key).lower(): value for key, value in self.response.headers.items()}
        shown.pop("x-ms-request-id", None)
        request_id = self.request_id
        if request_id is None:
            shown.pop("x-request-id", None)
        else:
            shown["x-request-id"] = request_id
        return shown

    @property
    def request_id(self) -> Optional[str]:
        """The ``x-request-id`` header, redacted and bounded."""
        return _errors.request_id_of(self.response.headers, self.redactor)

    def close(self) -> None:
        """Release the connection (the rest of the body is not read); the deadline stops."""
        self.cycle.finish()
        self.response.close()

    def __enter__(self) -> "Sent":
        return self

    def __exit__(
        self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException], traceback: Optional[TracebackType]
    ) -> None:
        self.close()

    def connection_error(self, exc: BaseException) -> ImageProviderError:
        """Translate a failure while reading this response's body."""
        return _errors.connection_error(
            exc,
            host=self.host,
            attempts=self.attempts,
            timeout=self.timeout,
            redactor=self.redactor,
            in_body=True,
            deadline=self.cycle.deadline if self.cycle.expired else None,
        )

    def check_deadline(self) -> None:
        """Raise if the call's deadline has passed (a reader's loop asks between reads).

        :raises APITimeoutError: with ``phase="deadline"``.
        """
        if self.cycle.past_deadline():
            raise _errors.deadline_error(self.host, self.cycle.deadline, self.attempts)


class _Cycle:
    """One request cycle: its attempts (hearing urllib3's retries), its time, its hooks, its log record, and its
    deadline (the watchdog shuts the socket being read down when it passes)."""

    def __init__(
        self,
        method: str,
        shown: str,
        hooks: Optional[Hooks],
        deadline: Optional[float] = None,
        peer_check: Optional[PeerCheck] = None,
    ) -> None:
        self.method = method
        self.shown = shown
        self.hooks = hooks
        self.attempts = 1
        self.started = time.monotonic()
        #: Seconds from the start the whole call may take (``None``: no deadline).
        self.deadline = deadline
        self.peer_check = peer_check
        self.expired = False
        self._socket: Optional[socket.socket] = None
        self._handle: Optional[int] = None
        if deadline is not None:
            self._handle = WATCHDOG.call_at(self.started + deadline, self._expire)

    def __enter__(self) -> "_Cycle":
        self._tokens = (current_watcher.set(self), _current_cycle.set(self))
        return self

    def __exit__(self, *exc_info: Any) -> None:
        current_watcher.reset(self._tokens[0])
        _current_cycle.reset(self._tokens[1])

    def responded(self, status: int, headers: Any) -> None:
        if self.hooks is not None:
            self.hooks.dispatch("response", status, headers)

    def retried(self, attempts: int) -> None:
        self.attempts = attempts

    def waiting(self, delay: float, reason: str, attempt: int) -> None:
        if self.deadline is not None and time.monotonic() + delay > self.started + self.deadline:
            # Raised inside urllib3's retry loop: not an error it catches, so it ends the call.
            raise _errors.deadline_error(self.shown, self.deadline, self.attempts)
        if self.hooks is not None:
            self.hooks.dispatch("retry", delay, reason, attempt)

    def connected(self, host: str, sock: Any) -> None:
        if self.peer_check is not None and sock is not None:
            try:
                peer = str(sock.getpeername()[0])
            except (OSError, IndexError):
                return
            self.peer_check(host, peer)

    def reading(self, sock: Any) -> None:
        self._socket = sock
        if self.expired:
            _shut(sock)

    def past_deadline(self) -> bool:
        """Whether the deadline has passed (the watchdog may not have run yet)."""
        return self.expired or (self.deadline is not None and time.monotonic() >= self.started + self.deadline)

    def finish(self) -> None:
        """The body is read or abandoned: the deadline no longer applies."""
        if self._handle is not None:
            WATCHDOG.cancel(self._handle)
            self._handle = None
        self._socket = None

    def _expire(self) -> None:
        self.expired = True
        if self._socket is not None:
            _shut(self._socket)

    def log(self, status: Optional[int], request_id: Optional[str], error: Optional[BaseException]) -> None:
        elapsed_ms = int((time.monotonic() - self.started) * 1000)
        outcome = str(status) if status is not None else type(error).__name__
        log.log(
            logging.WARNING if error is not None else logging.INFO,
            "%s %s -> %s in %d ms (%d attempt%s, request id %s)",
            self.method,
            self.shown,
            outcome,
            elapsed_ms,
            self.attempts,
            "" if self.attempts == 1 else "s",
            request_id,
            extra=fields(
                method=self.method,
                path=self.shown,
                status=status,
                attempts=self.attempts,
                elapsed_ms=elapsed_ms,
                request_id=request_id,
            ),
        )


def _shut(sock: Any) -> None:
    # shutdown, not close: it wakes a read blocked in another thread.
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except (OSError, AttributeError):
        pass


class Transport:
    """Sends requests to ``base_url`` (and to image hosts) and returns their responses unread.

    :param base_url: API root without trailing slash, e.g. ``https://api.openai.com/v1``.
    :param credential_headers: headers that carry secrets; sent only to ``base_url``'s origin.
    :param secrets: strings scrubbed from anything put in errors or logs.
    :param hooks: told about responses and retries of API requests.
    """

    def __init__(
        self,
        *,
        base_url: str,
        credential_headers: Mapping[str, str],
        user_agent: str,
        timeout: Timeout,
        retry: ImageRetry,
        secrets: Iterable[str] = (),
        token_provider: Optional[Callable[[], str]] = None,
        hooks: Optional[Hooks] = None,
        limits: Optional[Limits] = None,
        deadline: Optional[float] = None,
        network: Optional[NetworkOptions] = None,
    ) -> None:
        self.base_url = base_url
        #: TLS verification, client certificate and proxies (``None`` fields: from the environment).
        self.network = network if network is not None else NetworkOptions()
        self.timeout = timeout
        self.retry = retry
        self.user_agent = user_agent
        self.hooks = hooks if hooks is not None else Hooks()
        #: Bounds on what is read from any server.
        self.limits = limits if limits is not None else Limits()
        #: Seconds a whole call may take, from sending to the last byte read (``None``: no bound).
        self.deadline = deadline
        self.redactor = Redactor({secret for secret in secrets if secret})
        self.auth = CredentialAuth(credential_headers, token_provider, self.redactor.secrets, origin(base_url))
        self._adapter = _PolicyAdapter(retry)
        self.session = _session(self._adapter, user_agent)
        self._owns_pools = True
        self._download_session: Optional[requests.Session] = None

    @property
    def host(self) -> str:
        """The API's ``host[:port]``, for messages."""
        return urlsplit(self.base_url).netloc

    def derive(
        self,
        *,
        retry: Optional[ImageRetry] = None,
        timeout: Optional[Timeout] = None,
        hooks: Optional[Hooks] = None,
        deadline: Union[Optional[float], Unchanged] = UNCHANGED,
    ) -> "Transport":
        """A transport like this one (credentials, secrets, connection pools) with another policy, timeout, hooks or deadline.

        Closing it leaves the shared connections to this transport.
        """
        derived = Transport.__new__(Transport)
        derived.base_url = self.base_url
        derived.timeout = timeout if timeout is not None else self.timeout
        derived.retry = retry if retry is not None else self.retry
        derived.user_agent = self.user_agent
        derived.hooks = hooks if hooks is not None else self.hooks
        derived.limits = self.limits
        derived.deadline = self.deadline if isinstance(deadline, Unchanged) else deadline
        derived.network = self.network
        derived.redactor = self.redactor
        derived.auth = self.auth
        derived._adapter = _PolicyAdapter(derived.retry, pools_of=self._adapter)
        derived.session = _session(derived._adapter, self.user_agent)
        derived._owns_pools = False
        derived._download_session = None
        return derived

    def close(self) -> None:
        """Close every pooled connection at once, those still held by a response or stream included (a derived
        transport leaves them to the one it came from). The transport, and every one derived from it, sends
        nothing more."""
        if self._owns_pools:
            self._adapter.close_pools()
            self.session.close()

    def shut_connections(self) -> None:
        """Shut every connection of the shared pools now (requests in flight fail at once); the transport stays
        usable and opens new ones. For abandoning a batch's requests in flight."""
        self._adapter.owner.shut_every_connection()

    @property
    def closed(self) -> bool:
        """Whether the transport that owns the connections was closed."""
        return self._adapter.owner.closed

    def prepare(
        self,
        method: str,
        url: str,
        *,
        body: Optional[bytes] = None,
        content_type: Optional[str] = None,
        accept: Optional[str] = None,
        query: Optional[Mapping[str, str]] = None,
        headers: Optional[Mapping[str, str]] = None,
        credentials: bool = True,
    ) -> requests.PreparedRequest:
        """The exact request that would be sent, credentials attached when ``credentials``.

        :raises ConfigurationError: the request cannot be built (a bad URL).
        """
        merged = dict(headers or {})
        if content_type:
            merged["Content-Type"] = content_type
        if accept:
            merged["Accept"] = accept
        try:
            return self.session.prepare_request(
                requests.Request(
                    method,
                    url,
                    params=query,
                    data=body,
                    headers=merged,
                    auth=self.auth if credentials else None,
                )
            )
        except requests.RequestException as exc:
            raise ConfigurationError(
                f"Cannot build the request to {self.redactor.redact(url)[:200]}: {self.redactor.redact(str(exc))[:200]}"
            ) from exc

    def send(
        self,
        prepared: requests.PreparedRequest,
        *,
        timeout: Optional[Timeout] = None,
        shown: Optional[str] = None,
        api: bool = True,
        session: Optional[requests.Session] = None,
        peer_check: Optional[PeerCheck] = None,
    ) -> Sent:
        """Send ``prepared`` (with retries) and return the response, its body unread.

        :param shown: how the request is named in logs (a path, or a URL without its query).
        :param api: the request goes to the API: error statuses raise, and hooks hear it.
            Otherwise (an image host) the caller decides what a status means.
        :raises APIStatusError: (a subclass, by status) for a non-2xx answer from the API.
        :raises APIConnectionError: when no response could be had.
        """
        if self.closed:
            raise ProviderClosedError("This provider was closed; make a new one (or use it in a with block)")
        method = prepared.method or "GET"
        shown = shown if shown is not None else _path_of(prepared.url or "")
        limit = timeout or self.timeout
        host = self.host if api else _host_of(prepared.url)
        with _Cycle(method, shown, self.hooks if api else None, self.deadline, peer_check) as cycle:
            settings: Dict[str, Any] = {}
            try:
                # What Session.request adds beyond preparing: the network options, and the environment's for
                # what they leave open (see NetworkOptions for the order).
                settings = self.network.settings_for(prepared.url or "", session or self.session)
                response = (session or self.session).send(prepared, timeout=limit, allow_redirects=False, **settings)
            except _SEND_ERRORS as exc:
                cycle.finish()
                failure = _errors.connection_error(
                    exc,
                    host=host,
                    attempts=cycle.attempts,
                    timeout=limit,
                    redactor=self.redactor,
                    deadline=cycle.deadline if cycle.expired else None,
                    proxy=self.network.proxy_shown(prepared.url or "", settings),
                )
                cycle.log(None, None, failure)
                raise failure from _errors.without_credentials(exc)
            except BaseException:
                cycle.finish()
                raise
        sent = Sent(response, cycle, self, host)
        request_id = sent.request_id
        if api and 200 <= response.status_code < 300:
            # Error responses, final or retried, reach the hooks through the retry policy.
            self.hooks.dispatch("response", response.status_code, response.headers)
        if api and not 200 <= response.status_code < 300:
            with sent:
                error = _errors.status_error(response, cycle.attempts, self.redactor, self.limits.max_error_body_bytes)
            cycle.log(response.status_code, request_id, error)
            raise error
        cycle.log(response.status_code, request_id, None)
        return sent

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Optional[bytes] = None,
        content_type: Optional[str] = None,
        accept: Optional[str] = None,
        query: Optional[Mapping[str, str]] = None,
        headers: Optional[Mapping[str, str]] = None,
        timeout: Optional[Timeout] = None,
    ) -> Sent:
        """Prepare and send a request to ``base_url + path``; see :meth:`send`."""
        prepared = self.prepare(
            method,
            self.base_url + path,
            body=body,
            content_type=content_type,
            accept=accept,
            query=query,
            headers=headers,
        )
        return self.send(prepared, timeout=timeout, shown=path)

    @property
    def download_session(self) -> requests.Session:
        """A session sharing this transport's connections whose policy also retries reads:
        a GET of a finished image costs nothing twice."""
        if self._download_session is None:
            policy = self.retry.new(read=self.retry.total)
            self._download_session = _session(_PolicyAdapter(policy, pools_of=self._adapter), self.user_agent)
        return self._download_session


def _path_of(url: str) -> str:
    return urlsplit(url).path


def _host_of(url: Optional[str]) -> str:
    try:
        return urlsplit(url or "").netloc.rsplit("@", 1)[-1]
    except ValueError:
        return "the image host"


def redacted_headers(headers: Mapping[str, str], names: Iterable[str] = ("authorization", "api-key")) -> Dict[str, str]:
    """Request headers for display: the values of credential headers replaced by ``[REDACTED]``."""
    shown = {}
    wanted = {name.lower() for name in names}
    for name, value in headers.items():
        if name.lower() in wanted:
            scheme = value.split(" ", 1)[0] + " " if " " in value else ""
            value = scheme + _errors.REDACTED
        shown[name] = value
    return shown
