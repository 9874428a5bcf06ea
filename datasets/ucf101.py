"""UCF101 (one middle frame per video): 101 human actions."""

import os
import re

from promptengine.data.datum import Datum
from promptengine.data.splits import (
    SplitDataset,
    bad_line,
    read_lines,
    require,
    split_trainval,
)
from promptengine.registry import DATASET_REGISTRY


@DATASET_REGISTRY.register()
class UCF101(SplitDataset):
    """Without the JSON: split 01 (``trainlist01.txt`` cut 80/20 per class, ``testlist01.txt``), labels
    from ``classInd.txt``. ``ApplyEyeMakeup`` becomes ``Apply_Eye_Makeup`` (the frame folder name and
    the class name); ``.avi`` becomes ``.jpg``."""

    dataset_dir = "ucf101"
    split_file = "split_zhou_UCF101.json"
    template = "a photo of a person doing {}."
    image_subdir = "UCF-101-midframes"

    def _generate(self):
        path = self._list_file("classInd.txt")
        cname2lab = {}
        for lineno, line in read_lines(path):
            fields = line.split()
            if len(fields) != 2 or not fields[0].isdigit():
                raise bad_line(path, lineno, "'<class id> <ActionName>'", line)
            cname2lab[fields[1]] = int(fields[0]) - 1
        train, val = split_trainval(self.read_list(cname2lab, "trainlist01.txt"))
        return train, val, self.read_list(cname2lab, "testlist01.txt")

    def _list_file(self, filename):
        path = os.path.join(self.dataset_dir, "ucfTrainTestlist", filename)
        return require(type(self).__name__, path, "the official UCF101 train/test split lists")

    def read_list(self, cname2lab, filename):
        path = self._list_file(filename)
        items = []
        for lineno, line in read_lines(path):
            action, _, video = line.split()[0].partition("/")
            if action not in cname2lab or not video:
                raise bad_line(path, lineno, "'<ActionName>/<video>.avi' of a class in classInd.txt", line)
            renamed = "_".join(re.findall("[A-Z][^A-Z]*", action))
            impath = os.path.join(self.image_dir, renamed, video.replace(".avi", ".jpg"))
            items.append(Datum(impath, cname2lab[action], classname=renamed))
        return items
