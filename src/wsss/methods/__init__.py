"""Methods: the registry (wsss.methods.registry) and the built-in units that register into it.

- wsss.methods.cam: the CAM baseline classifier (L_cls) and its pseudo-mask rules, cam and
  cam_sal (CAM × saliency);
- wsss.methods.eps: the EPS classifier (L_cls + L_sal, wsss.methods.eps_loss), its pseudo-mask
  rules and the official inference protocol (wsss.methods.eps_official);
- wsss.methods.ground_truth: `gt`, DeepLab trained on the ground truth (the upper bound).
A new method is one module like these and its config defaults (docs/architecture.md, "Add a
method"). Out of tree, every module named in WSSS_PLUGINS (comma-separated) is imported after the
built-ins and may call the same `register_*` functions (tests/plugins/toy_method.py).
"""

from wsss.core.plugins import load_plugins
from wsss.methods import cam, eps, ground_truth, released  # the built-in units register on import
from wsss.methods.registry import (
    CLASSIFIERS,
    METHODS,
    Classifier,
    Method,
    classifier,
    maps_have_probs,
    method,
    pseudo_mask_methods,
    register_classifier,
    register_method,
    resolve,
    table_order,
)

__all__ = ["cam", "eps", "ground_truth", "released", "CLASSIFIERS", "METHODS", "Classifier", "Method", "classifier",
           "maps_have_probs", "method", "pseudo_mask_methods", "table_order", "register_classifier",
           "register_method", "resolve"]

load_plugins()
