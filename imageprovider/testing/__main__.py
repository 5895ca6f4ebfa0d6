"""``python -m imageprovider.testing``: run the stand-in server in the foreground."""

import sys

from ._cli import main

sys.exit(main())
