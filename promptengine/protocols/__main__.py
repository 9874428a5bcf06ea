"""``python -m promptengine.protocols METHOD PROTOCOL ARGS...``: the protocol runner (see ``cli.py``)."""

import sys

from .cli import main

sys.exit(main())
