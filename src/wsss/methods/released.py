"""`released`: the EPS authors' released pseudo-masks of the dataset (EPS issue #12: the masks the
paper's DeepLab trained on) as a mask source. No classifier, no rule of its own: its masks are
imported (wsss.stages.released_masks) and then go through the CRF, DeepLab and every table like
any method's, which checks the DeepLab stage apart from the classifier.
"""

from wsss.methods.registry import Method, register_method

RELEASED = register_method(Method("released", "released (authors')", None, released=True, grid=True))
