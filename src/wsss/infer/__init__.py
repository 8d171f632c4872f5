"""Inference stages: saliency maps, localization maps (CAMs), segmentation."""
