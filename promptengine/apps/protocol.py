"""``capt-protocol``: the protocol scripts from anywhere, including an installed wheel (docs/SCRIPTS.md).

    capt-protocol METHOD PROTOCOL ARGS...      = bash scripts/<method>/<protocol>.sh ARGS...   (capt base2new synth_shapes 1)
    capt-protocol compare PROTOCOL OPTIONS...  = bash scripts/compare_<protocol>.sh OPTIONS...

The environment variables of the scripts (DATA, OUTPUT, EXTRA_OPTS, SEEDS, LAUNCHER, ...) apply; PYTHON defaults to
the interpreter running this command.
"""

import os
import subprocess
import sys

from promptengine.registry import HOME

PROTOCOLS = ("base2new", "fewshot", "xd", "dg")


def entry() -> int:
    argv = sys.argv[1:]
    if len(argv) < 2 or argv[1] not in PROTOCOLS:
        print(f"error: usage: capt-protocol METHOD {{{'|'.join(PROTOCOLS)}}} ARGS... | capt-protocol compare PROTOCOL "
              "OPTIONS...", file=sys.stderr)
        return 2
    method, protocol = argv[0].lower(), argv[1]
    script = HOME / "scripts" / (f"compare_{protocol}.sh" if method == "compare" else f"{method}/{protocol}.sh")
    if not script.is_file():
        known = sorted(p.name for p in (HOME / "scripts").iterdir() if (p / "base2new.sh").is_file())
        print(f"error: unknown method '{argv[0]}' (known: {', '.join(known)})", file=sys.stderr)
        return 2
    env = dict(os.environ)
    env.setdefault("PYTHON", sys.executable)
    return subprocess.call(["bash", str(script), *argv[2:]], env=env)


if __name__ == "__main__":
    sys.exit(entry())
