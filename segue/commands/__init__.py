"""One module per ``segue`` sub-command; see ``segue.cli``."""
