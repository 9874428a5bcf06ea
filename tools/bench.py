"""Performance benchmark: the CAPT training step vs its floor and a reference-style step, PGD evaluation vs its
floor, and text-context truncation (random weights, random inputs).

    python tools/bench.py --arch tiny-p8-32 --classes 50 --batch 4 --steps 3
    python tools/bench.py --arch ViT-B/16 --classes 50 --batch 4 --steps 3 --precision bf16 --repeats 3 --json out.json

See docs/PERFORMANCE.md for what each number means and measured results.
"""

import sys
import warnings

warnings.filterwarnings("ignore", message=".*pkg_resources.*")

from promptengine.bench.run import main  # noqa: E402  (after the warnings filter)

if __name__ == "__main__":
    sys.exit(main())
