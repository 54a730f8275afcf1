"""Inspecting a run, below the GUI (no Qt): a run's predictions of a split held in memory
(`session` for semantic segmentation and classification, opened image by image by
`opening`; `detections` for detection and instance runs), the overlay pictures drawn
from them (`overlays`), and the plans of store edits that accept a model's output into
the labels (`accept`). The GUI's Inspect workspace shows them; the command line may use
them the same way."""
