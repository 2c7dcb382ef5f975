"""Training and fine-tuning on a user's own audio."""
