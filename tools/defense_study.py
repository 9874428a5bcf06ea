#!/usr/bin/env python
"""Test-time defenses under non-adaptive and adaptive attacks, with paired intervals (``capt-defense-study``;
docs/ROBUSTNESS.md).

    python tools/defense_study.py                      # 3 seeds x 64 images per part, about 25 minutes on 2 cores
    python tools/defense_study.py --analyse-only DIR   # the table again from an earlier study's output
    python tools/defense_study.py --size ci            # the same code path at a tiny budget
"""

import sys

from promptengine.lab.defense_cli import main

if __name__ == "__main__":
    sys.exit(main())
