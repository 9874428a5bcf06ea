"""The training engine: Dassl's trainer lifecycle, checkpoints and exact resume, run identity and run folders."""
