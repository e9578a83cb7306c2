"""Training loops the tests run on the cluster (module-level so they pickle by value)."""

from __future__ import annotations

import time


def digits_torch(config):
    """An MLP on sklearn's digits, data-parallel: each rank trains on its shard."""
    import hashlib

    import numpy as np
    import torch
    from sklearn.datasets import load_digits

    import lepton_lab as ll

    ctx = ll.context()
    torch.manual_seed(0)
    torch.set_num_threads(1)
    x, y = load_digits(return_X_y=True)
    x = torch.tensor(x / 16.0, dtype=torch.float32)
    y = torch.tensor(y)
    x_train, y_train, x_val, y_val = x[:1500], y[:1500], x[1500:], y[1500:]
    x_train, y_train = x_train[ctx.rank :: ctx.world_size], y_train[ctx.rank :: ctx.world_size]
    net = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10))
    model = ctx.prepare(net)
    opt = torch.optim.Adam(model.parameters(), lr=config.get("lr", 0.01))
    start = 0
    resumed = ctx.checkpoint()
    if resumed is not None:
        net.load_state_dict(resumed["model"])
        opt.load_state_dict(resumed["optimizer"])
        start = resumed["epoch"] + 1
    batch = config.get("batch_size", 32)
    acc = 0.0
    for epoch in range(start, config["epochs"]):
        model.train()
        for i in range(0, len(x_train), batch):
            opt.zero_grad()
            with ctx.autocast():
                loss = torch.nn.functional.cross_entropy(
                    model(x_train[i : i + batch]), y_train[i : i + batch]
                )
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            acc = float((net(x_val).argmax(1) == y_val).float().mean())
        checkpoint = {"epoch": epoch, "model": net.state_dict(), "optimizer": opt.state_dict()}
        ctx.report(step=epoch, loss=float(loss), val_accuracy=acc, checkpoint=checkpoint)
        time.sleep(config.get("sleep", 0))
    weights = np.concatenate([p.detach().numpy().ravel() for p in net.parameters()])
    return {
        "rank": ctx.rank,
        "start_epoch": start,
        "val_accuracy": acc,
        "weights_sha": hashlib.sha256(weights.tobytes()).hexdigest(),
    }


def report_forever(config):
    import lepton_lab as ll

    ctx = ll.context()
    step = 0
    while True:
        step += 1
        ctx.report(step=step, value=float(step))
        time.sleep(0.01)


def fail_on_rank_one(config):
    import lepton_lab as ll

    ctx = ll.context()
    ctx.report(step=1, value=1.0)
    if ctx.rank == 1:
        raise ValueError("bad batch on purpose")
    return "ok"


def digits_model():
    """A compiled Keras MLP for the 8x8 digits (model_fn form of ll.fit)."""
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((64,)), keras.layers.Dense(64, activation="relu"), keras.layers.Dense(10)]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(0.01),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def uncompiled_model():
    import keras

    return keras.Sequential([keras.Input((64,)), keras.layers.Dense(10)])


def digits_arrays():
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    return (
        (x[:1500] / 16.0).astype("float32"),
        y[:1500],
        (x[1500:] / 16.0).astype("float32"),
        y[1500:],
    )


def epoch_marker_callback(folder, seconds=0.0):
    """A user's own Keras callback (it must keep working under ll.fit): leaves one file per
    epoch and rank, and can slow epochs down for fault tests."""
    import keras

    class MarkEpochs(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            import os

            rank = os.environ.get("LEPTON_TEST_RANK", "x")
            with open(f"{folder}/epoch-{epoch}-{os.getpid()}-{rank}", "w") as f:
                f.write(str(logs))
            time.sleep(seconds)

    return MarkEpochs()


def shard_sizes(config):
    """Reports the size of the shard ll.fit gave this rank."""
    import lepton_lab as ll

    ctx = ll.context()
    x, y = ctx.data
    return {
        "rank": ctx.rank,
        "n": len(x),
        "first_label": int(y[0]),
        "labels_match": len(x) == len(y),
    }


def digits_torch_dataset():
    import torch

    x, y, *_ = digits_arrays()
    return torch.utils.data.TensorDataset(torch.tensor(x), torch.tensor(y))


def digits_data_fn(ctx):
    """Shards itself by rank (the data_fn(ctx) form); ranks get different lengths on purpose."""
    x, y, *_ = digits_arrays()
    x, y = x[ctx.rank :: ctx.world_size], y[ctx.rank :: ctx.world_size]
    return (x, y) if ctx.rank == 0 else (x[:-7], y[:-7])


def shard_details(config):
    """Where this rank's shard came from, its rows, and whether it may change it in place."""
    import os

    import numpy as np

    import lepton_lab as ll

    ctx = ll.context()
    x, y = ctx.data
    mapped = isinstance(y, np.memmap)
    folder = os.path.dirname(y.filename) if mapped else None
    labels = y.tolist()
    inputs = {k: v.tolist() for k, v in x.items()} if isinstance(x, dict) else x.tolist()
    y += 1000  # the rank's own copy: the shared file must not change
    return {
        "rank": ctx.rank,
        "mapped": mapped,
        "folder": folder,
        "mode": (os.stat(y.filename).st_mode & 0o777) if mapped else None,
        "folder_mode": (os.stat(folder).st_mode & 0o777) if mapped else None,
        "labels": labels,
        "inputs": inputs,
        "reread": np.load(y.filename).tolist() if mapped else None,
    }


def rss_over_steps(config):
    """A DDP loop of ``config["steps"]`` small steps that reports every step; returns this
    rank's RSS after the warm-up and at the end, and the final weights' checksum."""
    import psutil
    import torch

    import lepton_lab as ll

    ctx = ll.context()
    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = ctx.prepare(torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.Linear(64, 4)))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    g = torch.Generator().manual_seed(ctx.rank)
    warm = None
    for step in range(config["steps"]):
        x, y = torch.randn(16, 32, generator=g), torch.randint(0, 4, (16,), generator=g)
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        ctx.report(step=step, loss=loss.item())
        if step == config["warmup"]:
            warm = psutil.Process().memory_info().rss
    end = psutil.Process().memory_info().rss
    checksum = float(sum(p.detach().double().sum() for p in model.parameters()))
    return {"warm": warm, "end": end, "checksum": checksum}
