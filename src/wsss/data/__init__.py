"""Data: the on-disk layout (VOC 2012 + SBD), the synthetic benchmark, downloads, preparation, datasets.

Nothing is imported here: `wsss.data.datasets` pulls in torch (~3 s), which the synthesis,
download and preparation jobs do not need.
"""
