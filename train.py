"""Train SlowFast from a recipe (``accel-slowfast train`` once installed).

    accelerate launch train.py                                   # the synthetic default
    accelerate launch train.py recipes/ucf101/slowfast_r50_4x16x1_256e.yaml --batch_size=4
    python train.py --help                                       # every recipe key, by group
"""

import sys

from accel_slowfast.commands.train import main

if __name__ == "__main__":
    main(sys.argv[1:], prog="train.py")
