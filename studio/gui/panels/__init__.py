"""Dock panels. Each panel binds to a LabelDocument (or the project) via `set_document`
and holds only a view of the store; import the panel modules directly."""
