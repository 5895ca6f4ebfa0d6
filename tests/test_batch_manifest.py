"""The batch manifest: exact lines, latest state wins, torn and garbage lines,
thread safety, one fsync per record, leftover temporary files, and a real
``kill -9`` in the middle of appending.
"""

import datetime
import errno
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path
from typing import Any, Dict, List

import pytest

from imageprovider.batch import _manifest
from imageprovider.batch._manifest import MANIFEST_NAME, ItemRecord, Manifest, summarize

REPO_ROOT = Path(__file__).resolve().parents[1]


def lines_of(folder: Path) -> List[bytes]:
    """The manifest's raw lines, each still ending in its newline."""
    return (folder / MANIFEST_NAME).read_bytes().splitlines(keepends=True)


def parsed(folder: Path) -> List[Dict[str, Any]]:
    """Every manifest line parsed; fails the test on any line that is not a complete JSON object."""
    result = []
    for raw in lines_of(folder):
        assert raw.endswith(b"\n"), raw
        data = json.loads(raw)
        assert isinstance(data, dict)
        result.append(data)
    return result


def record_done(manifest: Manifest, item_id: str, attempts: int = 1, **extra: Any) -> None:
    manifest.done(
        item_id,
        files=[item_id + ".png"],
        usage=None,
        request_id="req_" + item_id,
        revised_prompts=[None],
        attempts=attempts,
        extra=extra or None,
    )


class TestLines:
    def test_done_and_failed_lines_are_written_exactly(self, tmp_path: Path) -> None:
        """One compact JSON object per line, with exactly the documented keys."""
        with Manifest(tmp_path) as manifest:
            manifest.done(
                "cat",
                files=["cat-1.png", "cat-2.png"],
                usage={"total_tokens": 12},
                request_id="req_1",
                revised_prompts=["A cat", None],
                attempts=2,
                extra={"prompt": "cat"},
            )
            manifest.failed(
                "dog", error_class="RateLimitError", message="slow down", request_id=None, attempts=3, line=7
            )
        raw_done, raw_failed = lines_of(tmp_path)
        assert b" " not in raw_done.replace(b"A cat", b"") and raw_done.endswith(b"}\n")
        done, failed = json.loads(raw_done), json.loads(raw_failed)
        time = done.pop("time")
        assert done == {
            "id": "cat",
            "state": "done",
            "attempts": 2,
            "files": ["cat-1.png", "cat-2.png"],
            "usage": {"total_tokens": 12},
            "request_id": "req_1",
            "revised_prompts": ["A cat", None],
            "prompt": "cat",
        }
        assert list(json.loads(raw_done))[:4] == ["id", "state", "attempts", "time"]
        assert datetime.datetime.fromisoformat(time).utcoffset() == datetime.timedelta(0)
        failed.pop("time")
        assert failed == {
            "id": "dog",
            "state": "failed",
            "attempts": 3,
            "error_class": "RateLimitError",
            "message": "slow down",
            "request_id": None,
            "line": 7,
        }

    def test_records_read_back_as_written(self, tmp_path: Path) -> None:
        """``data`` is the whole line; non-ASCII survives the round trip."""
        with Manifest(tmp_path) as manifest:
            manifest.done("chat ☕", files=[], usage=None, request_id=None, revised_prompts=["un café ☕"], attempts=1)
            records = manifest.load()
        assert records["chat ☕"] == ItemRecord("chat ☕", "done", 1, parsed(tmp_path)[0])
        assert records["chat ☕"].data["revised_prompts"] == ["un café ☕"]

    def test_out_dir_is_created(self, tmp_path: Path) -> None:
        folder = tmp_path / "a" / "b"
        with Manifest(str(folder)) as manifest:
            assert manifest.load() == {}
        assert (folder / MANIFEST_NAME).is_file()

    def test_extra_may_not_replace_own_keys(self, tmp_path: Path) -> None:
        """Nothing is written when the line would be wrong."""
        with Manifest(tmp_path) as manifest:
            with pytest.raises(ValueError, match="state"):
                record_done(manifest, "a", state="failed")
            with pytest.raises(TypeError):
                record_done(manifest, "a", unserialisable=object())
            with pytest.raises(ValueError, match="attempts"):
                record_done(manifest, "a", attempts=-1)
        assert lines_of(tmp_path) == []

    def test_closed_manifest_refuses_use(self, tmp_path: Path) -> None:
        manifest = Manifest(tmp_path)
        manifest.close()
        manifest.close()
        with pytest.raises(ValueError, match="closed"):
            record_done(manifest, "a")
        with pytest.raises(ValueError, match="closed"):
            manifest.load()


class TestLoad:
    def test_latest_state_wins(self, tmp_path: Path) -> None:
        """A later line supersedes an earlier one for the same id, also across runs."""
        with Manifest(tmp_path) as manifest:
            manifest.failed("a", error_class="APITimeoutError", message="timeout", request_id=None, attempts=1)
            record_done(manifest, "b")
        with Manifest(tmp_path) as manifest:
            record_done(manifest, "a", attempts=2)
            manifest.failed("b", error_class="BadRequestError", message="no", request_id="req", attempts=2)
            records = manifest.load()
        assert {key: (value.state, value.attempts) for key, value in records.items()} == {
            "a": ("done", 2),
            "b": ("failed", 2),
        }
        assert summarize(records) == {"done": 1, "failed": 1}
        assert summarize({}) == {"done": 0, "failed": 0}

    def test_torn_last_line_is_ignored_and_repaired(self, tmp_path: Path) -> None:
        with Manifest(tmp_path) as manifest:
            record_done(manifest, "a")
        complete = (tmp_path / MANIFEST_NAME).read_bytes()
        with open(str(tmp_path / MANIFEST_NAME), "ab") as stream:
            stream.write(b'{"id":"b","state":"do')
        with Manifest(tmp_path) as manifest:
            assert list(manifest.load()) == ["a"]
            assert (tmp_path / MANIFEST_NAME).read_bytes() == complete
            record_done(manifest, "c")
            assert list(manifest.load()) == ["a", "c"]
        assert [line["id"] for line in parsed(tmp_path)] == ["a", "c"]

    def test_torn_line_is_cut_even_without_load(self, tmp_path: Path) -> None:
        """The first append never continues a torn line, whether or not load() ran."""
        (tmp_path / MANIFEST_NAME).write_bytes(b'{"id":"a","state":"done","attempts":1}\n{"id":"b"')
        with Manifest(tmp_path) as manifest:
            record_done(manifest, "c")
        assert [line["id"] for line in parsed(tmp_path)] == ["a", "c"]

    def test_a_lone_torn_line_empties_the_file(self, tmp_path: Path) -> None:
        (tmp_path / MANIFEST_NAME).write_bytes(b'{"id":"a","state":"done","attempts":1}')
        with Manifest(tmp_path) as manifest:
            assert manifest.load() == {}
        assert (tmp_path / MANIFEST_NAME).read_bytes() == b""

    def test_garbage_lines_are_ignored(self, tmp_path: Path) -> None:
        garbage = [
            b"not json",
            b"[1, 2]",
            b'"text"',
            b"",
            b"   ",
            b"\xff\xfe{}",
            b"[" * 100000,
            b'{"state":"done"}',
            b'{"id":"x"}',
            b'{"id":1,"state":"done"}',
            b'{"id":"y","state":"queued"}',
            b'{"id":"z","state":"done","attempts":"two"}',
            b'{"id":"w","state":"failed"}\r',
        ]
        (tmp_path / MANIFEST_NAME).write_bytes(b"\n".join(garbage) + b"\n")
        with Manifest(tmp_path) as manifest:
            records = manifest.load()
            record_done(manifest, "after")
            after = manifest.load()
        assert {key: (value.state, value.attempts) for key, value in records.items()} == {
            "z": ("done", 0),
            "w": ("failed", 0),
        }
        assert set(after) == {"z", "w", "after"}
        # Garbage in the middle is left alone; only a torn tail is cut.
        assert lines_of(tmp_path)[: len(garbage)] == [line + b"\n" for line in garbage]


class TestDurability:
    def test_threads_never_interleave_lines(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """8 threads x 200 appends of varied length give 1600 whole lines, each thread's in order."""
        synced: List[int] = []
        monkeypatch.setattr(_manifest.os, "fsync", synced.append)  # real fsyncs only slow this test down
        threads_count, per_thread = 8, 200
        start = threading.Barrier(threads_count)
        with Manifest(tmp_path) as manifest:
            synced.clear()

            def work(number: int) -> None:
                start.wait()
                for index in range(per_thread):
                    manifest.failed(
                        f"t{number}-{index}",
                        error_class="APIConnectionError",
                        message="x" * random.randint(0, 20000),
                        request_id=None,
                        attempts=index,
                    )

            threads = [threading.Thread(target=work, args=(number,)) for number in range(threads_count)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            records = manifest.load()
        lines = parsed(tmp_path)
        assert len(lines) == len(records) == len(synced) == threads_count * per_thread
        for number in range(threads_count):
            mine = [line["attempts"] for line in lines if line["id"].startswith(f"t{number}-")]
            assert mine == list(range(per_thread))

    def test_every_append_is_fsynced_after_its_write(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        seen: List[int] = []
        real_fsync = os.fsync

        def counting_fsync(fd: int) -> None:
            # The line must already be in the file when it is synced.
            seen.append(len(lines_of(tmp_path)))
            real_fsync(fd)

        with Manifest(tmp_path) as manifest:
            monkeypatch.setattr(_manifest.os, "fsync", counting_fsync)
            for count in range(1, 6):
                record_done(manifest, f"i{count}")
                assert seen == list(range(1, count + 1))
            manifest.failed("f", error_class="E", message="m", request_id=None, attempts=1)
            assert seen[-1] == 6 and len(seen) == 6

    def test_short_write_is_completed(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        real_write = os.write
        calls: List[int] = []

        def short_write(fd: int, data: Any) -> int:
            calls.append(len(data))
            return real_write(fd, bytes(data)[: max(1, len(data) // 2)] if len(calls) == 1 else data)

        with Manifest(tmp_path) as manifest:
            monkeypatch.setattr(_manifest.os, "write", short_write)
            record_done(manifest, "a")
        assert len(calls) == 2 and [line["id"] for line in parsed(tmp_path)] == ["a"]

    def test_failed_write_is_cut_before_the_next_append(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """Disk full halfway through a line: the caller sees the error, the next record starts clean."""
        real_write = os.write

        def half_then_full(fd: int, data: Any) -> int:
            real_write(fd, bytes(data)[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")

        with Manifest(tmp_path) as manifest:
            record_done(manifest, "a")
            monkeypatch.setattr(_manifest.os, "write", half_then_full)
            with pytest.raises(OSError):
                record_done(manifest, "b")
            monkeypatch.setattr(_manifest.os, "write", real_write)
            record_done(manifest, "c")
            assert list(manifest.load()) == ["a", "c"]
        assert [line["id"] for line in parsed(tmp_path)] == ["a", "c"]


class TestPartialFiles:
    def test_only_leftover_temporary_files_are_removed(self, tmp_path: Path) -> None:
        handle, leftover = tempfile.mkstemp(prefix=".imageprovider-", suffix=".part", dir=str(tmp_path))
        os.close(handle)
        (tmp_path / ".imageprovider-abc.part").write_bytes(b"x")
        kept = [
            "imageprovider-abc.part",
            ".imageprovider-abc.part.png",
            ".imageprovider-abc.tmp",
            "a.part",
            ".IMAGEPROVIDER-abc.PART",
            "cat.png",
            MANIFEST_NAME,
        ]
        for name in kept:
            (tmp_path / name).write_bytes(b"x")
        (tmp_path / ".imageprovider-folder.part").mkdir()
        (tmp_path / "sub").mkdir()
        (tmp_path / "sub" / ".imageprovider-deep.part").write_bytes(b"x")

        removed = Manifest.clean_partial_files(str(tmp_path))

        assert removed == sorted([".imageprovider-abc.part", os.path.basename(leftover)])
        assert sorted(os.listdir(str(tmp_path))) == sorted(kept + [".imageprovider-folder.part", "sub"])
        assert (tmp_path / "sub" / ".imageprovider-deep.part").exists()
        assert Manifest.clean_partial_files(tmp_path) == []
        assert Manifest.clean_partial_files(tmp_path / "missing") == []


CHILD = textwrap.dedent("""
    import sys
    import time
    from imageprovider.batch._manifest import Manifest

    manifest = Manifest(sys.argv[1])
    prompt = "p" * 300000
    manifest.done("first", files=[], usage=None, request_id=None, revised_prompts=[None], attempts=1)
    print("ready", flush=True)
    deadline = time.monotonic() + 30
    index = 0
    while time.monotonic() < deadline:
        # Large lines span many pages, so a kill can land inside one write.
        manifest.done("item-%d" % index, files=["f.png"], usage={"total_tokens": index}, request_id=None,
                      revised_prompts=[prompt[:index * 7919 % 300000]], attempts=1)
        index += 1
""")


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL does not exist on Windows")
@pytest.mark.parametrize("run", range(3))
@pytest.mark.slow
def test_kill_9_while_appending_leaves_a_loadable_manifest(tmp_path: Path, run: int) -> None:
    # ``python -c`` puts the working folder first on sys.path: the checkout under test.
    command = [sys.executable, "-c", CHILD, str(tmp_path)]
    with subprocess.Popen(command, cwd=str(REPO_ROOT), stdout=subprocess.PIPE, stderr=subprocess.PIPE) as child:
        try:
            assert child.stdout is not None and child.stdout.readline() == b"ready\n"
            time.sleep(random.uniform(0.05, 0.25))
        finally:
            child.send_signal(signal.SIGKILL)
            _, errors = child.communicate(timeout=30)
    assert child.returncode == -signal.SIGKILL, errors

    with Manifest(tmp_path) as manifest:
        records = manifest.load()
        assert "first" in records and all(record.state == "done" for record in records.values())
        written = parsed(tmp_path)  # after the repair, every line is whole
        assert [line["id"] for line in written] == list(records)
        record_done(manifest, "after")
        assert list(manifest.load())[-1] == "after"
    assert [line["id"] for line in parsed(tmp_path)][-1] == "after"
