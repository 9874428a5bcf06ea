"""The protocol runner behind ``scripts/lib/protocol.sh``; the protocols themselves are ``promptengine/protocols``.

    python tools/run_protocol.py METHOD {base2new|fewshot|xd|dg} ARGS...
    python tools/run_protocol.py compare PROTOCOL [OPTIONS...]

See docs/SCRIPTS.md.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from promptengine.protocols.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
