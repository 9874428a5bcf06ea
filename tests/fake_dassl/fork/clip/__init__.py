"""The stand-in fork's own ``clip/`` folder (CoOp, MaPLe, PromptSRC and FAP each vendor a modified CLIP here).

It has OpenAI's names with other behaviour, so this toolbox's model breaks at once if it ever runs this package
instead of the installed one: every entry point raises.
"""

from .clip import *  # noqa: F401,F403
