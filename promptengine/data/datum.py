"""``Datum``: one labelled image, as Dassl's (the datasets' lists hold these; ``DatasetBase`` is in ``dataset.py``)."""

from __future__ import annotations


class Datum:
    """One labelled image. ``impath`` is a file path, or a virtual path for generated datasets.

    Unlike Dassl's Datum the constructor does not stat the file (one stat per image is slow on
    ImageNet); datasets check the images they actually use when they build their splits.
    """

    __slots__ = ("_impath", "_label", "_domain", "_classname")

    def __init__(self, impath: str = "", label: int = 0, domain: int = 0, classname: str = "") -> None:
        self._impath = impath
        self._label = int(label)
        self._domain = int(domain)
        self._classname = classname

    impath = property(lambda self: self._impath)
    label = property(lambda self: self._label)
    domain = property(lambda self: self._domain)
    classname = property(lambda self: self._classname)

    def __repr__(self) -> str:
        return f"Datum({self._impath!r}, label={self._label}, classname={self._classname!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Datum) and (self._impath, self._label, self._classname) == (
            other._impath,
            other._label,
            other._classname,
        )

    def __hash__(self) -> int:
        return hash((self._impath, self._label, self._classname))
