"""Mean +- std over seeds of the clean and robust accuracies in Dassl-style logs (CoOp-compatible).

    python tools/parse_test_res.py output/base2new/train_base/SynthShapes/shots_16/CAPT/synth
    python tools/parse_test_res.py output/base2new/test_new/SynthShapes/shots_16/CAPT/synth --test-log
    python tools/parse_test_res.py output/fewshot/train/SynthShapes --multi-exp --ci95

Flags as CoOp's script (--ci95, --multi-exp, --test-log, --keyword); every robust line is summarised on its own.
"""

import sys

from promptengine.reporting.cli import parse_test_res_main

if __name__ == "__main__":
    sys.exit(parse_test_res_main())
