"""One training run under torchrun, for the sharding tests:

    torchrun --nproc_per_node 2 tests/train/sharded_worker.py CONFIG_JSON OUT [OPTIONS_JSON]

OPTIONS: {"resume": true} continues the run in OUT (a config with max_steps pauses it).
"""

import json
import sys

from citi.train.config import TrainConfig
from citi.train.loop import Trainer


def main() -> None:
    config = TrainConfig(**json.loads(sys.argv[1]))
    options = json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}
    Trainer(config, sys.argv[2]).run(resume=options.get("resume", False))


if __name__ == "__main__":
    main()
