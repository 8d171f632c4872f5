"""Data: the data sources (wsss.data.sources: synthetic, voc for VOC 2012 + SBD, coco14 for MS-COCO
2014), their raw and prepared layouts, downloads and extraction, raw-file checks, the saliency sets
(DUTS, precomputed maps, released archives), PASCAL-Context, and the datasets every stage reads.

Nothing is imported here: `wsss.data.datasets` pulls in torch (~3 s), which the synthesis,
download and preparation jobs do not need.
"""
