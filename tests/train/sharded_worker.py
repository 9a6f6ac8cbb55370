"""One training run under torchrun, for the sharding tests:

    torchrun --nproc_per_node 2 tests/train/sharded_worker.py CONFIG_JSON OUT [OPTIONS_JSON]

OPTIONS: {"stop_after": N} interrupts after N optimizer steps (a checkpoint is written first),
{"resume": true} continues the run in OUT.
"""

import json
import sys

from citi.train.config import TrainConfig
from citi.train.loop import Interrupted, Trainer


def main() -> None:
    config = TrainConfig(**json.loads(sys.argv[1]))
    options = json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}
    trainer = Trainer(config, sys.argv[2])
    trainer.stop_after_steps = options.get("stop_after")
    try:
        trainer.run(resume=options.get("resume", False))
    except Interrupted:
        pass


if __name__ == "__main__":
    main()
