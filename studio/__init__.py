"""Vision Studio: label images, train models by clicking, inspect and clean segmentations."""

import os

# OpenCV reads its decode limit once, at import: set it before anything imports cv2, so that
# images up to the project's pixel budget (studio.core.images.PIXEL_BUDGET) decode.
os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(40_000 * 40_000))

__version__ = "0.1.0"
