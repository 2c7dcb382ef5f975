"""The daemon: protocol, ZeroMQ and OSC front ends, job engine, journal, render store, and the CLI."""
