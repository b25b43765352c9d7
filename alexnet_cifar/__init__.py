"""The model contract shared by the trainer and the inference service.

This package is deliberately tiny and depends only on numpy, Pillow and torch,
so that the serving image can install it without the trainer.
"""
