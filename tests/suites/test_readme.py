"""Every Python example in README.rst runs, against mocked endpoints, and does what it says."""

import base64
import contextlib
import io
import json
import re
from pathlib import Path

import pytest
import responses
from helpers import PNG_B64, images_body, make_jpeg, make_png, readme_python_blocks

README = Path(__file__).resolve().parents[2] / "README.rst"
JPEG = make_jpeg(8, 8)


def _python_blocks():
    """The examples, without the deployment recipes (the integration tests run those in their frameworks)."""
    return [block for block in readme_python_blocks() if not block.startswith("# recipe:")]


def test_every_recipe_has_an_integration_test():
    recipes = sorted(
        block.split("\n", 1)[0].split(": ", 1)[1] for block in readme_python_blocks() if block.startswith("# recipe:")
    )
    tested = sorted(
        path.stem[len("test_recipe_") :] for path in (README.parent / "tests" / "integration").glob("test_recipe_*.py")
    )
    assert recipes == tested == ["django", "flask"]


def _sse(kind):
    event = {
        "b64_json": PNG_B64,
        "created_at": 1,
        "size": "1024x1024",
        "quality": "high",
        "background": "opaque",
        "output_format": "png",
    }
    partials = [dict(event, type=kind + ".partial_image", partial_image_index=i) for i in range(2)]
    done = dict(event, type=kind + ".completed", usage={"input_tokens": 5, "output_tokens": 7, "total_tokens": 12})
    return "".join("event: {}\ndata: {}\n\n".format(e["type"], json.dumps(e)) for e in partials + [done])


#: What the GIF and SVG example gets back: a real one-frame GIF and a small SVG document.
GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAICRAEAOw==")
SVG = b'<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"/>\n'
SVG_USAGE = {"input_tokens": 10, "output_tokens": 20, "reasoning_tokens": 5, "total_tokens": 35, "model": "gpt-5"}


def _images_or_stream(request):
    sent = json.loads(request.body) if request.headers.get("Content-Type", "").startswith("application/json") else {}
    if sent.get("stream"):
        return 200, {"Content-Type": "text/event-stream"}, _sse("image_generation")
    if sent.get("output_format") in ("gif", "svg"):
        data = GIF if sent["output_format"] == "gif" else SVG
        body = images_body(
            data=[{"b64_json": base64.b64encode(data).decode("ascii")}], output_format=sent["output_format"]
        )
        if sent["output_format"] == "svg":
            body["svg_usage"] = SVG_USAGE
        return 200, {"x-request-id": "req_readme"}, json.dumps(body)
    return 200, {"x-request-id": "req_readme"}, json.dumps(images_body())


def _run_example_tests(namespace):
    """Run test functions an example defines, with the plugin's fixtures made by hand."""
    from imageprovider import OpenAIImageProvider
    from imageprovider.testing import FakeImagesServer

    for name, function in list(namespace.items()):
        if name.startswith("test_") and callable(function):
            with FakeImagesServer() as server:
                with OpenAIImageProvider(api_key=server.api_key, base_url=server.base_url) as provider:
                    function(fake_images_server=server, fake_images_provider=provider)
            namespace["_ran_" + name] = True


@pytest.mark.parametrize("block", _python_blocks(), ids=lambda b: b.strip().splitlines()[-1][:40])
def test_readme_example_runs(block, tmp_path, monkeypatch):
    """The example runs as written and writes the files it names."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-readme")
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "azure-readme")
    (tmp_path / "cat.png").write_bytes(make_png(8, 8))
    (tmp_path / "local.png").write_bytes(make_png(8, 8))
    (tmp_path / "square.png").write_bytes(make_png(8, 8))
    (tmp_path / "cat-mask.png").write_bytes(make_png(8, 8, 6))
    (tmp_path / "helmet.jpg").write_bytes(JPEG)
    variations = {
        "created": 1,
        "data": [{"url": "https://files.example/1.png"}, {"url": "https://files.example/2.png"}],
    }
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add_passthru("http://127.0.0.1")  # the stand-in server's examples talk to it for real
        for base in (
            "https://api.openai.com/v1",
            "https://gateway.example.com/v1",
            "https://my-resource.openai.azure.com/openai/deployments/gpt-image-1",
        ):
            mock.add_callback("POST", base + "/images/generations", callback=_images_or_stream)
            mock.add("POST", base + "/images/edits", json=images_body())
        mock.add("POST", "https://my-compatible-server.example/v1/images/variations", json=variations)
        output = io.StringIO()
        namespace = {"__name__": "readme_example"}
        with contextlib.redirect_stdout(output):
            exec(compile(block, "README.rst", "exec"), namespace)
            _run_example_tests(namespace)
        calls = len(mock.calls)
    for name in re.findall(r'Path\("([^"%]+)"\)\.write_bytes', block):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    if 'output_format="gif"' in block:
        assert (tmp_path / "ball.gif").read_bytes() == GIF
        assert (tmp_path / "fox.svg").read_bytes() == SVG
        assert output.getvalue().strip() == "35"
    if "preview-%d.png" in block:
        assert sorted(p.name for p in tmp_path.glob("preview-*.png")) == ["preview-0.png", "preview-1.png"]
    if "4000x4000" in block:
        assert calls == 0
        assert "fix parameter size" in output.getvalue()
    elif "FakeImagesServer(" in block:
        assert "image/png" in output.getvalue() and "429 as scripted: 1" in output.getvalue()
        assert "2 requests on 1 connection(s)" in output.getvalue()
    elif "def test_" in block:
        assert "_ran_test_thumbnail_job_survives_a_refusal" in namespace
    else:
        assert calls >= 1
