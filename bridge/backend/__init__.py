"""Backends the engine can run: ``models.ModelBackend`` adapts jobs to the model tasks of ``model.tasks``."""
