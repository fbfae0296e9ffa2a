"""Multi-view test of a checkpoint (10 clips x 3 crops by default), as mmaction2's tools/test.py
(``accel-slowfast test`` once installed).

    accelerate launch test.py RECIPE.yaml --checkpoint=work_dirs/x/checkpoints/best_top1_acc_epoch_10.pth
    accelerate launch test.py --checkpoint=work_dirs/synthetic_slowfast_tiny/checkpoints/epoch_10
"""

import sys

from accel_slowfast.commands.test import main

if __name__ == "__main__":
    main(sys.argv[1:], prog="test.py")
