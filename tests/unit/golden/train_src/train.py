import json
import os

import torch.distributed as dist

dist.init_process_group(os.environ["PREBUILT_DIST_BACKEND"])
if dist.get_rank() == 0:
    with open(os.environ["PREBUILT_OUTPUTS_FILE"], "w") as f:
        json.dump({"accuracy": 1.0}, f)
dist.destroy_process_group()
