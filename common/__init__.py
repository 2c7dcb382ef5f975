"""The leaf every package imports: user-facing error types, progress / cancellation and the rule on control
characters in user text. Imports nothing of ours."""
