"""AlexNet on CIFAR-10, tracked by MLflow: ``python -m trainer --help``."""
