"""The configuration: Dassl-compatible defaults, merging YAML files and options, the domain of every key."""

from .defaults import get_cfg_default
from .merge import merge_from_file, merge_from_list

__all__ = ["get_cfg_default", "merge_from_file", "merge_from_list"]
