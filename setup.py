"""Package layout of the wheel (the metadata is in pyproject.toml).

The checkout keeps CoOp's top-level folders (``trainers/``, ``datasets/``, ``configs/``); the wheel ships them inside
the package as ``promptengine.methods``, ``promptengine.benchmarks`` and ``promptengine.configs`` (see
``promptengine/builtin.py``), so installing the toolbox adds no top-level ``datasets`` package.
"""

from setuptools import find_packages, setup

MAPPED = {
    "promptengine.methods": "trainers",
    "promptengine.benchmarks": "datasets",
    "promptengine.configs": "configs",
    # the protocol scripts and tools, so that capt-protocol / capt-sweep work without a checkout
    "promptengine._home.scripts": "scripts",
    "promptengine._home.tools": "tools",
}

setup(
    packages=find_packages(include=["promptengine", "promptengine.*"]) + list(MAPPED),
    package_dir=MAPPED,
)
