"""The weights catalogue: public CLIP towers by name, where each file goes, and whether a copy is the right one.

``catalogue`` reads ``configs/weights/catalogue.yaml``; ``verify`` checks a file against its published (or pinned)
SHA-256; ``resolve`` turns catalogued names in a run's config into verified paths; ``cli`` is
``python tools/weights.py``. See docs/WEIGHTS.md.
"""
