"""The leaf every package imports: user-facing error types and progress / cancellation. Imports nothing of ours."""
