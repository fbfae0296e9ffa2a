"""Evaluation: the metrics of mmaction2 over per-video scores (``metrics.py``) and the hooks that
evaluate during training (``hooks.py``)."""
