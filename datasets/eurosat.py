"""EuroSAT (RGB): 10 land-use classes of Sentinel-2 patches."""

import os

from promptengine.data.datum import DatasetBase
from promptengine.data.fewshot import prepare_splits
from promptengine.data.splits import (
    check_images_exist,
    dataset_folder,
    load_or_generate_split,
    read_and_split_data,
    require,
)
from promptengine.registry import DATASET_REGISTRY

NEW_CNAMES = {
    "AnnualCrop": "Annual Crop Land",
    "Forest": "Forest",
    "HerbaceousVegetation": "Herbaceous Vegetation Land",
    "Highway": "Highway or Road",
    "Industrial": "Industrial Buildings",
    "Pasture": "Pasture Land",
    "PermanentCrop": "Permanent Crop Land",
    "Residential": "Residential Buildings",
    "River": "River",
    "SeaLake": "Sea or Lake",
}


@DATASET_REGISTRY.register()
class EuroSAT(DatasetBase):
    dataset_dir = "eurosat"
    split_file = "split_zhou_EuroSAT.json"
    template = "a centered satellite photo of {}."

    def __init__(self, cfg):
        name = type(self).__name__
        self.dataset_dir = dataset_folder(cfg, type(self))
        self.image_dir = os.path.join(self.dataset_dir, "2750")
        train, val, test = load_or_generate_split(cfg, self, self.image_dir, self._generate)
        train, val, test = prepare_splits(cfg, name, self.dataset_dir, train, val, test)
        check_images_exist(name, train, val, test)
        super().__init__(train_x=train, val=val, test=test)

    def _generate(self):
        require(type(self).__name__, self.image_dir, "the 2750/ folder of EuroSAT.zip (RGB)", folder=True)
        return read_and_split_data(self.image_dir, new_cnames=NEW_CNAMES)
