"""The Inspect workspace: a run's predictions over a split, overlays, post-processing
sliders with metric readouts that follow them, accept into labels, pre-labelling and
review queues. Heavy work (prediction, recipes, readouts) runs in a WorkerPool; the data
it works on lives in :class:`studio.gui.inspect.model.InspectSession`."""
