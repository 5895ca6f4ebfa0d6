"""
imageprovider._files
~~~~~~~~~~~~~~~~~~~~

Writing image bytes to disk safely: a temporary file in the target folder,
flushed and fsynced, then renamed over the final name, so an interrupted
write never leaves a partial file under that name.
"""

import os
import tempfile
from typing import Dict

# mkstemp creates files readable by the owner only; a saved image should get
# the permissions any new file gets. The umask can only be read by setting it,
# so it is read once, at import, before threads exist.
_UMASK = os.umask(0)
os.umask(_UMASK)

#: File extension for each sniffed MIME type.
EXTENSIONS: Dict[str, str] = {"image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp"}


def write_atomic(path: str, data: bytes, *, overwrite: bool = False) -> str:
    """Write ``data`` to ``path`` atomically and return the path.

    :raises FileExistsError: ``path`` exists and ``overwrite`` is false.
    """
    folder = os.path.dirname(os.path.abspath(path))
    if not overwrite and os.path.exists(path):
        raise FileExistsError("{} already exists; pass overwrite to replace it".format(path))
    handle, temporary = tempfile.mkstemp(prefix=".imageprovider-", suffix=".part", dir=folder)
    try:
        os.chmod(temporary, 0o666 & ~_UMASK)
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        if overwrite:
            os.replace(temporary, path)
        else:
            _publish_exclusive(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
    return path


def _publish_exclusive(temporary: str, path: str) -> None:
    # os.link fails if the name appeared meanwhile, unlike os.replace; file
    # systems without hard links fall back to a checked replace.
    try:
        os.link(temporary, path)
    except FileExistsError:
        raise FileExistsError("{} already exists; pass overwrite to replace it".format(path)) from None
    except OSError:
        if os.path.exists(path):
            raise FileExistsError("{} already exists; pass overwrite to replace it".format(path)) from None
        os.replace(temporary, path)
    else:
        os.unlink(temporary)
