"""The job engine: one worker thread, a fair queue, the event hub, and the ``Backend`` seam it calls."""
