"""CIFAR-100 from the python version's pickles (``cifar-100-python/``, torchvision's on-disk format); fine labels."""

from promptengine.registry import DATASET_REGISTRY

from .cifar10 import CifarDataset


@DATASET_REGISTRY.register()
class CIFAR100(CifarDataset):
    """The 100 fine classes ("aquarium_fish" becomes "aquarium fish"); the 20 coarse labels are not used."""

    dataset_dir = "cifar-100-python"
    template = "a photo of a {}."
    train_files = ("train",)
    test_file = "test"
    meta_file = "meta"
    names_key = "fine_label_names"
    label_key = "fine_labels"
