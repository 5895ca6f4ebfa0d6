"""OpenAI-compatible servers: base URL, extra headers, extra body fields, rules off, extra response fields."""

import json

import pytest
from helpers import API_KEY, images_body

from imageprovider import AuthenticationError, ConfigurationError, OpenAIImageProvider, RequestValidationError

BASE = "https://gateway.example.com/openai/v1"


def test_compatible_server_end_to_end(mocked):
    """Custom base URL, gateway headers, unknown model with extra fields, extra response fields kept."""
    body = images_body(size="777x333", provider_meta={"node": "gpu-7", "cost_usd": 0.01})
    body["data"][0]["seed"] = 1234
    mocked.add("POST", BASE + "/images/generations", json=body)
    with OpenAIImageProvider(
        api_key=API_KEY, base_url=BASE, extra_headers={"X-Gateway-Key": "gw-secret-1", "X-Team": "imaging"}
    ) as provider:
        result = provider.generate_image(
            "A koi pond",
            model="flux-compatible",
            size="777x333",
            extra_body={"seed": 1234, "steps": 30, "lora": {"name": "ink", "w": 0.5}},
        )
    request = mocked.calls[0].request
    assert request.url == BASE + "/images/generations"
    assert request.headers["X-Gateway-Key"] == "gw-secret-1"
    assert request.headers["X-Team"] == "imaging"
    assert request.headers["Authorization"] == "Bearer " + API_KEY
    assert json.loads(request.body) == {
        "prompt": "A koi pond",
        "model": "flux-compatible",
        "size": "777x333",
        "seed": 1234,
        "steps": 30,
        "lora": {"name": "ink", "w": 0.5},
    }
    assert result.size == "777x333"
    assert result.raw["provider_meta"] == {"node": "gpu-7", "cost_usd": 0.01}
    assert result.raw["data"][0]["seed"] == 1234


def test_rules_off_lets_a_known_model_take_other_values(mocked):
    """check_model_rules=False: a server that gives dall-e-3 more sizes can be used; schema checks stay."""
    mocked.add("POST", BASE + "/images/generations", json=images_body())
    with OpenAIImageProvider(api_key=API_KEY, base_url=BASE, check_model_rules=False) as provider:
        provider.generate_image("x", model="dall-e-3", size="2048x2048", n=4)
        with pytest.raises(RequestValidationError) as caught:
            provider.generate_image("x", model="dall-e-3", n=0)
    assert caught.value.param == "n"
    assert json.loads(mocked.calls[0].request.body)["size"] == "2048x2048"
    assert len(mocked.calls) == 1


def test_extra_header_can_replace_the_authorization_header(mocked):
    """A gateway with its own auth scheme can replace ours."""
    mocked.add("POST", BASE + "/images/generations", json=images_body())
    with OpenAIImageProvider(
        api_key=API_KEY, base_url=BASE, extra_headers={"Authorization": "Gateway token-abc"}
    ) as provider:
        provider.generate_image("x")
    assert mocked.calls[0].request.headers["Authorization"] == "Gateway token-abc"


def test_extra_header_values_are_redacted_from_errors(mocked):
    """Gateway credentials in extra_headers are treated as secrets."""
    mocked.add(
        "POST",
        BASE + "/images/generations",
        status=401,
        json={"error": {"message": "key gw-secret-1 is revoked", "type": "new_api_error"}},
    )
    with OpenAIImageProvider(api_key=API_KEY, base_url=BASE, extra_headers={"X-Gateway-Key": "gw-secret-1"}) as p:
        with pytest.raises(AuthenticationError) as caught:
            p.generate_image("x")
    assert "gw-secret-1" not in str(caught.value)
    assert caught.value.type == "new_api_error"


@pytest.mark.parametrize(
    "headers",
    [{"Bad Name": "x"}, {"X-Ok": "line\r\nInjected: 1"}, {"X-Ok": 5}, {"X-Ok": "caf\u00e9\u2603"}, ["X-Ok", "v"]],
)
def test_invalid_extra_headers_are_refused(headers):
    """Header names must be tokens; values single-line Latin-1 strings (no header injection)."""
    with pytest.raises(ConfigurationError):
        OpenAIImageProvider(api_key=API_KEY, extra_headers=headers)
