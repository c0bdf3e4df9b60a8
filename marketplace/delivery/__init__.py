"""Delivery: the package a buyer downloads after paying (WebDataset shards, metadata, dataset
card, licences, certificate), built by a job and served from storage."""
