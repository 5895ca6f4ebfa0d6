"""Azure OpenAI: deployment routing, api-version, api-key / Entra token auth, Azure error shapes."""

import pytest
from helpers import PNG, images_body, make_png

from imageprovider import (
    AuthenticationError,
    AzureOpenAIImageProvider,
    ConfigurationError,
    NotFoundError,
)

ENDPOINT = "https://my-resource.openai.azure.com"
VERSION = "2025-04-01-preview"
GENERATIONS = ENDPOINT + "/openai/deployments/img-deployment/images/generations"


@pytest.fixture
def azure():
    """An Azure provider with a fixed deployment and an API key."""
    with AzureOpenAIImageProvider(
        api_key="azure-key-123", endpoint=ENDPOINT, deployment="img-deployment", api_version=VERSION
    ) as provider:
        yield provider


def test_generation_url_and_api_key_header(mocked, azure):
    """{endpoint}/openai/deployments/{deployment}/images/generations?api-version=..., key as api-key."""
    mocked.add("POST", GENERATIONS, json=images_body())
    result = azure.generate_image("A lighthouse")
    request = mocked.calls[0].request
    assert request.url == GENERATIONS + "?api-version=" + VERSION
    assert request.headers["api-key"] == "azure-key-123"
    assert "Authorization" not in request.headers
    assert result.images[0].data == PNG


def test_edit_goes_through_the_deployment(mocked, azure):
    """Edits are deployment-routed like generations."""
    url = ENDPOINT + "/openai/deployments/img-deployment/images/edits"
    mocked.add("POST", url, json=images_body())
    azure.edit_image("Add a hat", make_png(8, 8))
    assert mocked.calls[0].request.url == url + "?api-version=" + VERSION


def test_variations_are_not_deployment_routed(mocked, azure):
    """Azure serves variations at {endpoint}/openai/images/variations."""
    url = ENDPOINT + "/openai/images/variations"
    mocked.add("POST", url, json={"created": 1, "data": [{"url": "https://blob.example/v.png"}]})
    azure.create_variation(make_png(8, 8))
    assert mocked.calls[0].request.url == url + "?api-version=" + VERSION


def test_model_is_the_deployment_when_none_is_configured(mocked):
    """Without deployment=, each call's model names the deployment (URL-quoted)."""
    mocked.add("POST", ENDPOINT + "/openai/deployments/gpt-image-1/images/generations", json=images_body())
    mocked.add("POST", ENDPOINT + "/openai/deployments/team%2Fimages%201/images/generations", json=images_body())
    with AzureOpenAIImageProvider(api_key="k", endpoint=ENDPOINT + "/", api_version=VERSION) as provider:
        provider.generate_image("x", model="gpt-image-1")
        provider.generate_image("x", model="team/images 1", extra_body=None)
    assert mocked.calls[0].request.url.startswith(ENDPOINT + "/openai/deployments/gpt-image-1/images/generations?")
    assert "/deployments/team%2Fimages%201/images/generations?" in mocked.calls[1].request.url


def test_entra_token_is_sent_as_bearer(mocked):
    """An Entra ID token goes in Authorization, and no api-key is sent."""
    mocked.add("POST", GENERATIONS, json=images_body())
    with AzureOpenAIImageProvider(
        azure_ad_token="entra-token-xyz", endpoint=ENDPOINT, deployment="img-deployment", api_version=VERSION
    ) as provider:
        provider.generate_image("x")
    headers = mocked.calls[0].request.headers
    assert headers["Authorization"] == "Bearer entra-token-xyz"
    assert "api-key" not in headers


def test_token_provider_is_asked_before_each_request(mocked):
    """A callable is called once per request, and each request carries the token it returned."""
    mocked.add("POST", GENERATIONS, json=images_body())
    tokens = iter(["token-one", "token-two", "token-three"])
    asked = []

    def provider_callable():
        asked.append(1)
        return next(tokens)

    with AzureOpenAIImageProvider(
        azure_ad_token_provider=provider_callable, endpoint=ENDPOINT, deployment="img-deployment", api_version=VERSION
    ) as provider:
        assert asked == []
        provider.generate_image("x")
        provider.generate_image("y")
    assert len(asked) == 2
    assert [call.request.headers["Authorization"] for call in mocked.calls] == ["Bearer token-one", "Bearer token-two"]


@pytest.mark.parametrize("result", [RuntimeError("expired"), None, "", "has space", 42])
def test_failing_token_provider_is_a_configuration_error(mocked, result):
    """A callable that raises or returns no usable token gives ConfigurationError, and nothing is sent."""

    def provider_callable():
        if isinstance(result, Exception):
            raise result
        return result

    with AzureOpenAIImageProvider(
        azure_ad_token_provider=provider_callable, endpoint=ENDPOINT, deployment="d", api_version=VERSION
    ) as provider:
        with pytest.raises(ConfigurationError) as caught:
            provider.generate_image("x")
    assert "token provider" in str(caught.value)
    assert len(mocked.calls) == 0


def test_environment_configuration(mocked, monkeypatch):
    """AZURE_OPENAI_ENDPOINT, AZURE_OPENAI_API_KEY and OPENAI_API_VERSION configure the provider."""
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", ENDPOINT)
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "env-azure-key")
    monkeypatch.setenv("OPENAI_API_VERSION", VERSION)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-must-not-be-used")
    mocked.add("POST", GENERATIONS, json=images_body())
    with AzureOpenAIImageProvider(deployment="img-deployment") as provider:
        provider.generate_image("x")
    headers = mocked.calls[0].request.headers
    assert headers["api-key"] == "env-azure-key"
    assert "sk-openai" not in str(headers)


def test_environment_token_wins_over_environment_key(mocked, monkeypatch):
    """AZURE_OPENAI_AD_TOKEN takes precedence over AZURE_OPENAI_API_KEY."""
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "env-azure-key")
    monkeypatch.setenv("AZURE_OPENAI_AD_TOKEN", "env-token")
    mocked.add("POST", GENERATIONS, json=images_body())
    with AzureOpenAIImageProvider(endpoint=ENDPOINT, deployment="img-deployment", api_version=VERSION) as provider:
        provider.generate_image("x")
    headers = mocked.calls[0].request.headers
    assert headers["Authorization"] == "Bearer env-token"
    assert "api-key" not in headers


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"api_key": "k", "azure_ad_token": "t"}, "only one of"),
        ({"api_key": "k", "azure_ad_token_provider": lambda: "t"}, "only one of"),
        ({"api_key": "k", "api_version": None}, "API version"),
        ({"api_key": "k", "endpoint": None}, "endpoint"),
        ({}, "No Azure credential"),
        ({"azure_ad_token_provider": "not callable"}, "callable"),
        ({"api_key": "k", "endpoint": "http://example.com"}, "plain http"),
        ({"api_key": "k", "deployment": " "}, "deployment"),
    ],
)
def test_configuration_errors(kwargs, fragment):
    """Missing or conflicting settings are refused before any request."""
    options = {"endpoint": ENDPOINT, "api_version": VERSION}
    options.update(kwargs)
    with pytest.raises(ConfigurationError) as caught:
        AzureOpenAIImageProvider(**options)
    assert fragment in str(caught.value)


def test_openai_key_alone_does_not_configure_azure(monkeypatch):
    """OPENAI_API_KEY is OpenAI's; Azure needs its own credential."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai")
    with pytest.raises(ConfigurationError):
        AzureOpenAIImageProvider(endpoint=ENDPOINT, api_version=VERSION)


def test_azure_error_bodies_map_to_the_right_errors(mocked, azure):
    """Azure's {"error": {"code", "message"}} (no type or param) still gives typed errors."""
    mocked.add(
        "POST",
        GENERATIONS,
        status=404,
        json={"error": {"code": "DeploymentNotFound", "message": "The API deployment does not exist."}},
    )
    mocked.add(
        "POST",
        GENERATIONS,
        status=401,
        json={"error": {"code": "401", "message": "Access denied due to invalid subscription key azure-key-123."}},
    )
    with pytest.raises(NotFoundError) as missing:
        azure.generate_image("x")
    assert (missing.value.code, missing.value.type, missing.value.param) == ("DeploymentNotFound", None, None)
    with pytest.raises(AuthenticationError) as denied:
        azure.generate_image("x")
    assert denied.value.code == "401"
    assert "azure-key-123" not in str(denied.value) + repr(denied.value.body)
    assert "[REDACTED]" in str(denied.value)


def test_tokens_from_the_provider_are_redacted_from_errors(mocked):
    """A token fetched from the callable and echoed back by the server is scrubbed."""
    mocked.add("POST", GENERATIONS, status=401, json={"error": {"message": "bad token fresh-token-777"}})
    with AzureOpenAIImageProvider(
        azure_ad_token_provider=lambda: "fresh-token-777",
        endpoint=ENDPOINT,
        deployment="img-deployment",
        api_version=VERSION,
    ) as provider:
        with pytest.raises(AuthenticationError) as caught:
            provider.generate_image("x")
    assert "fresh-token-777" not in str(caught.value)


def test_repr_hides_credentials(azure):
    """The repr names the routing, never the key."""
    text = repr(azure)
    assert "img-deployment" in text and VERSION in text
    assert "azure-key-123" not in text
