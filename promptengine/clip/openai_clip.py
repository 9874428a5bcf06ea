"""OpenAI's CLIP code, from the installed distribution, under a name no ``clip/`` folder can take.

CoOp, MaPLe, PromptSRC and FAP ship their own ``clip/`` folder at the repository root. Run from there, or with such
a folder first on ``PYTHONPATH``, a plain ``import clip`` finds theirs: MaPLe's ``build_model`` takes another
argument, CoOp's attention mask has a fixed length, and this toolbox's model breaks. So the toolbox never imports
``clip`` by name. This module finds the installed package through its distribution's metadata (``clip-anytorch``,
or OpenAI's own ``clip``), runs those files under the private module name ``_promptengine_openai_clip`` and gives
every part of the toolbox that module. A repository's own ``clip`` stays importable under its own name for its
own trainers. When another ``clip`` is on the path, or the installed one is not the tested version, one line says
which CLIP is used.

    from promptengine.clip.openai_clip import clip     # clip.load, clip.tokenize, clip.model.CLIP
"""

from __future__ import annotations

import importlib.util
import os
import sys
import warnings
from importlib import metadata
from types import ModuleType
from typing import Optional, Tuple

from ..errors import UserError

TESTED = ("clip-anytorch", "2.6.0")
DISTRIBUTIONS = ("clip-anytorch", "clip", "openai-clip")  # names OpenAI's ``clip`` package is installed under
PRIVATE_NAME = "_promptengine_openai_clip"
INSTALL_HINT = "pip install clip-anytorch==2.6.0"


def installed_package() -> Tuple[str, str, str]:
    """(distribution, version, folder) of the installed ``clip`` package, found by its metadata, not by the path."""
    for name in DISTRIBUTIONS:
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        for file in dist.files or []:
            if file.parts == ("clip", "__init__.py"):
                return dist.metadata["Name"] or name, dist.version, os.path.dirname(str(dist.locate_file(file)))
    raise UserError(f"OpenAI's CLIP is not installed in this Python environment ({sys.executable}); "
                    f"install it with: {INSTALL_HINT}")


def _execute(folder: str) -> ModuleType:
    """The package in ``folder`` imported as ``PRIVATE_NAME`` (its relative imports resolve inside it)."""
    spec = importlib.util.spec_from_file_location(PRIVATE_NAME, os.path.join(folder, "__init__.py"),
                                                  submodule_search_locations=[folder])
    module = importlib.util.module_from_spec(spec)
    sys.modules[PRIVATE_NAME] = module
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # CLIP imports pkg_resources, which warns on import
            spec.loader.exec_module(module)
    except BaseException:
        for key in [k for k in sys.modules if k == PRIVATE_NAME or k.startswith(PRIVATE_NAME + ".")]:
            del sys.modules[key]
        raise
    return module


def path_clip_folder() -> Optional[str]:
    """The folder of the ``clip`` a plain ``import clip`` gives (already imported or first on the path), if any."""
    loaded = sys.modules.get("clip")
    origin = getattr(loaded, "__file__", None) if loaded is not None else None
    if origin is None and loaded is None:
        try:
            spec = importlib.util.find_spec("clip")
        except (ImportError, ValueError):
            spec = None
        origin = spec.origin if spec is not None and spec.has_location else None
    return os.path.dirname(os.path.abspath(origin)) if origin else None


def notice(dist: str, version: str, folder: str, shadow: Optional[str]) -> Optional[str]:
    """The one line printed when the CLIP in use is not the plain, tested one (None when it is)."""
    used = f"OpenAI's CLIP from {dist} {version} ({folder})"
    if shadow is not None and os.path.realpath(shadow) != os.path.realpath(folder):
        return f"Note: the 'clip' package at {shadow} (first on the path) is ignored; this toolbox uses {used}"
    if (dist.lower(), version) != TESTED:
        return f"Note: this toolbox uses {used}; it is tested with {TESTED[0]} {TESTED[1]}"
    return None


def load() -> ModuleType:
    """OpenAI's ``clip`` package, imported once per process under ``PRIVATE_NAME``."""
    if PRIVATE_NAME in sys.modules:
        return sys.modules[PRIVATE_NAME]
    dist, version, folder = installed_package()
    module = _execute(folder)
    line = notice(dist, version, folder, path_clip_folder())
    if line:
        print(line)
    return module


clip = load()
# the model-level names the toolbox uses, taken from the same module
CLIP, build_model, convert_weights = clip.model.CLIP, clip.model.build_model, clip.model.convert_weights
