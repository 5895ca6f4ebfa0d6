"""Network options (imageprovider._config.NetworkOptions): CA bundles, client certificates and proxies, and the
order in which arguments and the environment decide them. Real TLS (a CA made here with trustme) and a real
forwarding proxy on loopback."""

import http.client
import json
import socket
import ssl
import warnings
from pathlib import Path
from typing import Any, Dict, Iterator
from urllib.parse import urlsplit

import pytest
import trustme
from helpers import API_KEY, PNG_B64
from scripted_server import RawServer, Seen, head, send, unused_port

from imageprovider import APIConnectionError, ConfigurationError, ConfigurationWarning, OpenAIImageProvider

#: Every variable that points requests (or OpenSSL) at CA certificates or proxies.
NETWORK_VARIABLES = (
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
)
BODY = json.dumps({"created": 1, "data": [{"b64_json": PNG_B64}]}).encode()


@pytest.fixture(autouse=True)
def no_network_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """This machine sets some of them (REQUESTS_CA_BUNDLE, SSL_CERT_FILE): each test sets its own."""
    for name in NETWORK_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


def images(request: Seen, connection: socket.socket) -> bool:
    return send(connection, head(200, {"Content-Type": "application/json", "Content-Length": str(len(BODY))}) + BODY)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def files(ca: trustme.CA, tmp_path: Path) -> Dict[str, str]:
    """The CA's bundle, another CA's bundle, and a client certificate with its key, as files."""
    paths = {"ca": tmp_path / "ca.pem", "other_ca": tmp_path / "other.pem", "client": tmp_path / "client.pem"}
    ca.cert_pem.write_to_path(str(paths["ca"]))
    trustme.CA().cert_pem.write_to_path(str(paths["other_ca"]))
    ca.issue_cert("client@example.invalid").private_key_and_cert_chain_pem.write_to_path(str(paths["client"]))
    return {name: str(path) for name, path in paths.items()}


def tls_server(ca: trustme.CA, client_ca: Any = None) -> RawServer:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    if client_ca is not None:
        client_ca.configure_trust(context)
        context.verify_mode = ssl.CERT_REQUIRED
    return RawServer(images, tls=context)


def generate(server: RawServer, **options: Any) -> int:
    with OpenAIImageProvider(api_key=API_KEY, base_url=server.base_url, max_retries=0, **options) as provider:
        return len(provider.generate_image("a fox").images)


# -- certificate authorities -----------------------------------------------------------------


def test_verify_names_the_ca_bundle(ca: trustme.CA, files: Dict[str, str]) -> None:
    with tls_server(ca) as server:
        assert generate(server, verify=files["ca"]) == 1


def test_without_the_ca_the_certificate_is_refused(ca: trustme.CA) -> None:
    with tls_server(ca) as server:
        with pytest.raises(APIConnectionError, match="TLS error"):
            generate(server)
        assert server.seen == []


def test_ssl_cert_file_is_honoured(ca: trustme.CA, files: Dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """requests ignores OpenSSL's variable; the library reads it after requests' own two."""
    monkeypatch.setenv("SSL_CERT_FILE", files["ca"])
    with tls_server(ca) as server:
        assert generate(server) == 1


@pytest.mark.parametrize(
    "environment, expected",
    [
        ({"REQUESTS_CA_BUNDLE": "ca", "SSL_CERT_FILE": "other_ca"}, "ok"),
        ({"REQUESTS_CA_BUNDLE": "other_ca", "SSL_CERT_FILE": "ca"}, "refused"),
        ({"CURL_CA_BUNDLE": "ca", "SSL_CERT_FILE": "other_ca"}, "ok"),
        ({"SSL_CERT_FILE": "other_ca", "SSL_CERT_DIR": "ca"}, "refused"),
    ],
    ids=["requests-before-ssl", "requests-wins", "curl-before-ssl", "file-before-dir"],
)
def test_the_order_of_the_environment(
    ca: trustme.CA, files: Dict[str, str], monkeypatch: pytest.MonkeyPatch, environment: Dict[str, str], expected: str
) -> None:
    for name, which in environment.items():
        monkeypatch.setenv(name, files[which])
    with tls_server(ca) as server:
        if expected == "ok":
            assert generate(server) == 1
        else:
            with pytest.raises(APIConnectionError, match="TLS error"):
                generate(server)


def test_an_explicit_verify_beats_requests_ca_bundle(
    ca: trustme.CA, files: Dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """It once did not: REQUESTS_CA_BUNDLE replaced whatever the session said."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", files["other_ca"])
    with tls_server(ca) as server:
        assert generate(server, verify=files["ca"]) == 1


def test_verify_false_warns_and_connects(ca: trustme.CA) -> None:
    with tls_server(ca) as server:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert generate(server, verify=False) == 1
    kinds = {warning.category.__name__ for warning in caught}
    assert ConfigurationWarning in {warning.category for warning in caught}
    assert "InsecureRequestWarning" in kinds  # urllib3's, on the request itself


def test_a_missing_ca_bundle_or_certificate_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="verify"):
        OpenAIImageProvider(api_key=API_KEY, verify=str(tmp_path / "nowhere.pem"))
    with pytest.raises(ConfigurationError, match="cert"):
        OpenAIImageProvider(api_key=API_KEY, cert=(str(tmp_path / "c.pem"), str(tmp_path / "k.pem")))
    with pytest.raises(ConfigurationError, match="proxies"):
        OpenAIImageProvider(api_key=API_KEY, proxies=["http://proxy:3128"])  # type: ignore[arg-type]


# -- mutual TLS ------------------------------------------------------------------------------


def test_a_client_certificate_is_presented(ca: trustme.CA, files: Dict[str, str]) -> None:
    with tls_server(ca, client_ca=ca) as server:
        assert generate(server, verify=files["ca"], cert=files["client"]) == 1
        subject = dict(part[0] for part in server.client_certs[-1]["subject"])
        assert subject.get("commonName") or server.client_certs[-1].get("subjectAltName")


def test_without_a_client_certificate_the_server_refuses(ca: trustme.CA, files: Dict[str, str]) -> None:
    with tls_server(ca, client_ca=ca) as server:
        with pytest.raises(APIConnectionError):
            generate(server, verify=files["ca"])
        assert server.seen == []


# -- proxies -----------------------------------------------------------------------------------


@pytest.fixture
def proxy() -> Iterator[RawServer]:
    """A forwarding HTTP proxy: takes ``POST http://host:port/path`` and passes it on."""

    def forward(request: Seen, connection: socket.socket) -> bool:
        target = urlsplit(request.target)
        upstream = http.client.HTTPConnection(target.hostname, target.port, timeout=10)
        headers = {
            name: value for name, value in request.named_headers.items() if name.lower() not in ("proxy-connection",)
        }
        upstream.request(request.method, target.path, body=request.body, headers=headers)
        answer = upstream.getresponse()
        content = answer.read()
        upstream.close()
        fields = {"Content-Type": answer.getheader("Content-Type", ""), "Content-Length": str(len(content))}
        send(connection, head(answer.status, fields) + content)
        return False

    with RawServer(forward) as server:
        yield server


def test_proxies_argument_sends_through_the_proxy(proxy: RawServer) -> None:
    with RawServer(images) as api:
        assert generate(api, proxies={"http": proxy.origin}) == 1
        assert [request.target for request in proxy.seen] == [api.base_url + "/images/generations"]
        assert len(api.seen) == 1


def test_http_proxy_from_the_environment_and_no_proxy(proxy: RawServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.origin)
    with RawServer(images) as api:
        assert generate(api) == 1
        assert len(proxy.seen) == 1
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        assert generate(api) == 1
        assert len(proxy.seen) == 1  # bypassed
        assert len(api.seen) == 2


def test_a_dead_proxy_is_named_in_the_error() -> None:
    dead = f"http://127.0.0.1:{unused_port()}"
    with RawServer(images) as api:
        with pytest.raises(APIConnectionError) as caught:
            generate(api, proxies={"http": dead})
        assert api.seen == []
    assert f"through the proxy {dead}" in str(caught.value)
    assert "127.0.0.1" in str(caught.value)


def test_proxy_credentials_never_reach_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    port = unused_port()
    with RawServer(images) as api:
        with pytest.raises(APIConnectionError) as caught:
            generate(api, proxies={"http": f"http://user:proxy-secret@127.0.0.1:{port}"})
    assert "proxy-secret" not in str(caught.value) and f"http://127.0.0.1:{port}" in str(caught.value)
