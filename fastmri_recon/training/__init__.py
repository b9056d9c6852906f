"""Training: optimizers (RAdam), losses, strategies and the training loop."""
