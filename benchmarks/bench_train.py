"""Training images/s of the book's AlexNets next to a plain PyTorch AlexNet (see alexnet_tut.bench).

    python benchmarks/bench_train.py [--batch-size B] [--steps 3] [--rounds 2] [--json PATH]
    KERAS_BACKEND=jax python benchmarks/bench_train.py     # no TensorFlow needed

Writes a JSON record (default: benchmarks/results/bench_train-<keras backend>.json).
The batch defaults to the `auto` profile's (32 on a CPU, 128 on a GPU); on a GPU use
more steps: --steps 20 --rounds 3.
"""

import argparse
from pathlib import Path

from alexnet_tut import bench  # first: the package chooses TensorFlow's CPU kernels before TensorFlow starts

import keras  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=bench.DEFAULT_ROUNDS)
    parser.add_argument("--precision", action="append", default=None,
                        help="a Keras dtype policy; repeat for several (default: per hardware)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    json_path = args.json or (Path(__file__).parent / "results"
                              / f"bench_train-{keras.backend.backend()}.json")
    bench.run(args.batch_size, args.steps, json_path, rounds=args.rounds,
              precisions=args.precision)
    print(f"record: {json_path}")


if __name__ == "__main__":
    main()
