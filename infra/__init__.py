"""Pulumi program of mlflow-multicloud: one stack per cloud, the same Kubernetes layer on each."""
