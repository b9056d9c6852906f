"""Classical reconstruction baselines, with the same interface as the learned models."""
