"""The models: presets (``presets.py``), the SlowFast and X3D classifiers, their builders, and
mmaction2's checkpoint key mapping."""
