"""The protocol runner's command line, behind ``scripts/lib/protocol.sh`` (docs/EXPERIMENTS.md):

    protocol.sh METHOD {base2new|fewshot|xd|dg|zsrobust} ARGS...     (METHOD: a script folder or trainer name)
    protocol.sh compare PROTOCOL [OPTIONS...]               (scripts/compare_<protocol>.sh)

Environment: DATA (dataset root, default ./data), OUTPUT (default ./output), CFG (trainer config name), BACKBONE
(MODEL.BACKBONE.NAME override), PYTHON (interpreter for train.py), EXTRA_OPTS (KEY VALUE options appended to every
run), SEEDS (default "1 2 3"), SHOTS (training shots; fewshot: the list of shot counts), SOURCE and WORLD (xd/dg/
zsrobust source), PRESET (zsrobust's preset, docs/ZSROBUST.md), DRY_RUN=1 (print the commands instead of running
them).
"""

from __future__ import annotations

import os
import sys
from typing import List, Optional

from ..errors import UserError
from .compare import compare_main
from .layout import PROTOCOLS
from .methods import check_offers, method_table, resolve_method
from .runner import RunFailed, execute
from .runs import check_call_weights, parse_call, plan_call

USAGE = ("usage: protocol.sh METHOD {" + "|".join(PROTOCOLS) + "} ARGS... | protocol.sh compare PROTOCOL [OPTIONS...]")


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    env = dict(os.environ)
    try:
        if argv[:1] == ["compare"]:
            return compare_main(argv[1:], env)
        if argv[:1] and argv[0] in PROTOCOLS:
            raise UserError(f"{USAGE}; the method comes before the protocol (regenerate old wrappers with "
                            "`python -m promptengine.protocols.scripts`)")
        if len(argv) < 2 or argv[1] not in PROTOCOLS:
            raise UserError(USAGE)
        method = resolve_method(argv[0], method_table())
        check_offers(method, argv[1])
        call = parse_call(argv[1], argv[2:], env)
        steps = plan_call(method, call, env)
        check_call_weights(method, call, env)  # a missing or different weights file: one line, no run started
        execute(steps, env)
        return 0
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except RunFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.code
