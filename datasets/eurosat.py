"""EuroSAT (RGB): 10 land-use classes of Sentinel-2 patches."""

from promptengine.data.splits import (
    SplitDataset,
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
class EuroSAT(SplitDataset):
    dataset_dir = "eurosat"
    split_file = "split_zhou_EuroSAT.json"
    template = "a centered satellite photo of {}."
    image_subdir = "2750"

    def _generate(self):
        require(type(self).__name__, self.image_dir, "the 2750/ folder of EuroSAT.zip (RGB)", folder=True)
        return read_and_split_data(self.image_dir, new_cnames=NEW_CNAMES)
