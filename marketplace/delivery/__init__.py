"""Delivery: dataset packages (WebDataset, Parquet, Croissant) and provenance certificates."""
