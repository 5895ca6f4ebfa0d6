"""One log record per request cycle, with structured fields; DEBUG adds the parameters."""

import logging
import sys

import pytest
from helpers import API_KEY, GENERATIONS_URL, images_body
from scripted_server import Reply, ScriptedServer

from imageprovider import BadRequestError, OpenAIImageProvider


def _cycle_records(caplog):
    return [r for r in caplog.records if r.name == "imageprovider" and r.levelno >= logging.INFO]


def test_one_info_record_per_successful_cycle_with_fields(mocked, provider, caplog):
    """method, path, status, attempts, elapsed_ms and request_id ride on the record."""
    caplog.set_level(logging.INFO, logger="imageprovider")
    mocked.add("POST", GENERATIONS_URL, json=images_body(), headers={"x-request-id": "req_log"})
    provider.generate_image("an otter")
    records = _cycle_records(caplog)
    assert len(records) == 1
    record = records[0]
    assert record.levelno == logging.INFO
    assert (record.method, record.path, record.status, record.attempts, record.request_id) == (
        "POST",
        "/images/generations",
        200,
        1,
        "req_log",
    )
    assert isinstance(record.elapsed_ms, int) and record.elapsed_ms >= 0
    assert "POST /images/generations -> 200" in record.getMessage()


def test_retried_cycle_is_still_one_record(mocked, provider, caplog):
    """Retries inside a cycle do not add INFO records; the count is on the one record."""
    caplog.set_level(logging.INFO, logger="imageprovider")
    mocked.add("POST", GENERATIONS_URL, status=500, json={"error": {"message": "x"}})
    mocked.add("POST", GENERATIONS_URL, status=500, json={"error": {"message": "x"}})
    mocked.add("POST", GENERATIONS_URL, json=images_body())
    provider.generate_image("an otter")
    records = _cycle_records(caplog)
    assert [(r.status, r.attempts) for r in records] == [(200, 3)]


def test_failed_cycle_is_one_warning(mocked, provider, caplog):
    """A failed cycle logs at WARNING with its status."""
    caplog.set_level(logging.INFO, logger="imageprovider")
    mocked.add(
        "POST", GENERATIONS_URL, status=400, json={"error": {"message": "bad"}}, headers={"x-request-id": "req_bad"}
    )
    with pytest.raises(BadRequestError):
        provider.generate_image("an otter")
    records = _cycle_records(caplog)
    assert [(r.levelno, r.status, r.request_id) for r in records] == [(logging.WARNING, 400, "req_bad")]


def test_debug_adds_parameters_with_the_prompt_shortened(mocked, provider, caplog):
    """At DEBUG the parameters are logged, a long prompt cut to its start and length."""
    caplog.set_level(logging.DEBUG, logger="imageprovider")
    mocked.add("POST", GENERATIONS_URL, json=images_body())
    prompt = "A very detailed scene " * 40
    provider.generate_image(prompt, size="1024x1024")
    debug = [r for r in caplog.records if r.levelno == logging.DEBUG and hasattr(r, "params")]
    assert len(debug) == 1
    params = debug[0].params
    assert params["size"] == "1024x1024"
    assert params["model"] == "gpt-image-2"
    assert params["prompt"].startswith("A very detailed scene")
    assert params["prompt"].endswith(f"({len(prompt)} chars)")
    assert len(params["prompt"]) < 100
    assert prompt not in debug[0].getMessage()


def test_no_parameter_logging_above_debug(mocked, provider, caplog):
    """At INFO the prompt is never logged."""
    caplog.set_level(logging.INFO, logger="imageprovider")
    mocked.add("POST", GENERATIONS_URL, json=images_body())
    provider.generate_image("a secret prompt")
    assert all("a secret prompt" not in r.getMessage() for r in caplog.records)


def test_package_logger_has_a_null_handler():
    """Importing the library never configures logging for the application."""
    handlers = logging.getLogger("imageprovider").handlers
    assert any(isinstance(h, logging.NullHandler) for h in handlers)


def test_one_dictconfig_formatter_serves_every_record(tmp_path):
    """A formatter naming every documented field (as a Django ``LOGGING`` dict does) formats every record the
    library writes, at DEBUG too: the parameters record, retries, the cycle's record. It used to print a
    logging-error traceback for the DEBUG "request parameters" record, which lacked ``method`` and ``path``."""
    import io
    import logging.config

    from imageprovider._log import FIELDS

    stream = io.StringIO()
    fmt = "%(levelname)s|" + "|".join(f"%({name})s" for name in FIELDS) + "|%(message)s"
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "formatters": {"all": {"format": fmt}},
            "handlers": {"out": {"class": "logging.StreamHandler", "stream": stream, "formatter": "all"}},
            "loggers": {"imageprovider": {"handlers": ["out"], "level": "DEBUG", "propagate": False}},
        }
    )
    logger = logging.getLogger("imageprovider")
    try:
        errors = io.StringIO()
        previous_stderr = sys.stderr
        sys.stderr = errors  # where logging reports a record it cannot format
        try:
            replies = [Reply(500, {"error": {"message": "x"}}), Reply(200, images_body(), {"x-request-id": "req_all"})]
            with ScriptedServer(replies) as server:
                with OpenAIImageProvider(api_key=API_KEY, base_url=server.base_url) as provider:
                    provider.generate_image("an otter")
        finally:
            sys.stderr = previous_stderr
    finally:
        for handler in list(logger.handlers):
            if not isinstance(handler, logging.NullHandler):
                logger.removeHandler(handler)
        logger.setLevel(logging.NOTSET)
        logger.propagate = True
    assert errors.getvalue() == ""
    lines = stream.getvalue().splitlines()
    assert [line.split("|")[0] for line in lines] == ["DEBUG", "DEBUG", "INFO"]
    assert "|2|" in lines[1] and "Retrying in" in lines[1]  # the attempt that follows
    assert lines[0].endswith("Request parameters: {'prompt': 'an otter', 'model': 'gpt-image-2'}")
    assert lines[-1].startswith("INFO|POST|/images/generations|200|2|")
    assert "|req_all|" in lines[-1]
