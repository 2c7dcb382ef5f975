"""segue's model stack: VQ-VAE, transformer priors, sampling, checkpoints and training."""
