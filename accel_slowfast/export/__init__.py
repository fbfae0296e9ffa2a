"""Trained models handed to other tools: a Hub-ready folder with a model card, the transformers
classes, ONNX."""
