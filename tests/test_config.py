"""Settings resolution: arguments > environment > config file > defaults, and every check on the way.

Where a setting changes what goes over the wire (key, organization, project,
base URL, model, timeout) it is checked on the request ``responses`` saw.
"""

import json
import os
import warnings
from typing import Any, Dict, List

import pytest
import responses
from helpers import API_KEY, GENERATIONS_URL, images_body

import imageprovider
from imageprovider import DEFAULT_MODEL, ConfigurationError, ConfigurationWarning, OpenAIImageProvider
from imageprovider import provider as provider_module

ARG = {
    "api_key": "sk-from-argument-111",
    "base_url": "https://arg.example.com/v1",
    "organization": "org-argument",
    "project": "proj_argument",
    "default_model": "gpt-image-2.5-flare",
}
ENV = {
    "api_key": "sk-from-environment-222",
    "base_url": "https://env.example.com/v1",
    "organization": "org-environment",
    "project": "proj_environment",
    "default_model": "gpt-image-2.5-sunburst",
}
FILE = {
    "api_key": "sk-from-config-file-333",
    "base_url": "https://file.example.com/v1",
    "organization": "org-file",
    "project": "proj_file",
    "default_model": "gpt-image-2.6-flare",
}
ENV_NAMES = {
    "api_key": "OPENAI_API_KEY",
    "base_url": "OPENAI_BASE_URL",
    "organization": "OPENAI_ORG_ID",
    "project": "OPENAI_PROJECT_ID",
    "default_model": "IMAGEPROVIDER_MODEL",
}
#: Setting name -> INI key.
FILE_KEYS = {
    "api_key": "api_key",
    "base_url": "base_url",
    "organization": "organization",
    "project": "project",
    "default_model": "model",
}
SETTING_NAMES = tuple(ENV_NAMES)


# -- helpers -------------------------------------------------------------


def write_config(path: Any, text: str) -> str:
    """Write ``text`` to ``path`` (creating parent directories); return the path as a string."""
    path = str(path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(path, 0o600)
    return path


def ini(values: Dict[str, Any], section: str = "imageprovider") -> str:
    """An INI document with ``values`` (INI key -> value) in ``section``."""
    lines = [f"[{section}]"]
    lines += [f"{key} = {value}" for key, value in values.items()]
    return "\n".join(lines) + "\n"


def file_settings(settings: Dict[str, str]) -> Dict[str, str]:
    """Setting name -> value mapping translated to INI keys."""
    return {FILE_KEYS[name]: value for name, value in settings.items()}


def set_env(monkeypatch: pytest.MonkeyPatch, settings: Dict[str, str]) -> None:
    """Export each setting in ``settings`` under its environment variable."""
    for name, value in settings.items():
        monkeypatch.setenv(ENV_NAMES[name], value)


def default_config_path(tmp_path: Any) -> str:
    """The per-user config file the conftest's XDG_CONFIG_HOME points at."""
    return str(tmp_path / "xdg-config" / "imageprovider" / "config.ini")


def sent_request(mocked: Any, index: int = 0) -> Any:
    """The ``index``-th request ``responses`` intercepted."""
    return mocked.calls[index].request


def sent_body(mocked: Any, index: int = 0) -> Dict[str, Any]:
    """The JSON body of the ``index``-th request."""
    return json.loads(sent_request(mocked, index).body)


def generate_once(mocked: Any, provider: OpenAIImageProvider, base_url: str, **params: Any) -> Any:
    """Register one successful generations response at ``base_url`` and call the provider once."""
    mocked.add(responses.POST, base_url + "/images/generations", json=images_body())
    return provider.generate_image("A lighthouse at dusk", **params)


def assert_wire(mocked: Any, expected: Dict[str, str]) -> None:
    """The single request sent carries exactly the expected key, org, project, host and model."""
    assert len(mocked.calls) == 1
    request = sent_request(mocked)
    assert request.url == expected["base_url"] + "/images/generations"
    assert request.headers["Authorization"] == "Bearer " + expected["api_key"]
    assert request.headers["OpenAI-Organization"] == expected["organization"]
    assert request.headers["OpenAI-Project"] == expected["project"]
    assert sent_body(mocked)["model"] == expected["default_model"]


# -- precedence ----------------------------------------------------------


def test_arguments_override_environment_and_config_file(
    mocked: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    """Explicit arguments win over the environment and the config file for every setting."""
    path = write_config(tmp_path / "conf" / "settings.ini", ini(file_settings(FILE)))
    monkeypatch.setenv("IMAGEPROVIDER_CONFIG", path)
    set_env(monkeypatch, ENV)
    with OpenAIImageProvider(**ARG) as provider:
        assert provider.settings.api_key == ARG["api_key"]
        assert provider.base_url == ARG["base_url"]
        assert provider.settings.organization == ARG["organization"]
        assert provider.settings.project == ARG["project"]
        assert provider.default_model == ARG["default_model"]
        assert dict(provider.settings.sources) == {
            **{name: "argument" for name in SETTING_NAMES},
            "models_file": "default",
        }
        generate_once(mocked, provider, ARG["base_url"])
    assert_wire(mocked, ARG)


def test_environment_overrides_config_file(mocked: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """With no arguments, environment variables win over the config file for every setting."""
    path = write_config(tmp_path / "conf" / "settings.ini", ini(file_settings(FILE)))
    monkeypatch.setenv("IMAGEPROVIDER_CONFIG", path)
    set_env(monkeypatch, ENV)
    with OpenAIImageProvider() as provider:
        assert provider.default_model == ENV["default_model"]
        assert dict(provider.settings.sources) == {
            **{name: "environment" for name in SETTING_NAMES},
            "models_file": "default",
        }
        generate_once(mocked, provider, ENV["base_url"])
    assert_wire(mocked, ENV)


def test_config_file_overrides_defaults(mocked: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """With no arguments or environment, the config file's values are used and attributed to its path."""
    path = write_config(tmp_path / "conf" / "settings.ini", ini(file_settings(FILE)))
    monkeypatch.setenv("IMAGEPROVIDER_CONFIG", path)
    with OpenAIImageProvider() as provider:
        assert provider.default_model == FILE["default_model"]
        assert dict(provider.settings.sources) == {**{name: path for name in SETTING_NAMES}, "models_file": "default"}
        generate_once(mocked, provider, FILE["base_url"])
    assert_wire(mocked, FILE)


def test_defaults_apply_when_nothing_is_configured(mocked: Any) -> None:
    """Only a key given: default base URL and model are used and no org/project headers are sent."""
    with OpenAIImageProvider(api_key=API_KEY) as provider:
        assert provider.base_url == "https://api.openai.com/v1"
        assert provider.default_model == DEFAULT_MODEL
        assert provider.settings.organization is None
        assert provider.settings.project is None
        assert provider.settings.sources["api_key"] == "argument"
        generate_once(mocked, provider, "https://api.openai.com/v1")
    request = sent_request(mocked)
    assert request.url == GENERATIONS_URL
    assert request.headers["Authorization"] == "Bearer " + API_KEY
    assert "OpenAI-Organization" not in request.headers
    assert "OpenAI-Project" not in request.headers
    assert sent_body(mocked)["model"] == DEFAULT_MODEL


def test_sources_report_default_for_unconfigured_settings() -> None:
    """Settings left at their defaults are attributed to "default", as the Settings.sources docs promise."""
    with OpenAIImageProvider(api_key=API_KEY) as provider:
        sources = dict(provider.settings.sources)
    assert sources["api_key"] == "argument"
    for name in ("base_url", "organization", "project", "default_model"):
        assert sources.get(name) == "default", name


@pytest.mark.parametrize("name", SETTING_NAMES)
@pytest.mark.parametrize("winner", ["argument", "environment", "file"])
def test_each_setting_resolves_independently(
    mocked: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Any, name: str, winner: str
) -> None:
    """One setting taken from a single layer while the others come from elsewhere reaches the wire from that layer."""
    path = write_config(tmp_path / "conf" / "settings.ini", ini({}))
    monkeypatch.setenv("IMAGEPROVIDER_CONFIG", path)
    # Everything except ``name`` comes from the argument layer.
    arguments = {other: ARG[other] for other in SETTING_NAMES if other != name}
    expected = dict(ARG)
    if winner == "argument":
        arguments[name] = ARG[name]
        set_env(monkeypatch, {name: ENV[name]})
        write_config(path, ini(file_settings({name: FILE[name]})))
        expected_source = "argument"
    elif winner == "environment":
        set_env(monkeypatch, {name: ENV[name]})
        write_config(path, ini(file_settings({name: FILE[name]})))
        expected[name] = ENV[name]
        expected_source = "environment"
    else:
        write_config(path, ini(file_settings({name: FILE[name]})))
        expected[name] = FILE[name]
        expected_source = path
    with OpenAIImageProvider(**arguments) as provider:
        assert provider.settings.sources[name] == expected_source
        generate_once(mocked, provider, expected["base_url"])
    assert_wire(mocked, expected)


def test_mixed_sources_are_recorded_per_setting(mocked: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """Each setting's source is recorded separately when they come from different layers."""
    path = write_config(
        default_config_path(tmp_path), ini({"organization": "org-file", "model": "gpt-image-2.6-flare"})
    )
    monkeypatch.setenv("OPENAI_BASE_URL", "https://env.example.com/v1")
    monkeypatch.setenv("OPENAI_PROJECT_ID", "proj_environment")
    with OpenAIImageProvider(api_key="sk-mixed-444") as provider:
        assert dict(provider.settings.sources) == {
            "api_key": "argument",
            "base_url": "environment",
            "organization": path,
            "project": "environment",
            "default_model": path,
            "models_file": "default",
        }
        generate_once(mocked, provider, "https://env.example.com/v1")
    assert_wire(
        mocked,
        {
            "api_key": "sk-mixed-444",
            "base_url": "https://env.example.com/v1",
            "organization": "org-file",
            "project": "proj_environment",
            "default_model": "gpt-image-2.6-flare",
        },
    )


def test_per_call_model_overrides_default_model(mocked: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A model named in the call beats the configured default model."""
    monkeypatch.setenv("IMAGEPROVIDER_MODEL", "gpt-image-2.5-sunburst")
    with OpenAIImageProvider(api_key=API_KEY) as provider:
        generate_once(mocked, provider, "https://api.openai.com/v1", model="gpt-image-2.5-flare")
    assert sent_body(mocked)["model"] == "gpt-image-2.5-flare"


# -- the config file -----------------------------------------------------


def test_config_file_found_via_environment_variable(
    mocked: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    """IMAGEPROVIDER_CONFIG names the file the key is read from."""
    path = write_config(tmp_path / "elsewhere.ini", ini({"api_key": "sk-env-named-file"}))
    monkeypatch.setenv("IMAGEPROVIDER_CONFIG", path)
    with OpenAIImageProvider() as provider:
        assert provider.settings.sources["api_key"] == path
        generate_once(mocked, provider, "https://api.openai.com/v1")
    assert sent_request(mocked).headers["Authorization"] == "Bearer sk-env-named-file"


def test_config_file_found_via_argument(mocked: Any, tmp_path: Any) -> None:
    """The config_file argument names the file the key is read from."""
    path = write_config(tmp_path / "argument.ini", ini({"api_key": "sk-argument-named-file"}))
    with OpenAIImageProvider(config_file=path) as provider:
        assert provider.settings.sources["api_key"] == path
        generate_once(mocked, provider, "https://api.openai.com/v1")
    assert sent_request(mocked).headers["Authorization"] == "Bearer sk-argument-named-file"


def test_config_file_argument_beats_environment_variable(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """config_file= is read instead of the file IMAGEPROVIDER_CONFIG names."""
    from_env = write_config(tmp_path / "env.ini", ini({"api_key": "sk-env-file"}))
    from_arg = write_config(tmp_path / "arg.ini", ini({"api_key": "sk-arg-file"}))
    monkeypatch.setenv("IMAGEPROVIDER_CONFIG", from_env)
    with OpenAIImageProvider(config_file=from_arg) as provider:
        assert provider.settings.api_key == "sk-arg-file"
        assert provider.settings.sources["api_key"] == from_arg


def test_config_file_found_at_default_user_path(mocked: Any, tmp_path: Any) -> None:
    """Without IMAGEPROVIDER_CONFIG, $XDG_CONFIG_HOME/imageprovider/config.ini is read."""
    path = write_config(default_config_path(tmp_path), ini({"api_key": "sk-default-path-file"}))
    with OpenAIImageProvider() as provider:
        assert provider.settings.sources["api_key"] == path
        generate_once(mocked, provider, "https://api.openai.com/v1")
    assert sent_request(mocked).headers["Authorization"] == "Bearer sk-default-path-file"


def test_named_config_file_replaces_default_user_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """When a file is named, the per-user default file is not read at all."""
    write_config(default_config_path(tmp_path), ini({"api_key": "sk-default-file", "project": "proj_default"}))
    named = write_config(tmp_path / "named.ini", ini({"api_key": "sk-named-file"}))
    monkeypatch.setenv("IMAGEPROVIDER_CONFIG", named)
    with OpenAIImageProvider() as provider:
        assert provider.settings.api_key == "sk-named-file"
        assert provider.settings.project is None


def test_missing_file_named_by_environment_variable_is_an_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """IMAGEPROVIDER_CONFIG pointing at a missing file raises ConfigurationError naming the path."""
    missing = str(tmp_path / "does-not-exist.ini")
    monkeypatch.setenv("IMAGEPROVIDER_CONFIG", missing)
    with pytest.raises(ConfigurationError) as info:
        OpenAIImageProvider(api_key=API_KEY)
    assert missing in str(info.value)


def test_missing_file_named_by_argument_is_an_error(tmp_path: Any) -> None:
    """config_file= naming a missing file raises ConfigurationError naming the path."""
    missing = str(tmp_path / "nope.ini")
    with pytest.raises(ConfigurationError) as info:
        OpenAIImageProvider(api_key=API_KEY, config_file=missing)
    assert missing in str(info.value)


def test_missing_default_config_file_is_fine(tmp_path: Any) -> None:
    """No file at the default per-user path is not an error."""
    assert not os.path.exists(default_config_path(tmp_path))
    with OpenAIImageProvider(api_key=API_KEY) as provider:
        assert provider.settings.api_key == API_KEY


def test_unknown_config_key_is_a_warning_naming_the_key_and_the_file(tmp_path: Any) -> None:
    """A misspelt key such as 'apikey' warns (ConfigurationWarning) naming it and the file; the rest is read."""
    path = write_config(tmp_path / "typo.ini", ini({"apikey": "sk-typo", "model": "gpt-image-2.5-flare"}))
    with pytest.warns(ConfigurationWarning) as caught:
        provider = OpenAIImageProvider(api_key=API_KEY, config_file=path)
    with provider:
        assert provider.settings.default_model == "gpt-image-2.5-flare"
    assert len(caught) == 1
    assert "'apikey'" in str(caught[0].message) and path in str(caught[0].message)


def test_unknown_key_in_default_file_is_a_warning(tmp_path: Any) -> None:
    """The per-user default file is checked for unknown keys too; an application is not stopped by one."""
    write_config(default_config_path(tmp_path), ini({"api_key": API_KEY, "retries": "3"}))
    with pytest.warns(ConfigurationWarning, match="'retries'"):
        OpenAIImageProvider().close()


def test_a_provider_given_every_setting_does_not_read_the_per_user_file(tmp_path: Any) -> None:
    """Whoever runs the application may have a config file it cannot parse; arguments that leave nothing open
    for the file mean it is not read at all."""
    path = default_config_path(tmp_path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("[imageprovider\nthis is not INI\n")
    overlay = tmp_path / "overlay.json"
    overlay.write_text('{"models": {}}', encoding="utf-8")
    everything = dict(
        api_key=API_KEY,
        base_url="https://api.openai.com/v1",
        organization="org-1",
        project="proj-1",
        default_model="gpt-image-2",
        models_file=str(overlay),
        timeout=(3, 30),
        max_retries=1,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with OpenAIImageProvider(**everything) as provider:
            assert provider.settings.timeout == (3.0, 30.0)
    # With a setting left open, the file is read (and its error reported).
    open_one = dict(everything, project=None)
    with pytest.raises(ConfigurationError, match="Cannot read config file"):
        OpenAIImageProvider(**open_one)


@pytest.mark.parametrize(
    "variable, value, expected",
    [
        ("IMAGEPROVIDER_TIMEOUT", "45", (5.0, 45.0)),
        ("IMAGEPROVIDER_TIMEOUT", "2, 45", (2.0, 45.0)),
        ("IMAGEPROVIDER_MAX_RETRIES", "7", 7),
    ],
    ids=["read-timeout", "connect-and-read", "max-retries"],
)
def test_timeout_and_retries_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any, variable: str, value: str, expected: Any
) -> None:
    """Between the argument and the config file, like every other setting."""
    monkeypatch.setenv(variable, value)
    field = "timeout" if variable.endswith("TIMEOUT") else "max_retries"
    path = write_config(tmp_path / "file.ini", ini({"timeout": "99", "connect_timeout": "9", "max_retries": "9"}))
    with OpenAIImageProvider(api_key=API_KEY, config_file=path) as from_env:
        got = getattr(from_env.settings, field)
    assert got == (expected if field == "max_retries" else (expected[0] if "," in value else 9.0, expected[1]))
    argument = {"timeout": (1, 11)} if field == "timeout" else {"max_retries": 0}
    with OpenAIImageProvider(api_key=API_KEY, config_file=path, **argument) as from_argument:
        assert getattr(from_argument.settings, field) == ((1.0, 11.0) if field == "timeout" else 0)


@pytest.mark.parametrize("variable, value", [("IMAGEPROVIDER_TIMEOUT", "soon"), ("IMAGEPROVIDER_MAX_RETRIES", "-1")])
def test_a_bad_timeout_or_retries_in_the_environment_names_it(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError) as caught:
        OpenAIImageProvider(api_key=API_KEY)
    assert (
        ("IMAGEPROVIDER_TIMEOUT" in str(caught.value))
        if variable.endswith("TIMEOUT")
        else "max_retries" in str(caught.value)
    )


@pytest.mark.parametrize(
    "text",
    [
        "api_key = sk-no-section\n",
        "[imageprovider\napi_key = sk-broken-header\n",
        "[imageprovider]\napi_key = sk-one\napi_key = sk-two\n",
        "[imageprovider]\nthis line has no separator\n",
    ],
    ids=["no-section-header", "broken-section-header", "duplicate-key", "no-separator"],
)
def test_malformed_config_file_is_an_error(tmp_path: Any, text: str) -> None:
    """A file configparser cannot parse raises ConfigurationError naming the file."""
    path = write_config(tmp_path / "broken.ini", text)
    with pytest.raises(ConfigurationError) as info:
        OpenAIImageProvider(api_key=API_KEY, config_file=path)
    assert path in str(info.value)


def test_undecodable_config_file_is_an_error(tmp_path: Any) -> None:
    """A config file that is not UTF-8 raises ConfigurationError."""
    path = str(tmp_path / "latin1.ini")
    with open(path, "wb") as handle:
        handle.write(b"[imageprovider]\nproject = caf\xe9\xff\n")
    with pytest.raises(ConfigurationError):
        OpenAIImageProvider(api_key=API_KEY, config_file=path)


def test_config_file_without_section_contributes_nothing(tmp_path: Any) -> None:
    """A file with other sections only is read but supplies no settings."""
    path = write_config(tmp_path / "other.ini", ini({"api_key": "sk-other-section"}, section="other"))
    with pytest.raises(ConfigurationError) as info:
        OpenAIImageProvider(config_file=path)
    assert "sk-other-section" not in str(info.value)


def test_timeouts_and_retries_from_config_file_reach_settings(mocked: Any, tmp_path: Any) -> None:
    """timeout, connect_timeout and max_retries in the file become the provider's settings and request timeout."""
    path = write_config(
        tmp_path / "tuned.ini", ini({"api_key": API_KEY, "timeout": "42.5", "connect_timeout": "3", "max_retries": "7"})
    )
    with OpenAIImageProvider(config_file=path) as provider:
        assert provider.settings.timeout == (3.0, 42.5)
        assert provider.settings.max_retries == 7
        generate_once(mocked, provider, "https://api.openai.com/v1")
    assert sent_request(mocked).req_kwargs["timeout"] == (3.0, 42.5)


def test_read_timeout_alone_in_config_file_keeps_default_connect(tmp_path: Any) -> None:
    """timeout alone in the file sets the read timeout and keeps the 5 s connect timeout."""
    path = write_config(tmp_path / "read.ini", ini({"api_key": API_KEY, "timeout": "30"}))
    with OpenAIImageProvider(config_file=path) as provider:
        assert provider.settings.timeout == (5.0, 30.0)


def test_connect_timeout_alone_in_config_file_keeps_default_read(tmp_path: Any) -> None:
    """connect_timeout alone in the file sets the connect timeout and keeps the 600 s read timeout."""
    path = write_config(tmp_path / "connect.ini", ini({"api_key": API_KEY, "connect_timeout": "2.5"}))
    with OpenAIImageProvider(config_file=path) as provider:
        assert provider.settings.timeout == (2.5, 600.0)


def test_timeout_argument_beats_config_file(tmp_path: Any) -> None:
    """Timeout and max_retries arguments win over the file's values."""
    path = write_config(
        tmp_path / "tuned.ini", ini({"api_key": API_KEY, "timeout": "42", "connect_timeout": "3", "max_retries": "7"})
    )
    with OpenAIImageProvider(config_file=path, timeout=(1.0, 9.0), max_retries=0) as provider:
        assert provider.settings.timeout == (1.0, 9.0)
        assert provider.settings.max_retries == 0


@pytest.mark.parametrize(
    "values",
    [
        {"timeout": "soon"},
        {"timeout": "0"},
        {"connect_timeout": "-1"},
        {"timeout": "nan"},
        {"max_retries": "many"},
        {"max_retries": "1.5"},
        {"max_retries": "101"},
        {"max_retries": "-1"},
    ],
    ids=lambda values: "-".join("{}={}".format(*item) for item in values.items()),
)
def test_bad_numbers_in_config_file_are_errors(tmp_path: Any, values: Dict[str, str]) -> None:
    """Unusable timeout or max_retries values in the file raise ConfigurationError."""
    path = write_config(tmp_path / "bad.ini", ini(dict(api_key=API_KEY, **values)))
    with pytest.raises(ConfigurationError):
        OpenAIImageProvider(config_file=path)


# -- the API key ---------------------------------------------------------


def test_no_key_anywhere_names_all_three_places() -> None:
    """Without a key, ConfigurationError names the argument, the environment variable and the config file."""
    with pytest.raises(ConfigurationError) as info:
        OpenAIImageProvider()
    message = str(info.value)
    assert "api_key" in message
    assert "OPENAI_API_KEY" in message
    assert "config file" in message
    assert "IMAGEPROVIDER_CONFIG" in message


def test_module_level_generate_image_without_key_raises_configuration_error(mocked: Any) -> None:
    """imageprovider.generate_image with no key anywhere raises ConfigurationError and sends nothing."""
    with pytest.raises(ConfigurationError):
        imageprovider.generate_image("A lighthouse at dusk")
    assert len(mocked.calls) == 0


def test_configuration_error_is_an_image_provider_error() -> None:
    """ConfigurationError can be caught as the library's base exception."""
    with pytest.raises(imageprovider.ImageProviderError):
        OpenAIImageProvider()


@pytest.mark.parametrize("value", ["", "   ", "\t\n "], ids=["empty", "spaces", "whitespace"])
def test_blank_environment_key_counts_as_missing(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    """An empty or whitespace-only OPENAI_API_KEY is treated as no key."""
    monkeypatch.setenv("OPENAI_API_KEY", value)
    with pytest.raises(ConfigurationError) as info:
        OpenAIImageProvider()
    assert "OPENAI_API_KEY" in str(info.value)


@pytest.mark.parametrize("value", ["", "   "], ids=["empty", "spaces"])
def test_blank_environment_key_falls_through_to_config_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any, value: str
) -> None:
    """A blank OPENAI_API_KEY does not hide the key in the config file."""
    path = write_config(default_config_path(tmp_path), ini({"api_key": "sk-file-key-555"}))
    monkeypatch.setenv("OPENAI_API_KEY", value)
    with OpenAIImageProvider() as provider:
        assert provider.settings.api_key == "sk-file-key-555"
        assert provider.settings.sources["api_key"] == path


def test_blank_key_in_config_file_counts_as_missing(tmp_path: Any) -> None:
    """'api_key =' with no value in the file is treated as no key."""
    path = write_config(tmp_path / "blank.ini", "[imageprovider]\napi_key =\n")
    with pytest.raises(ConfigurationError) as info:
        OpenAIImageProvider(config_file=path)
    assert "OPENAI_API_KEY" in str(info.value)


def test_environment_key_is_stripped(mocked: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Surrounding whitespace in OPENAI_API_KEY is not sent."""
    monkeypatch.setenv("OPENAI_API_KEY", "  " + API_KEY + "\n")
    with OpenAIImageProvider() as provider:
        generate_once(mocked, provider, "https://api.openai.com/v1")
    assert sent_request(mocked).headers["Authorization"] == "Bearer " + API_KEY


@pytest.mark.parametrize(
    "key",
    [
        "sk-has space-in-the-middle",
        "sk-has\nnewline-in-the-middle",
        "sk-has\ttab-in-the-middle",
        "sk-non-ascii-\u00e9-key",
    ],
    ids=["space", "newline", "tab", "non-ascii"],
)
def test_unsendable_key_argument_is_refused_without_echoing_it(key: str) -> None:
    """A key that cannot go in a header raises ConfigurationError whose message does not contain the key."""
    with pytest.raises(ConfigurationError) as info:
        OpenAIImageProvider(api_key=key)
    message = str(info.value)
    assert key not in message
    for part in key.split():
        assert part not in message
    assert key not in repr(info.value)


@pytest.mark.parametrize("key", ["sk-env space-key", "sk-env\nnewline-key"], ids=["space", "newline"])
def test_unsendable_key_from_environment_is_refused_without_echoing_it(
    monkeypatch: pytest.MonkeyPatch, key: str
) -> None:
    """A bad OPENAI_API_KEY raises ConfigurationError whose message does not contain the key."""
    monkeypatch.setenv("OPENAI_API_KEY", key)
    with pytest.raises(ConfigurationError) as info:
        OpenAIImageProvider()
    for part in [key] + key.split():
        assert part not in str(info.value)


def test_unsendable_key_from_config_file_is_refused_without_echoing_it(tmp_path: Any) -> None:
    """A key with an inner space in the config file is refused without being echoed."""
    path = write_config(tmp_path / "spacey.ini", ini({"api_key": "sk-file space-key"}))
    with pytest.raises(ConfigurationError) as info:
        OpenAIImageProvider(config_file=path)
    for part in ("sk-file space-key", "sk-file", "space-key"):
        assert part not in str(info.value)


def test_non_string_key_argument_is_refused() -> None:
    """An api_key that is not a string raises ConfigurationError."""
    with pytest.raises(ConfigurationError):
        OpenAIImageProvider(api_key=12345)  # type: ignore[arg-type]  # the wrong type is the test


# -- organization and project -------------------------------------------


def test_organization_and_project_headers_sent_when_set(mocked: Any) -> None:
    """organization and project become the OpenAI-Organization and OpenAI-Project headers."""
    with OpenAIImageProvider(api_key=API_KEY, organization="org-abc", project="proj_xyz") as provider:
        generate_once(mocked, provider, "https://api.openai.com/v1")
    headers = sent_request(mocked).headers
    assert headers["OpenAI-Organization"] == "org-abc"
    assert headers["OpenAI-Project"] == "proj_xyz"


def test_organization_header_omitted_when_only_project_set(mocked: Any) -> None:
    """Only the configured one of the two headers is sent."""
    with OpenAIImageProvider(api_key=API_KEY, project="proj_only") as provider:
        generate_once(mocked, provider, "https://api.openai.com/v1")
    headers = sent_request(mocked).headers
    assert "OpenAI-Organization" not in headers
    assert headers["OpenAI-Project"] == "proj_only"


def test_project_header_omitted_when_only_organization_set(mocked: Any) -> None:
    """Only the configured one of the two headers is sent."""
    with OpenAIImageProvider(api_key=API_KEY, organization="org-only") as provider:
        generate_once(mocked, provider, "https://api.openai.com/v1")
    headers = sent_request(mocked).headers
    assert headers["OpenAI-Organization"] == "org-only"
    assert "OpenAI-Project" not in headers


@pytest.mark.parametrize("value", ["", "   "], ids=["empty", "spaces"])
def test_blank_organization_and_project_environment_are_not_sent(
    mocked: Any, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    """Empty OPENAI_ORG_ID / OPENAI_PROJECT_ID do not produce headers."""
    monkeypatch.setenv("OPENAI_ORG_ID", value)
    monkeypatch.setenv("OPENAI_PROJECT_ID", value)
    with OpenAIImageProvider(api_key=API_KEY) as provider:
        generate_once(mocked, provider, "https://api.openai.com/v1")
    headers = sent_request(mocked).headers
    assert "OpenAI-Organization" not in headers
    assert "OpenAI-Project" not in headers


@pytest.mark.parametrize("field", ["organization", "project"])
def test_unsendable_organization_or_project_is_refused(field: str) -> None:
    """An organization or project with a space or newline raises ConfigurationError."""
    for bad in ("org with space", "org\nnewline"):
        with pytest.raises(ConfigurationError) as info:
            OpenAIImageProvider(api_key=API_KEY, **{field: bad})
        assert field in str(info.value)


# -- base_url ------------------------------------------------------------


def test_base_url_trailing_slash_is_stripped(mocked: Any) -> None:
    """A trailing slash on base_url does not produce a double slash in the request URL."""
    with OpenAIImageProvider(api_key=API_KEY, base_url="https://proxy.example.com/v1/") as provider:
        assert provider.base_url == "https://proxy.example.com/v1"
        generate_once(mocked, provider, "https://proxy.example.com/v1")
    assert sent_request(mocked).url == "https://proxy.example.com/v1/images/generations"


def test_plain_http_to_remote_host_is_refused() -> None:
    """http:// to a non-loopback host raises ConfigurationError mentioning http."""
    with pytest.raises(ConfigurationError) as info:
        OpenAIImageProvider(api_key=API_KEY, base_url="http://example.com/v1")
    assert "http" in str(info.value)
    assert "allow_insecure_http" in str(info.value)


def test_plain_http_from_environment_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """The http check also applies to OPENAI_BASE_URL."""
    monkeypatch.setenv("OPENAI_BASE_URL", "http://example.com/v1")
    with pytest.raises(ConfigurationError) as info:
        OpenAIImageProvider(api_key=API_KEY)
    assert "http" in str(info.value)


def test_plain_http_from_config_file_is_refused(tmp_path: Any) -> None:
    """The http check also applies to base_url in the config file."""
    path = write_config(tmp_path / "http.ini", ini({"api_key": API_KEY, "base_url": "http://example.com/v1"}))
    with pytest.raises(ConfigurationError):
        OpenAIImageProvider(config_file=path)


def test_plain_http_to_remote_host_allowed_when_opted_in(mocked: Any) -> None:
    """allow_insecure_http=True lets http:// to a remote host through, and requests go there."""
    with OpenAIImageProvider(api_key=API_KEY, base_url="http://example.com/v1", allow_insecure_http=True) as provider:
        assert provider.base_url == "http://example.com/v1"
        generate_once(mocked, provider, "http://example.com/v1")
    assert sent_request(mocked).url == "http://example.com/v1/images/generations"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/v1",
        "http://localhost:8080/v1",
        "http://[::1]:8080/v1",
        "http://127.0.0.1/v1",
        "http://LOCALHOST/v1",
    ],
    ids=["ipv4-loopback", "localhost", "ipv6-loopback", "ipv4-no-port", "localhost-upper"],
)
def test_plain_http_to_loopback_is_allowed(mocked: Any, url: str) -> None:
    """http:// to a loopback host is allowed without opting in."""
    with OpenAIImageProvider(api_key=API_KEY, base_url=url) as provider:
        assert provider.base_url == url
        generate_once(mocked, provider, url)
    # requests lower-cases the host when it prepares the URL.
    assert sent_request(mocked).url == (url + "/images/generations").lower()


@pytest.mark.parametrize(
    "url",
    [
        "ftp://x",
        "not a url",
        "https://user:pass@example.com/v1",
        "https://user@example.com/v1",
        "https://example.com/v1?api-version=1",
        "https://example.com/v1#fragment",
        "https:///v1",
        "https://example.com:notaport/v1",
        "example.com/v1",
    ],
    ids=["ftp", "not-a-url", "user-pass", "user-only", "query", "fragment", "no-host", "bad-port", "no-scheme"],
)
def test_unusable_base_urls_are_refused(url: str) -> None:
    """base_url values that are not plain http(s) API roots raise ConfigurationError."""
    with pytest.raises(ConfigurationError):
        OpenAIImageProvider(api_key=API_KEY, base_url=url, allow_insecure_http=True)


def test_base_url_with_credentials_is_refused_without_echoing_password() -> None:
    """The refusal of a URL with user:pass@ does not repeat the password."""
    with pytest.raises(ConfigurationError) as info:
        OpenAIImageProvider(api_key=API_KEY, base_url="https://user:hunter2-secret@example.com/v1")
    assert "hunter2-secret" not in str(info.value)


def test_bad_base_url_is_refused_before_any_request(mocked: Any) -> None:
    """Configuration errors happen at construction, so nothing is sent."""
    with pytest.raises(ConfigurationError):
        OpenAIImageProvider(api_key=API_KEY, base_url="ftp://x")
    assert len(mocked.calls) == 0


# -- timeout -------------------------------------------------------------


def test_default_timeout() -> None:
    """The default timeout is 5 s to connect and 600 s to read."""
    with OpenAIImageProvider(api_key=API_KEY) as provider:
        assert provider.settings.timeout == (5.0, 600.0)


def test_default_timeout_is_passed_to_requests(mocked: Any) -> None:
    """Without a per-call timeout the provider's timeout is what requests receives."""
    with OpenAIImageProvider(api_key=API_KEY) as provider:
        generate_once(mocked, provider, "https://api.openai.com/v1")
    assert sent_request(mocked).req_kwargs["timeout"] == (5.0, 600.0)


@pytest.mark.parametrize(
    "value, expected",
    [
        (30, (5.0, 30.0)),
        (12.5, (5.0, 12.5)),
    ],
)
def test_number_timeout_sets_read_and_keeps_connect(value: Any, expected: Any) -> None:
    """A single number is the read timeout; the connect timeout stays 5 s."""
    with OpenAIImageProvider(api_key=API_KEY, timeout=value) as provider:
        assert provider.settings.timeout == expected


@pytest.mark.parametrize("value", [(2, 90), [2, 90], (2.0, 90.0)], ids=["tuple", "list", "floats"])
def test_pair_timeout_sets_connect_and_read(value: Any) -> None:
    """A (connect, read) pair sets both."""
    with OpenAIImageProvider(api_key=API_KEY, timeout=value) as provider:
        assert provider.settings.timeout == (2.0, 90.0)
        assert all(isinstance(part, float) for part in provider.settings.timeout)


@pytest.mark.parametrize(
    "value",
    [
        0,
        -1,
        float("nan"),
        float("inf"),
        "abc",
        True,
        False,
        (1, 2, 3),
        (1,),
        (0, 10),
        (10, -1),
        (None, 10),
        object(),
    ],
    ids=[
        "zero",
        "negative",
        "nan",
        "inf",
        "string",
        "true",
        "false",
        "triple",
        "single",
        "zero-connect",
        "negative-read",
        "none-connect",
        "object",
    ],
)
def test_unusable_timeouts_are_refused(value: Any) -> None:
    """Zero, negative, non-finite, non-numeric, boolean and wrong-length timeouts raise ConfigurationError."""
    with pytest.raises(ConfigurationError):
        OpenAIImageProvider(api_key=API_KEY, timeout=value)


def test_per_call_number_timeout_is_passed_to_requests(mocked: Any) -> None:
    """generate_image(timeout=N) sends a (provider connect, N) timeout to requests."""
    with OpenAIImageProvider(api_key=API_KEY, timeout=(3.0, 100.0)) as provider:
        generate_once(mocked, provider, "https://api.openai.com/v1", timeout=7)
        assert provider.settings.timeout == (3.0, 100.0)
    assert sent_request(mocked).req_kwargs["timeout"] == (3.0, 7.0)


def test_per_call_pair_timeout_is_passed_to_requests(mocked: Any) -> None:
    """generate_image(timeout=(c, r)) sends exactly that pair to requests."""
    with OpenAIImageProvider(api_key=API_KEY) as provider:
        generate_once(mocked, provider, "https://api.openai.com/v1", timeout=(1.5, 45))
    assert sent_request(mocked).req_kwargs["timeout"] == (1.5, 45.0)


def test_per_call_timeout_does_not_stick(mocked: Any) -> None:
    """A per-call timeout applies to that call only."""
    with OpenAIImageProvider(api_key=API_KEY) as provider:
        generate_once(mocked, provider, "https://api.openai.com/v1", timeout=9)
        generate_once(mocked, provider, "https://api.openai.com/v1")
    assert sent_request(mocked, 0).req_kwargs["timeout"] == (5.0, 9.0)
    assert sent_request(mocked, 1).req_kwargs["timeout"] == (5.0, 600.0)


@pytest.mark.parametrize(
    "value", [0, -1, float("nan"), "abc", True, (1, 2, 3)], ids=["zero", "negative", "nan", "string", "true", "triple"]
)
def test_unusable_per_call_timeout_is_refused_before_sending(mocked: Any, value: Any) -> None:
    """A bad per-call timeout raises ConfigurationError and sends nothing."""
    with OpenAIImageProvider(api_key=API_KEY) as provider:
        mocked.add(responses.POST, GENERATIONS_URL, json=images_body())
        with pytest.raises(ConfigurationError):
            provider.generate_image("A lighthouse at dusk", timeout=value)
    assert len(mocked.calls) == 0


# -- max_retries ---------------------------------------------------------


def test_default_max_retries_is_two() -> None:
    """max_retries defaults to 2."""
    with OpenAIImageProvider(api_key=API_KEY) as provider:
        assert provider.settings.max_retries == 2


@pytest.mark.parametrize("value", [0, 1, 5, 100])
def test_valid_max_retries_accepted(value: int) -> None:
    """Whole numbers from 0 to 100 are accepted."""
    with OpenAIImageProvider(api_key=API_KEY, max_retries=value) as provider:
        assert provider.settings.max_retries == value


@pytest.mark.parametrize(
    "value",
    [-1, 101, 1.5, True, False, "x", [2]],
    ids=["negative", "too-many", "fraction", "true", "false", "string", "list"],
)
def test_unusable_max_retries_are_refused(value: Any) -> None:
    """Negative, over 100, fractional, boolean and non-numeric max_retries raise ConfigurationError."""
    with pytest.raises(ConfigurationError):
        OpenAIImageProvider(api_key=API_KEY, max_retries=value)


# -- repr ----------------------------------------------------------------


def test_reprs_never_contain_the_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """repr() of the provider and its settings say <redacted> instead of the key, wherever it came from."""
    keys: List[str] = []
    with OpenAIImageProvider(api_key="sk-repr-argument-key") as provider:
        keys.append("sk-repr-argument-key")
        texts = [repr(provider), repr(provider.settings), str(provider), str(provider.settings)]
    monkeypatch.setenv("OPENAI_API_KEY", "sk-repr-environment-key")
    with OpenAIImageProvider() as provider:
        keys.append("sk-repr-environment-key")
        texts += [repr(provider), repr(provider.settings)]
    monkeypatch.delenv("OPENAI_API_KEY")
    path = write_config(tmp_path / "repr.ini", ini({"api_key": "sk-repr-file-key"}))
    with OpenAIImageProvider(config_file=path) as provider:
        keys.append("sk-repr-file-key")
        texts += [repr(provider), repr(provider.settings)]
    for text in texts:
        assert "<redacted>" in text
        for key in keys:
            assert key not in text


def test_repr_shows_useful_non_secret_settings() -> None:
    """repr() of the settings still shows the base URL and model."""
    with OpenAIImageProvider(
        api_key=API_KEY, base_url="https://proxy.example.com/v1", default_model="gpt-image-2.5-flare"
    ) as provider:
        assert "https://proxy.example.com/v1" in repr(provider)
        assert "gpt-image-2.5-flare" in repr(provider.settings)
        assert API_KEY not in repr(provider.transport.auth)


# -- lifecycle -----------------------------------------------------------


def _record_session_close(monkeypatch: pytest.MonkeyPatch, provider: OpenAIImageProvider) -> List[int]:
    """Wrap the provider's session.close on the instance; return the list each call appends to."""
    calls: List[int] = []
    session = provider.transport.session
    original = session.close

    def recording_close() -> None:
        calls.append(1)
        original()

    monkeypatch.setattr(session, "close", recording_close)
    return calls


def test_context_manager_closes_session(mocked: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Leaving the with block closes the provider's HTTP session."""
    with OpenAIImageProvider(api_key=API_KEY) as provider:
        calls = _record_session_close(monkeypatch, provider)
        generate_once(mocked, provider, "https://api.openai.com/v1")
        assert calls == []
    assert calls == [1]


def test_context_manager_returns_the_provider() -> None:
    """__enter__ returns the provider itself."""
    provider = OpenAIImageProvider(api_key=API_KEY)
    with provider as entered:
        assert entered is provider


def test_context_manager_closes_session_when_body_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    """The session is closed even when the with block raises, and the exception propagates."""
    with pytest.raises(RuntimeError, match="boom"):
        with OpenAIImageProvider(api_key=API_KEY) as provider:
            calls = _record_session_close(monkeypatch, provider)
            raise RuntimeError("boom")
    assert calls == [1]


def test_context_manager_clears_connection_pools() -> None:
    """After the with block the mounted adapters' pool managers hold no pools."""
    with OpenAIImageProvider(api_key=API_KEY) as provider:
        adapters = list(provider.transport.session.adapters.values())
        for adapter in adapters:
            adapter.poolmanager.connection_from_url("https://api.openai.com/")
        assert any(len(adapter.poolmanager.pools) for adapter in adapters)
    for adapter in adapters:
        assert len(adapter.poolmanager.pools) == 0


def test_close_is_safe_to_call_twice() -> None:
    """close() may be called again after the with block."""
    with OpenAIImageProvider(api_key=API_KEY) as provider:
        pass
    provider.close()
    provider.close()


def _record_provider_close(monkeypatch: pytest.MonkeyPatch) -> List[Any]:
    """Wrap OpenAIImageProvider.close so each call is recorded and still closes."""
    closed: List[Any] = []
    original = provider_module.OpenAIImageProvider.close

    def recording_close(self: Any) -> None:
        closed.append(self)
        original(self)

    monkeypatch.setattr(provider_module.OpenAIImageProvider, "close", recording_close)
    return closed


def test_module_generate_image_uses_environment_and_closes_provider(
    mocked: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """imageprovider.generate_image reads OPENAI_API_KEY, sends the call and closes its provider once."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-module-level-666")
    monkeypatch.setenv("OPENAI_PROJECT_ID", "proj_module")
    closed = _record_provider_close(monkeypatch)
    mocked.add(responses.POST, GENERATIONS_URL, json=images_body())
    result = imageprovider.generate_image("A red fox in the snow", size="1024x1024", timeout=11)
    assert len(result.images) == 1
    assert len(closed) == 1
    request = sent_request(mocked)
    assert request.headers["Authorization"] == "Bearer sk-module-level-666"
    assert request.headers["OpenAI-Project"] == "proj_module"
    assert sent_body(mocked)["size"] == "1024x1024"
    assert request.req_kwargs["timeout"] == (5.0, 11.0)


def test_module_generate_image_closes_provider_when_call_raises(mocked: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """imageprovider.generate_image closes its provider once even when the API call fails."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-module-level-777")
    closed = _record_provider_close(monkeypatch)
    error = {
        "error": {
            "message": "Incorrect API key provided.",
            "type": "invalid_request_error",
            "param": None,
            "code": "invalid_api_key",
        }
    }
    mocked.add(responses.POST, GENERATIONS_URL, status=401, json=error)
    with pytest.raises(imageprovider.AuthenticationError):
        imageprovider.generate_image("A red fox in the snow")
    assert len(closed) == 1


def test_module_generate_image_closes_provider_when_parameters_are_invalid(
    mocked: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """imageprovider.generate_image closes its provider once when validation fails before sending."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-module-level-888")
    closed = _record_provider_close(monkeypatch)
    with pytest.raises(imageprovider.RequestValidationError):
        imageprovider.generate_image("A red fox in the snow", n=0)
    assert len(closed) == 1
    assert len(mocked.calls) == 0


def test_number_timeout_argument_keeps_config_file_connect_timeout(tmp_path: Any) -> None:
    """timeout=30 refines the file's settings: read becomes 30, the file's connect timeout stays."""
    path = write_config(tmp_path / "c.ini", "[imageprovider]\napi_key = sk-file\nconnect_timeout = 3\ntimeout = 90\n")
    with OpenAIImageProvider(config_file=path, timeout=30) as provider:
        assert provider.settings.timeout == (3.0, 30.0)
    with OpenAIImageProvider(config_file=path) as provider:
        assert provider.settings.timeout == (3.0, 90.0)
