"""Robustness reports: how a robust-accuracy number behaves as the attack gets stronger, and whether it can be trusted.

    target = load_run("output/.../seed1")                     # or zero_shot_target(dataset_yaml, trainer_yaml)
    report = build_report(target, ReportSettings.quick())     # every stage on a fixed class-balanced subset
    write_report(report, "output/.../seed1/robust_report")     # report.md, report.json, PNG plots

Every attack goes through the project's single attack core (``promptengine.attacks.attack``). See docs/ROBUSTNESS.md.
"""

from .flags import Flag, masking_flags
from .report import build_report, write_report
from .settings import ReportSettings
from .target import Part, Target, load_run, zero_shot_target

__all__ = ["Flag", "Part", "ReportSettings", "Target", "build_report", "load_run", "masking_flags", "write_report",
           "zero_shot_target"]
