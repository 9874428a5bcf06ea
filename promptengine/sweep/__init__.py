"""The sweep runner: a grid of protocol runs, run through a launcher, with per-point logs and status.

The grid spans methods x protocols x datasets x seeds x shots x options; the launcher is sequential, a local process
pool, or Slurm job arrays through submitit.

Each grid point is one call of ``scripts/<method>/<protocol>.sh``; identity checks, skipping and folder naming stay
in the protocol runner and ``train.py``. See docs/EXPERIMENTS.md.
"""
