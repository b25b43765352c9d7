"""The cloud-agnostic Kubernetes layer: MLflow, the training Job and model serving."""
