"""Structure checks: one place per fact, module layering (each helper's checks are its own test functions)."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE_DIRS = ("configs", "datasets", "docs", "promptengine", "scripts", "tests", "tools", "trainers")


def test_openai_checksums_live_only_in_the_clip_package():
    """OpenAI's SHA-256s are part of the clip package's download URLs; the weights catalogue reads them from there.
    A copy anywhere in the repository could silently disagree with the URL clip.load checks."""
    from promptengine.clip.openai_clip import clip

    hashes = {re.search(r"/([0-9a-f]{64})/", url)[1] for url in clip.clip._MODELS.values()}
    files = [p for d in SOURCE_DIRS for p in (ROOT / d).rglob("*") if p.is_file() and p.suffix in
             (".py", ".yaml", ".md", ".sh", ".json", ".txt")] + [ROOT / "README.md", ROOT / "DATASETS.md"]
    copies = [(str(p.relative_to(ROOT)), h[:12]) for p in files for h in hashes if h in p.read_text(errors="ignore")]
    assert not copies, f"OpenAI checksums copied into the repository (read them from the clip package): {copies}"
