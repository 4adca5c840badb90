"""What a drawn image must look like: shared by the visualizer, inferencer
and image-demo tests (tests/apis put this folder on sys.path)."""
import cv2
import numpy as np

CLASSES = ('rectangle', 'ellipse', 'triangle')  # the toy dataset's
PALETTE = [(220, 20, 60), (0, 130, 200), (60, 180, 75)]
ALPHA = 0.5  # PartialDetLocalVisualizer's default seg_alpha


def expected(image_rgb, class_index):
    """What a pixel of class ``class_index`` looks like once drawn."""
    return (1 - ALPHA) * image_rgb.astype(float) + \
        ALPHA * np.array(PALETTE[class_index], float)


def assert_drawn(drawn_rgb, image_rgb, label_map, tol, min_fraction,
                 erode=0, ignore=None):
    """Pixels of label k + 1 carry palette[k], background and 255 are left
    as they are. Text labels and boxes cover part of each region and JPEG
    blurs their borders (``erode`` px are left out; ``ignore``: a boolean map
    of other pixels to leave out), so: at least ``min_fraction`` of a class's
    pixels (and 80 % of the others) match within ``tol``, and more than
    twice as many match palette[k] as any other colour."""
    kernel = np.ones((2 * erode + 1, 2 * erode + 1), np.uint8)
    for label in np.unique(label_map):
        where = cv2.erode((label_map == label).astype(np.uint8),
                          kernel).astype(bool)
        if ignore is not None:
            where &= ~ignore
        if not where.any():
            continue
        got, image = drawn_rgb[where].astype(float), image_rgb[where]
        wants = [image.astype(float)] + [expected(image, k)
                                         for k in range(len(PALETTE))]
        match = [(np.abs(got - want).max(axis=1) <= tol).mean()
                 for want in wants]  # untouched, palette[0], palette[1], ...
        right = 0 if label in (0, 255) else int(label)
        others = max(m for i, m in enumerate(match) if i != right)
        assert match[right] >= (0.8 if right == 0 else min_fraction), \
            (int(label), match)
        assert match[right] > 2 * others, (int(label), match)
