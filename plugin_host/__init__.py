"""The DAW side: client library, host integrations, a headless host."""
