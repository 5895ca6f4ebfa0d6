"""``python -m imageprovider``: the same as the ``imageprovider`` command."""

import sys

from .cli import main

sys.exit(main())
