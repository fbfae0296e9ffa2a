"""Checkpoints: the work_dir's file names, the checkpoint manifest, the one writer and its hooks,
resume planning, weights loading (``load_from``), the work_dir lock and write failures."""
