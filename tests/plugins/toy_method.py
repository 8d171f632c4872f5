"""A toy pseudo-mask method registered from outside the package (tests/test_methods.py):
the CAM mask with the lower half of every image set to background."""

from wsss import methods


def lower_half_background(data, saliency, params):
    from wsss.methods.cam import cam_mask

    mask = cam_mask(data, saliency, params)
    mask[mask.shape[0] // 2:] = 0
    return mask


methods.register_method(methods.Method("toy", "toy", "cam", pseudo_mask="toy_method:lower_half_background",
                                       mask_keys=("threshold",)))
