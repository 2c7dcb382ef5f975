"""The wire protocol, a leaf that the daemon and every client import: ``schema`` (messages, limits,
error codes), ``osc_wire`` and ``zmq_wire`` (the two encodings). Nothing here imports torch or the model."""
