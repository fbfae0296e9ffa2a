"""Checkpoints: the work_dir's layout and manifest, the writer and its hooks, resume planning,
weights loading (``load_from``) and the work_dir lock."""
