"""Training and running models: the one training loop, inference and checkpoints, several
processes under torchrun, and MLflow tracking."""
