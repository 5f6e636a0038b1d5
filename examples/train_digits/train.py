"""Train a small network on scikit-learn's bundled digits with DistributedDataParallel: plain PyTorch.

torchrun starts this script once per process and sets RANK, LOCAL_RANK and WORLD_SIZE; the executor adds
$PREBUILT_DIST_BACKEND (gloo on CPUs, nccl on GPUs), a checkpoint folder that survives retries, a metrics file
drawn in the task's Deck, and $PREBUILT_OUTPUTS_FILE for the typed outputs. Nothing here is Flyte code:
`torchrun --nproc-per-node 2 train.py` runs it too.
"""

import argparse
import json
import os
import signal
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=8)
parser.add_argument("--lr", type=float, default=0.1)
parser.add_argument("--batch-size", type=int, default=16, help="per process")
parser.add_argument("--seed", type=int, default=0)
parser.add_argument(
    "--lose-a-process-after-epoch",
    type=int,
    default=-1,
    help="on the first attempt, kill the last rank after this epoch (to watch a retry resume from the checkpoint)",
)
args = parser.parse_args()

dist.init_process_group(backend=os.environ.get("PREBUILT_DIST_BACKEND", "gloo"))
rank, world = dist.get_rank(), dist.get_world_size()
torch.manual_seed(args.seed)

# Rank 0 reads the data and sends it to the others (one scikit-learn import instead of one per process).
data = [None, None]
if rank == 0:
    from sklearn.datasets import load_digits  # bundled with scikit-learn: no download

    features, labels = load_digits(return_X_y=True)
    data = [torch.tensor(features / 16.0, dtype=torch.float32), torch.tensor(labels)]
dist.broadcast_object_list(data, src=0)
features, labels = data
order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(args.seed))
test, train = order[: len(order) // 4], order[len(order) // 4 :]  # a quarter held out
train_set = TensorDataset(features[train], labels[train])
x_test, y_test = features[test], labels[test]
sampler = DistributedSampler(train_set, num_replicas=world, rank=rank, shuffle=True, seed=args.seed)
loader = DataLoader(train_set, batch_size=args.batch_size, sampler=sampler)

model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)

# Resume: the executor restores the folder from the previous attempt's checkpoint before this starts.
checkpoint = Path(os.environ.get("PREBUILT_CHECKPOINT_DIR", "checkpoints")) / "last.pt"
first_epoch, train_loss = 0, float("nan")
if checkpoint.exists():
    state = torch.load(checkpoint)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    first_epoch, train_loss = state["epoch"] + 1, state["loss"]
    print(f"rank {rank}: resuming after epoch {state['epoch']}", flush=True)
ddp = DistributedDataParallel(model)


def test_accuracy() -> float:
    with torch.no_grad():
        return (model(x_test).argmax(dim=1) == y_test).float().mean().item()


metrics_file = os.environ.get("PREBUILT_METRICS_FILE", "metrics.jsonl")
for epoch in range(first_epoch, args.epochs):
    sampler.set_epoch(epoch)  # the same shuffle in a resumed run as in an uninterrupted one
    ddp.train()
    total = torch.zeros(2)
    for batch, target in loader:
        optimizer.zero_grad()
        loss = F.cross_entropy(ddp(batch), target)
        loss.backward()
        optimizer.step()
        total += torch.tensor([loss.item() * len(target), len(target)])
    dist.all_reduce(total)
    train_loss, accuracy = (total[0] / total[1]).item(), test_accuracy()
    if rank == 0:
        print(f"epoch {epoch}: loss {train_loss:.4f} test accuracy {accuracy:.4f}", flush=True)
        with open(metrics_file, "a") as out:
            out.write(json.dumps({"epoch": epoch, "loss": train_loss, "accuracy": accuracy}) + "\n")
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
        partial = checkpoint.with_suffix(".partial")  # written whole, then renamed: never half a checkpoint
        torch.save(
            {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch, "loss": train_loss},
            partial,
        )
        partial.replace(checkpoint)
    dist.barrier()
    first_attempt = os.environ.get("FLYTE_ATTEMPT_NUMBER", "0") == "0"
    if epoch == args.lose_a_process_after_epoch and first_attempt and rank == world - 1:
        os.kill(os.getpid(), signal.SIGKILL)  # as the kernel's OOM killer would

if rank == 0:
    torch.save(model.state_dict(), "model.pt")
    with open(os.environ.get("PREBUILT_OUTPUTS_FILE", "outputs.json"), "w") as out:
        json.dump({"accuracy": test_accuracy(), "final_loss": train_loss, "epochs": args.epochs}, out)
dist.destroy_process_group()
