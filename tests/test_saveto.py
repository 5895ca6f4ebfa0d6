"""``save_to=``: imageprovider._saving.FolderSaver publishes a response's images all or nothing."""

import os
from pathlib import Path
from typing import Iterator, List

import pytest
from helpers import BEFORE_SHUTDOWNS, folder_snapshot, record_parts

from imageprovider import OpenAIImageProvider
from imageprovider._files import PartFile
from imageprovider.testing import FakeImagesServer


@pytest.fixture
def client() -> Iterator[OpenAIImageProvider]:
    with FakeImagesServer(detail_bits=0, today=BEFORE_SHUTDOWNS) as server:
        with OpenAIImageProvider(
            api_key=server.api_key, base_url=server.base_url, max_retries=0, clock=BEFORE_SHUTDOWNS
        ) as provider:
            yield provider


def take_name_when_publishing(monkeypatch: pytest.MonkeyPatch, when: str, taken: Path) -> List[str]:
    """Another process creates ``taken`` just before the image named ``when`` is published; returns the names published."""
    publish = PartFile.publish
    published: List[str] = []

    def racing(self: PartFile, target: Path, *, overwrite: bool = False) -> Path:
        if target.name == when:
            taken.write_bytes(b"someone else's")
        result = publish(self, target, overwrite=overwrite)
        published.append(target.name)
        return result

    monkeypatch.setattr(PartFile, "publish", racing)
    return published


@pytest.mark.parametrize(
    "metadata, appears",
    [(False, "koi-2.png"), (True, "koi-2.png"), (True, "koi-2.json")],
    ids=["image", "image-with-metadata", "sidecar"],
)
def test_regression_a_name_taken_mid_publish_leaves_the_folder_as_it_was(
    client: OpenAIImageProvider, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, metadata: bool, appears: str
) -> None:
    """Regression: when publishing image 2 failed (its name appeared after the check), image 1 stayed published.

    The files this call published (images, and sidecars with ``metadata``)
    are removed again, no ``.part`` is left, and the other process's file is
    untouched.
    """
    opened = record_parts(monkeypatch)
    (tmp_path / "unrelated.txt").write_bytes(b"untouched")
    before = folder_snapshot(tmp_path)
    published = take_name_when_publishing(monkeypatch, "koi-2.png", tmp_path / appears)
    with pytest.raises(FileExistsError) as caught:
        client.generate_image("Koi", n=2, save_to=tmp_path, metadata=metadata)
    assert appears in str(caught.value)
    assert published[:1] == ["koi-1.png"]  # the first image had been published when the second failed
    assert len(opened) == 2 and not any(os.path.exists(part) for part in opened)
    assert folder_snapshot(tmp_path) == dict(before, **{appears: b"someone else's"})


def test_overwrite_keeps_what_it_replaced_when_a_later_publish_fails(
    client: OpenAIImageProvider, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With ``overwrite=True`` the old content is gone once replaced: the new files stay rather than nothing."""
    client.generate_image("Koi", n=2, save_to=tmp_path)
    publish = PartFile.publish

    def failing(self: PartFile, target: Path, *, overwrite: bool = False) -> Path:
        if target.name == "koi-2.png":
            raise OSError("disk on fire")
        return publish(self, target, overwrite=overwrite)

    monkeypatch.setattr(PartFile, "publish", failing)
    with pytest.raises(OSError, match="disk on fire"):
        client.generate_image("Koi", n=2, save_to=tmp_path, overwrite=True)
    assert sorted(folder_snapshot(tmp_path)) == ["koi-1.png", "koi-2.png"]
