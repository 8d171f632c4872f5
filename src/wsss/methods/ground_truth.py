"""`gt`: DeepLab trained on the ground-truth masks, the upper bound beside the pseudo-mask sources."""

from wsss.methods.registry import Method, register_method

GROUND_TRUTH = register_method(Method("gt", "ground truth", None, grid=False))
