"""The ``segue`` command line and the daemon's composition root: the top of the dependency graph."""
