"""What the daemon keeps on disk: the job journal, the render store, crash recovery and the state-dir lock."""
