"""Train SlowFast from a recipe.

    accelerate launch train.py                                   # the synthetic default
    accelerate launch train.py recipes/ucf101/slowfast_r50_4x16x1_256e.yaml --batch_size=4
    python train.py --help                                       # every recipe key
"""

from accel_slowfast.training import main

if __name__ == "__main__":
    main()
