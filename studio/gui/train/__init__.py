"""The Train workspace: set up a run, train it off the GUI thread, look at the results."""
