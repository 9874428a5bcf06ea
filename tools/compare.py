"""Side-by-side comparison tables (and plots) of every results.json under an output root.

    python tools/compare.py output
    python tools/compare.py output --protocol base2new --format latex --out table.tex
    python tools/compare.py output --format markdown --plots plots/

See docs/EXPERIMENTS.md for what each number means.
"""

import sys

from promptengine.reporting.cli import compare_main

if __name__ == "__main__":
    sys.exit(compare_main())
