"""The Flask inference service for the registered AlexNet/CIFAR-10 model (see serving.app)."""
