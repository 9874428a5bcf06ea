"""The stand-in fork's own dataset loaders (a fork's ``datasets`` package shadows this toolbox's)."""
