"""The sweep runner: a grid of protocol runs (methods x protocols x datasets x seeds x shots x options) run through a
launcher (sequential, a local process pool, or Slurm job arrays through submitit), with per-point logs and status.

Each grid point is one call of ``scripts/<method>/<protocol>.sh``; identity checks, skipping and folder naming stay
in the protocol runner and ``train.py``. See docs/SCALING.md.
"""
