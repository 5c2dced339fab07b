"""Train the shipped PFN ``probkit.pfn.pretrained("gp-rbf-1d")``.

The exact commands that produced ``probkit/pfn/weights/gp-rbf-1d.eqx``, in three stages::

    export XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
    # stage 1 (2026-11-23): 3500 steps x 32 datasets from a fresh initialisation
    python scripts/train_pretrained_pfn.py --steps 3500 --batch-size 32 --seq-len 60 \\
        --checkpoint /tmp/pfn_gp_rbf_1d.ckpt --out stage1.eqx
    # stage 2 (2026-11-24): 22000 steps x 64 datasets from stage 1, new data seed, lr 5e-4
    python scripts/train_pretrained_pfn.py --steps 22000 --batch-size 64 --seq-len 60 --lr 5e-4 \\
        --seed 1 --init stage1.eqx --checkpoint /tmp/pfn_stage2.ckpt --out stage2.eqx
    # stage 3 (2026-11-24): the head refined from 100 to 428 buckets (probkit.pfn.rebucket: each
    # bucket split in 4, tail buckets of 5e-4 prior mass; the predictive unchanged at the start),
    # then 30000 steps x 64 datasets, new data seed, lr 3e-4
    python scripts/train_pretrained_pfn.py --steps 30000 --batch-size 64 --seq-len 60 --lr 3e-4 \\
        --seed 2 --init stage2.eqx --rebucket 4 --tail-mass 5e-4 --checkpoint /tmp/pfn_stage3.ckpt \\
        --out probkit/pfn/weights/gp-rbf-1d.eqx

(on a 2-core CPU VM). Each stage's settings and loss curve are in the file's header
(``probkit.pfn.io.read_header(path)["metadata"]``, earlier stages under ``"previous"``).
The prior is ``probkit.pfn.pretrained.gp_rbf_1d_prior()`` (documented in
``probkit/pfn/pretrained.py``). Interrupted runs resume from ``--checkpoint``.
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np

from probkit.pfn import PFN, FullSupportBarDistribution, load, rebucket, refine_borders, save, train_pfn
from probkit.pfn.io import read_header
from probkit.pfn.pretrained import GP_RBF_1D_ARCH, gp_rbf_1d_prior


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=3500)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--seq-len", type=int, default=60)
    ap.add_argument("--max-train", type=int, default=50)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--checkpoint", default=None)
    ap.add_argument("--out", default="probkit/pfn/weights/gp-rbf-1d.eqx")
    ap.add_argument("--init", default=None, help="continue from a saved PFN (second stage)")
    ap.add_argument(
        "--rebucket", type=int, default=1, help="split each bucket of the --init model into this many"
    )
    ap.add_argument("--tail-mass", type=float, default=5e-4, help="prior mass per new tail bucket")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)

    prior = gp_rbf_1d_prior()
    k_borders, k_init, k_train = jax.random.split(jax.random.PRNGKey(args.seed), 3)
    if args.init is None:
        if args.rebucket > 1:
            ap.error("--rebucket refines the buckets of an --init model")
        borders = FullSupportBarDistribution.from_prior(
            k_borders, prior, GP_RBF_1D_ARCH["n_buckets"], n_datasets=2000, n_points=50
        ).borders
        pfn = PFN(k_init, **GP_RBF_1D_ARCH, borders=borders)
    else:
        pfn = load(args.init)
    if args.rebucket > 1:
        tail_y = prior.sample(k_borders, 20000, 50)[1]
        pfn = rebucket(pfn, refine_borders(pfn.borders, args.rebucket, tail_samples=tail_y, tail_mass=args.tail_mass))
    t0 = time.time()
    pfn, losses = train_pfn(
        k_train,
        pfn,
        prior,
        steps=args.steps,
        batch_size=args.batch_size,
        seq_len=args.seq_len,
        max_train=args.max_train,
        learning_rate=args.lr,
        checkpoint_path=args.checkpoint,
        checkpoint_every=100,
        progress_bar=not args.no_progress,
    )
    wall = time.time() - t0
    w = max(1, args.steps // 20)
    curve = [float(np.mean(losses[i : i + w])) for i in range(0, args.steps, w)]
    meta = dict(
        steps=args.steps,
        batch_size=args.batch_size,
        seq_len=args.seq_len,
        max_train=args.max_train,
        lr=args.lr,
        seed=args.seed,
        init=args.init,
        rebucket=args.rebucket,
        tail_mass=args.tail_mass if args.rebucket > 1 else None,
        n_buckets=pfn.n_buckets,
        wall_s_this_call=round(wall, 1),
        loss_curve=[round(c, 4) for c in curve],
    )
    if args.init is not None:
        meta["previous"] = read_header(args.init).get("metadata", {})
    save(args.out, pfn, metadata=meta)
    print("saved", args.out, meta)


if __name__ == "__main__":
    main()
