"""``capt-protocol``: the protocol scripts from anywhere, including an installed wheel (docs/EXPERIMENTS.md).

    capt-protocol METHOD PROTOCOL ARGS...      = bash scripts/<method>/<protocol>.sh ARGS...   (capt base2new synth_shapes 1)
    capt-protocol compare PROTOCOL OPTIONS...  = bash scripts/compare_<protocol>.sh OPTIONS...

METHOD is a script folder or a trainer name, also of a plug-in method ($PROMPTENGINE_PLUGINS). The environment
variables of the scripts (DATA, OUTPUT, EXTRA_OPTS, SEEDS, LAUNCHER, ...) apply; PYTHON defaults to the interpreter
running this command.
"""

import os
import subprocess
import sys

from promptengine.protocols.layout import PROTOCOLS
from promptengine.registry import HOME


def entry() -> int:
    argv = sys.argv[1:]
    if len(argv) < 2 or argv[1] not in PROTOCOLS:
        print(f"error: usage: capt-protocol METHOD {{{'|'.join(PROTOCOLS)}}} ARGS... | capt-protocol compare PROTOCOL "
              "OPTIONS...", file=sys.stderr)
        return 2
    env = dict(os.environ)
    env.setdefault("PYTHON", sys.executable)
    return subprocess.call(["bash", str(HOME / "scripts" / "lib" / "protocol.sh"), *argv], env=env)


if __name__ == "__main__":
    sys.exit(entry())
