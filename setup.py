"""Package layout of the wheel (the metadata is in pyproject.toml).

The checkout keeps CoOp's top-level folders (``trainers/``, ``datasets/``, ``configs/``) and names them
``promptengine.methods``, ``promptengine.benchmarks`` and ``promptengine/configs`` through relative symlinks; the wheel
ships them under those same names as real files (mapped here, so building does not rely on the symlinks), and so
installs no top-level ``datasets`` package.
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
    packages=sorted(set(find_packages(include=["promptengine", "promptengine.*"])) | set(MAPPED)),
    package_dir=MAPPED,
)
