"""Run a grid of protocol runs (methods x protocols x datasets x seeds x shots x options) through a launcher.

    python tools/sweep.py run GRID.yaml [--launcher local|slurm|sequential] [--jobs N] [--threads N] [--wait]
    python tools/sweep.py status GRID.yaml        (or --state DIR)
    python tools/sweep.py collect GRID.yaml [-- compare.py options]

See docs/EXPERIMENTS.md.
"""

import sys

from promptengine.sweep.cli import entry

if __name__ == "__main__":
    sys.exit(entry())
