#!/usr/bin/env python3
"""The GPUs that training can use on this machine: the recipes' default --ngpu and its check
(utils/recipe.sh's default_ngpu, steps/separation_recipe.sh's stage 3).

usage: utils/gpus.py count           the GPUs visible to jobs here: CUDA_VISIBLE_DEVICES when it is
                                     set, else the GPUs nvidia-smi -L lists (utils/run.py's rule)
       utils/gpus.py default-ngpu    run.sh's default --ngpu: 1 when a GPU is visible and the .venv's
                                     torch can use it, else 0 (the CPU)
       utils/gpus.py check N         exit 1, naming run.sh's --ngpu 0, unless N GPUs are visible
                                     and torch can use them

The default is one GPU, not every visible one: more GPUs train with DistributedDataParallel, whose
step takes batch_size utterances on each GPU, so the configs' batch (and their results) would
change with the machine; ask for them with --ngpu N. A GPU that torch cannot use (a CPU build of
torch, or a CUDA build the driver is too old for) gives 0, with a note on stderr, so that the
default run trains on the CPU instead of failing in stage 3.
"""

import os
import sys

import run  # utils/run.py: visible_gpus(), the rule the local job runner applies

CPU_HINT = "train on the CPU with --ngpu 0 (run.sh's option; its default on a machine without a usable GPU)"


def torch_gpus():
    """(GPUs torch sees, a description of the torch build) in this Python (the .venv's under path.sh)."""
    try:
        import torch
    except ImportError as err:
        return 0, f"no torch in {sys.executable} ({err}): run setup.sh and `. ./path.sh`"
    if not torch.cuda.is_available():
        build = "a CPU build" if torch.version.cuda is None else f"a CUDA {torch.version.cuda} build that finds no GPU"
        return 0, f"torch {torch.__version__} ({sys.executable}) is {build}"
    return torch.cuda.device_count(), f"torch {torch.__version__}"


def visibility():
    where = os.environ.get("CUDA_VISIBLE_DEVICES")
    return f"CUDA_VISIBLE_DEVICES={where!r}" if where is not None else "CUDA_VISIBLE_DEVICES unset, nvidia-smi -L"


def default_ngpu():
    if not run.visible_gpus():
        return 0
    usable, build = torch_gpus()
    if not usable:
        print(
            f"gpus.py: a GPU is visible ({visibility()}), but {build}: training on the CPU (--ngpu 0); "
            "for the GPU install a CUDA build of torch (README, GPUs)",
            file=sys.stderr,
        )
        return 0
    return 1


def check(ngpu):
    visible = run.visible_gpus()
    if len(visible) < ngpu:
        sys.exit(f"gpus.py: --ngpu {ngpu} but {len(visible)} GPU(s) visible here ({visibility()}): {CPU_HINT}")
    usable, build = torch_gpus()
    if usable < ngpu:
        sys.exit(f"gpus.py: --ngpu {ngpu} but {build}: install a CUDA build of torch (README, GPUs), or {CPU_HINT}")


def main():
    args = sys.argv[1:]
    if args in (["count"], ["default-ngpu"]):
        print(len(run.visible_gpus()) if args == ["count"] else default_ngpu())
    elif len(args) == 2 and args[0] == "check" and args[1].isdigit():
        check(int(args[1]))
    elif args in (["-h"], ["--help"]):
        print(__doc__)
    else:
        sys.exit(f"gpus.py: bad arguments {args}\n{__doc__}")


if __name__ == "__main__":
    main()
