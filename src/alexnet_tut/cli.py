"""The ``alexnet-tut`` command: data, training and benchmarks from a shell.

Each subcommand parses its arguments and calls one library function, so that
everything the command does can also be done from a notebook in one line.
The choices it offers come from the package's own tuples. Problems the user
can fix end as one line, ``error: ...``, and exit status 2 (as ``argparse``'s
usage errors do); a file the system refuses to read or write is one of them.
Anything else is a bug: its traceback, then one line asking for a report,
and exit status 1. Starting the command loads neither TensorFlow nor Keras;
``train`` loads them once its arguments, its run folder and the data folder's
place have been checked, so that those refusals come in about a second.
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from pathlib import Path

from alexnet_tut import __version__
from alexnet_tut.architectures import VARIANTS
from alexnet_tut.data.imagenette import IMAGENETTE_ARCHIVES, IMAGENETTE_SIZES
from alexnet_tut.data.pipeline import CACHE_CHOICES
from alexnet_tut.errors import BUG_REPORT, AlexnetTutError
from alexnet_tut.profiles import PROFILE_NAMES
from alexnet_tut.recipe import RECIPE_NAMES


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="alexnet-tut",
        description="AlexNet (Krizhevsky, Sutskever & Hinton, 2012) in Keras 3: "
        "data, training and benchmarks for the alexnet-tut book.",
    )
    parser.add_argument("--version", action="version", version=f"alexnet-tut {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    data = commands.add_parser("data", help="download, make or inspect a dataset")
    data_commands = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    imagenette = data_commands.add_parser(
        "imagenette", help="download, verify and extract Imagenette v2")
    default_size = "320px"
    imagenette.add_argument("--size", choices=IMAGENETTE_SIZES, default=default_size,
                            help=f"image size variant (default: {default_size}, "
                            f"{IMAGENETTE_ARCHIVES[default_size][3] / 1e6:.0f} MB)")
    imagenette.add_argument("--dir", type=Path, default=None,
                            help="where to keep it (default: ~/.keras/datasets)")
    imagenette.add_argument("--trust-new-checksum", action="store_true",
                            help="accept an archive whose checksum differs from the pinned one")
    standin = data_commands.add_parser(
        "standin", help="write the offline stand-in dataset (real photos, no download)")
    standin.add_argument("dir", type=Path, help="folder to write (created if missing)")
    standin.add_argument("--seed", type=int, default=0)
    scan = data_commands.add_parser(
        "scan", help="list what a training run would use from an ImageNet-layout folder")
    scan.add_argument("dir", type=Path, help="folder holding train/ and val/")
    scan.add_argument("--json", action="store_true", help="print one JSON object")

    train = commands.add_parser("train", help="train AlexNet with the paper's recipe")
    train.add_argument("--data", type=Path, required=True,
                       help="ImageNet-layout folder (train/<class>/, val/<class>/)")
    train.add_argument("--out", type=Path, required=True,
                       help="run folder: checkpoints, logs, report.json")
    train.add_argument("--variant", choices=VARIANTS, default=VARIANTS[0])
    train.add_argument("--recipe", choices=RECIPE_NAMES, default=RECIPE_NAMES[0],
                       help="paper: §5 as printed; modern: adds a warm-up and label smoothing")
    train.add_argument("--epochs", type=int, default=None, help="default: the profile's")
    train.add_argument("--batch-size", type=int, default=None, help="default: the profile's")
    train.add_argument("--profile", choices=PROFILE_NAMES, default=None,
                       help="default: $ALEXNET_TUT_PROFILE, else auto")
    train.add_argument("--resume", action="store_true",
                       help="continue the run in --out from its last checkpoint")
    train.add_argument("--cache", choices=CACHE_CHOICES, default="auto",
                       help="where decoded images are kept: auto (memory when they fit, else "
                       "--out/cache), memory, disk, none (decode every epoch)")

    bench = commands.add_parser(
        "bench", help="training images per second of the book's models on this machine")
    bench.add_argument("--batch-size", type=int, default=None)
    bench.add_argument("--steps", type=int, default=None)
    bench.add_argument("--json", type=Path, default=None, help="also write the record here")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _dispatch(args)
    except AlexnetTutError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"error: {_os_error(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception:  # a bug: say so, with everything a report needs
        traceback.print_exc()
        print(BUG_REPORT, file=sys.stderr)
        return 1


def _os_error(error: OSError) -> str:
    """A refused read or write (permissions, a read-only or full disk) as one line that says what to do."""
    where = error.filename if error.filename is not None else "a file"
    what = error.strerror or str(error).splitlines()[0]
    return (f"{what}: {where} (check that the folder exists and can be written, that the disk "
            "has room, or choose another folder)")


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "data":
        return _data(args)
    if args.command == "train":
        from alexnet_tut import train

        train.run(args.data, args.out, variant=args.variant, recipe=args.recipe,
                  epochs=args.epochs, batch_size=args.batch_size, profile=args.profile,
                  resume=args.resume, cache=args.cache, verbose=1)
        return 0
    if args.command == "bench":
        from alexnet_tut import bench

        bench.run(args.batch_size, args.steps, args.json)
        return 0
    raise AssertionError(args.command)


def _data(args: argparse.Namespace) -> int:
    from alexnet_tut import data

    if args.data_command == "imagenette":
        root = data.download_imagenette(
            args.size, args.dir, trust_new_checksum=args.trust_new_checksum)
        print(root)
    elif args.data_command == "standin":
        print(data.write_standin(args.dir, seed=args.seed))
    elif args.data_command == "scan":
        report = data.scan(args.dir)
        print(json.dumps(report, indent=2) if args.json else data.format_scan(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
