"""Command-line programs, importable so that an installed wheel exposes them as console entry points."""
