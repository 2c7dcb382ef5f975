"""The sampling engine: windowed autoregressive sampling of every level, in every Jukebox mode."""
