"""One module per ``segue`` sub-command; see ``bridge.cli``."""
