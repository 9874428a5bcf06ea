#!/usr/bin/env python
"""Does the embedded world show the field's phenomena? The P1-P6 study (``capt-world-phenomena``; docs/SYNTH.md).

    python tools/world_phenomena.py                      # the study: 3 seeds, under 40 minutes on 2 cores
    python tools/world_phenomena.py --analyse-only DIR   # the table again from an earlier study's output
    python tools/world_phenomena.py --size ci            # the same code path at a tiny budget
"""

import sys

from promptengine.lab.cli import main

if __name__ == "__main__":
    sys.exit(main())
