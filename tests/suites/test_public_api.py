"""House rules that hold for the whole public surface."""

import inspect

import pytest

import imageprovider
from imageprovider import _schemas, api, cli, exceptions, model_specs, provider, results

PUBLIC_MODULES = [api, cli, exceptions, model_specs, provider, results]


def _public_callables():
    for module in PUBLIC_MODULES:
        for name, value in vars(module).items():
            if name.startswith("_") or getattr(value, "__module__", None) != module.__name__:
                continue
            if inspect.isfunction(value):
                yield f"{module.__name__}.{name}", value
            elif inspect.isclass(value):
                yield f"{module.__name__}.{name}", value
                for attr, member in vars(value).items():
                    if inspect.isfunction(member) and not attr.startswith("_"):
                        yield f"{module.__name__}.{name}.{attr}", member


@pytest.mark.parametrize("name, value", list(_public_callables()), ids=lambda v: v if isinstance(v, str) else "")
def test_public_callables_are_documented_and_typed(name, value):
    """Every public function, method and class has a docstring; functions annotate their parameters and return."""
    assert inspect.getdoc(value), name + " has no docstring"
    if inspect.isfunction(value):
        signature = inspect.signature(value)
        for parameter in signature.parameters.values():
            if parameter.name in ("self", "cls"):
                continue
            assert parameter.annotation is not inspect.Parameter.empty, f"{name}({parameter.name})"
        assert signature.return_annotation is not inspect.Signature.empty, name + " has no return annotation"


def test_validators_are_compiled_once_and_reused(monkeypatch):
    """A schema is read and compiled on first use only."""
    loads = []
    original = _schemas.load_schema
    monkeypatch.setattr(_schemas, "_validators", {})
    monkeypatch.setattr(_schemas, "load_schema", lambda name: loads.append(name) or original(name))
    first = _schemas.get_validator("images_response")
    for _ in range(50):
        assert _schemas.get_validator("images_response") is first
        assert _schemas.find_violation("images_response", {"created": 1, "data": [{"url": "u"}]}) is None
    assert loads == ["images_response"]


#: Modules that ``import imageprovider`` must not load: each is needed only by a
#: path a start-up-sensitive script (a cron job) may never take.
LAZY_MODULES = [
    "jsonschema",  # first validation
    "configparser",  # a config file exists
    "email.policy",  # multipart read back (--dry-run, the stand-in)
    "platform",  # (the User-Agent uses sys.version_info)
    "imageprovider.testing",
    "imageprovider.batch",
    "imageprovider.cli",
]


def _loaded_after(code: str) -> dict:
    """Which of LAZY_MODULES a fresh interpreter has loaded after running ``code`` (one process for all)."""
    import json
    import subprocess
    import sys

    script = f"import json, sys\n{code}\nprint(json.dumps({{m: m in sys.modules for m in {LAZY_MODULES!r}}}))"
    completed = subprocess.run([sys.executable, "-c", script], stdout=subprocess.PIPE, timeout=60, check=True)
    return json.loads(completed.stdout.decode().strip().splitlines()[-1])


def test_importing_the_package_keeps_optional_modules_unloaded():
    """Scripts pay at import time only for what every call needs."""
    assert _loaded_after("import imageprovider") == dict.fromkeys(LAZY_MODULES, False)


def test_the_commands_help_loads_neither_the_stand_in_nor_the_batch_code():
    """``imageprovider --help`` (and each command's) builds its parser without importing the stand-in server or the
    batch modules; only running ``--fake``, ``batch`` or ``serve-fake`` (whose parser is the stand-in's) loads them."""
    code = (
        "import contextlib, io\n"
        "from imageprovider.cli import main\n"
        "for args in (['--help'], ['generate', '--help'], ['batch', '--help'], ['models', '--help']):\n"
        "    with contextlib.redirect_stdout(io.StringIO()):\n"
        "        try:\n"
        "            main(args)\n"
        "        except SystemExit:\n"
        "            pass"
    )
    loaded = _loaded_after(code)
    assert loaded["imageprovider.testing"] is False
    assert loaded["imageprovider.batch"] is False


def test_default_timeout_is_sent_with_every_request(mocked, provider):
    """Requests never go out without a timeout: (5 s connect, 600 s read) by default."""
    from helpers import GENERATIONS_URL, images_body

    mocked.add("POST", GENERATIONS_URL, json=images_body())
    provider.generate_image("an otter")
    assert mocked.calls[0].request.req_kwargs["timeout"] == (5.0, 600.0)


def test_version_is_exported():
    """The package exposes its version."""
    assert imageprovider.__version__ == "0.1.0"


def test_broken_schema_file_raises_our_error_not_jsonschemas(monkeypatch):
    """A schema whose $ref cannot be resolved surfaces as ImageProviderError, never a jsonschema exception."""
    from imageprovider import ImageProviderError

    broken = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "$id": "https://schemas.imageprovider.invalid/x.json",
        "properties": {"a": {"$ref": "#/definitions/missing"}},
    }
    monkeypatch.setattr(_schemas, "_validators", {})
    monkeypatch.setattr(_schemas, "load_schema", lambda name: broken)
    with pytest.raises(ImageProviderError) as caught:
        _schemas.find_violation("x", {"a": 1})
    assert type(caught.value) is ImageProviderError
    assert "could not be applied" in str(caught.value)


def test_every_exception_is_exported_from_the_package():
    """The package's explicit __all__ (which type checkers need) keeps up with exceptions.__all__."""
    assert set(exceptions.__all__) <= set(imageprovider.__all__)


@pytest.mark.parametrize(
    "method, names, besides",
    [
        ("generate_image", provider.GENERATION_PARAMETERS, set()),
        ("edit_image", provider.EDIT_PARAMETERS, {"mask"}),
        ("create_variation", provider.VARIATION_PARAMETERS, set()),
    ],
)
def test_the_parameter_lists_match_the_method_signatures(method, names, besides):
    """The command line and batch items accept exactly the API keywords each method takes."""
    not_api = {"extra_body", "timeout", "save_to", "overwrite", "metadata"}
    signature = inspect.signature(getattr(provider.OpenAIImageProvider, method))
    keywords = [p.name for p in signature.parameters.values() if p.kind is inspect.Parameter.KEYWORD_ONLY]
    assert [name for name in keywords if name not in not_api | besides] == list(names)
