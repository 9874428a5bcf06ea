"""The protocol runner behind ``scripts/lib/protocol.sh``; the protocols themselves are ``promptengine/protocols``.

    python tools/run_protocol.py METHOD {base2new|fewshot|xd|dg} ARGS...
    python tools/run_protocol.py compare PROTOCOL [OPTIONS...]

See docs/EXPERIMENTS.md.
"""

import sys

from promptengine.protocols.cli import main

if __name__ == "__main__":
    sys.exit(main())
