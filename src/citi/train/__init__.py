"""Training: methods as stage lists, the config, data, the loop and checkpoints."""
