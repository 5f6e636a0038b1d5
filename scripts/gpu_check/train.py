"""The CUDA image's GPU check, as a training task's command: one rank per GPU, NCCL, a few training steps.

Checks what a CPU machine cannot: torch sees the GPU, an NCCL all-reduce gives the right sum, and a small network
trains on the GPU (its loss falls). Rank 0 writes the results as the task's outputs.
"""

import json
import os

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel

assert torch.cuda.is_available(), "torch sees no GPU in this container"
local_rank = int(os.environ["LOCAL_RANK"])
torch.cuda.set_device(local_rank)
dist.init_process_group(os.environ["PREBUILT_DIST_BACKEND"])  # nccl: the task requests GPUs
rank, world = dist.get_rank(), dist.get_world_size()

total = torch.tensor([float(rank + 1)], device="cuda")
dist.all_reduce(total)  # 1 + 2 + ... + world
assert total.item() == world * (world + 1) / 2, f"NCCL all-reduce gave {total.item()}"

torch.manual_seed(0)
features = torch.randn(4096, 32, device="cuda")
labels = (features[:, 0] > 0).long()
model = DistributedDataParallel(nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 2)).cuda(), [local_rank])
optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
losses = []
for _ in range(50):
    optimizer.zero_grad()
    loss = F.cross_entropy(model(features), labels)
    loss.backward()
    optimizer.step()
    losses.append(loss.item())
if rank == 0:
    result = {"device": torch.cuda.get_device_name(), "all_reduce": total.item(), "loss_drop": losses[0] - losses[-1]}
    print(json.dumps(result), flush=True)
    with open(os.environ["PREBUILT_OUTPUTS_FILE"], "w") as out:
        json.dump(result, out)
dist.destroy_process_group()
