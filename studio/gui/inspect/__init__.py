"""The Inspect workspace's widgets: a run's predictions over a split, overlays,
post-processing sliders with metric readouts that follow them, accept into labels,
pre-labelling and review queues. Heavy work (prediction, recipes, readouts) runs in a
WorkerPool; the data it works on lives below the GUI, in :mod:`studio.ml.inspect`."""
