"""Networks: backbones, classifier heads (CAM / EPS), PFAN, DeepLab."""
