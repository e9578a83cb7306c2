"""TensorFlow loops the tests run in the ranks' TensorFlow processes (module-level, so they
pickle by reference; `keras` inside them is tf.keras there)."""

from __future__ import annotations

import time


def digits_tf_loop(config):
    """A custom tf.function loop under ctx.strategy (MWMS): digits, each rank its shard."""
    import hashlib

    import numpy as np
    import tensorflow as tf

    import lepton_lab as ll
    from tests.training.loops import digits_arrays

    ctx = ll.context()
    x, y, xv, yv = digits_arrays()
    tf.keras.utils.set_random_seed(0)
    batch = 32
    with ctx.strategy.scope():
        model = tf.keras.Sequential(
            [
                tf.keras.Input((64,)),
                tf.keras.layers.Dense(64, activation="relu"),
                tf.keras.layers.Dense(10),
            ]
        )
        optimizer = tf.keras.optimizers.Adam(0.01)
    per_example = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="none")
    shard = (x[ctx.rank :: ctx.world_size], y[ctx.rank :: ctx.world_size])
    steps = len(shard[1]) // batch  # equal on both ranks: 750 samples each

    def per_worker(input_context):
        return (
            tf.data.Dataset.from_tensor_slices(shard)
            .shuffle(1000, seed=ctx.rank)
            .batch(batch, drop_remainder=True)
            .repeat()
        )

    iterator = iter(ctx.strategy.distribute_datasets_from_function(per_worker))

    @tf.function
    def train_step(iterator):
        def step(xb, yb):
            with tf.GradientTape() as tape:
                loss = tf.nn.compute_average_loss(
                    per_example(yb, model(xb, training=True)),
                    global_batch_size=batch * ctx.world_size,
                )
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
            return loss

        xb, yb = next(iterator)
        return ctx.strategy.reduce("SUM", ctx.strategy.run(step, args=(xb, yb)), axis=None)

    start = 0
    state = ctx.checkpoint()
    if state is not None:
        model.set_weights(state["weights"])
        start = state["epoch"] + 1
    for epoch in range(start, config["epochs"]):
        total = 0.0
        for i in range(steps):
            total += float(train_step(iterator))
            ctx.progress(i + 1, steps, epoch, config["epochs"])
        time.sleep(config.get("pause", 0.0))
        ctx.report(
            step=epoch,
            loss=total / steps,
            checkpoint={"epoch": epoch, "weights": model.get_weights()},
        )
    predictions = np.argmax(model.predict(xv, verbose=0), axis=1)
    weights = model.get_weights()
    return {
        "start_epoch": start,
        "holdout_accuracy": float((predictions == yv).mean()),
        "weights_sha": hashlib.sha256(b"".join(w.tobytes() for w in weights)).hexdigest(),
        "pid": __import__("os").getpid(),
    }


def collective_forever(config):
    """All-reduces and reports until stopped: a rank that stops first leaves its peer
    waiting in a collective (what a real stop has to get out of)."""
    import tensorflow as tf

    import lepton_lab as ll

    ctx = ll.context()
    strategy = ctx.strategy

    @tf.function
    def together():
        return strategy.reduce("SUM", strategy.run(lambda: tf.constant(1.0)), axis=None)

    step = 0
    while True:
        step += 1
        together()
        ctx.report(step=step, value=float(step))
        time.sleep(0.02)


def meet_and_return(config):
    """The smallest TF run: rendezvous (done before the loop), one report, the rank."""
    import os

    import lepton_lab as ll

    ctx = ll.context()
    ctx.report(step=1, world=float(ctx.strategy.num_replicas_in_sync))
    return {"rank": ctx.rank, "pid": os.getpid(), "tf_config": os.environ.get("TF_CONFIG")}


def write_digit_files(folder, files=4):
    """Digits as .npz files: a dataset of files for ctx.shard_files over an fsspec URL."""
    import numpy as np

    from tests.training.loops import digits_arrays

    x, y, *_ = digits_arrays()
    for i, (xs, ys) in enumerate(
        zip(np.array_split(x, files), np.array_split(y, files), strict=True)
    ):
        np.savez(f"{folder}/digits-{i}.npz", x=xs, y=ys)


def file_data_fn(url):
    """A data_fn over npz files at an fsspec URL: each rank reads its own files."""

    def data_fn(ctx):
        import fsspec
        import numpy as np
        import tensorflow as tf

        files = ctx.shard_files(url)

        def samples():
            for name in files:
                with fsspec.open(name, "rb") as f:
                    arrays = np.load(f)
                    yield from zip(arrays["x"], arrays["y"], strict=True)

        dataset = tf.data.Dataset.from_generator(
            samples,
            output_signature=(
                tf.TensorSpec((64,), tf.float32),
                tf.TensorSpec((), tf.int64),
            ),
        ).batch(32)
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
        return dataset.with_options(options)

    return data_fn


def global_dataset_fn(ctx):
    """The TensorFlow user's way: one dataset, the global batch, TF shards it (DATA)."""
    import tensorflow as tf

    from tests.training.loops import digits_arrays

    x, y, *_ = digits_arrays()
    return tf.data.Dataset.from_tensor_slices((x, y)).shuffle(1500, seed=0).batch(64)
