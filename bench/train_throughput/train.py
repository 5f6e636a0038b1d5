"""The training benchmark's workload: DDP on synthetic data, the same script under plain torchrun and under
TrainTask. Rank 0 reports when the first step began (epoch seconds) and the throughput of the steps after the
warm-up, on stdout (a JSON line) and as the task's outputs when run by TrainTask."""

import argparse
import json
import os
import time

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel

parser = argparse.ArgumentParser()
parser.add_argument("--steps", type=int, default=300)
parser.add_argument("--warmup", type=int, default=20)
parser.add_argument("--batch-size", type=int, default=64)
args = parser.parse_args()

dist.init_process_group(os.environ.get("PREBUILT_DIST_BACKEND", "gloo"))
rank = dist.get_rank()
torch.manual_seed(rank)
features, labels = torch.randn(args.batch_size, 256), torch.randint(0, 10, (args.batch_size,))
model = DistributedDataParallel(nn.Sequential(nn.Linear(256, 512), nn.ReLU(), nn.Linear(512, 10)))
optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
first_step_at = time.time()
for step in range(args.steps):
    if step == args.warmup:
        dist.barrier()
        measured_from = time.perf_counter()
    optimizer.zero_grad()
    F.cross_entropy(model(features), labels).backward()
    optimizer.step()
dist.barrier()
seconds = time.perf_counter() - measured_from
if rank == 0:
    samples = (args.steps - args.warmup) * args.batch_size * dist.get_world_size()
    result = {"first_step_at": first_step_at, "samples_per_s": samples / seconds}
    print(json.dumps(result), flush=True)
    if os.environ.get("PREBUILT_OUTPUTS_FILE"):
        with open(os.environ["PREBUILT_OUTPUTS_FILE"], "w") as out:
            json.dump(result, out)
dist.destroy_process_group()
