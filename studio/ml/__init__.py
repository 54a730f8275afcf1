"""Learning: models, transfer learning, losses, metrics, augmentation, training, prediction.

Uses torch, torchvision, OpenCV and NumPy; never imports Qt. Submodules are imported on
demand (``from studio.ml.models import build_model``) so that importing this package
stays cheap.
"""
