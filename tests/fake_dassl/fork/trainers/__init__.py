"""The stand-in fork's own trainers package (it shadows this toolbox's ``trainers`` folder)."""
