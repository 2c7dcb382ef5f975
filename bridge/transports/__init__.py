"""The daemon's front ends: ``zmq`` (ZeroMQ ROUTER/PUB, CURVE) and ``osc`` (UDP), both over one ``Dispatcher``."""
