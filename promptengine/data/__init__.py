"""Datasets and loaders: Datum and DatasetBase, split files, few-shot selection, transforms, the data manager."""
