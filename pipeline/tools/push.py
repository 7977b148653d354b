"""``python -m pipeline.tools.push CHECKPOINT REPO``: push a train.py folder's adapters, recipe and card to the Hub.

CHECKPOINT is a ``checkpoint-<step>`` folder, ``best_reward/`` or ``final/`` of a run's output_dir. The
token comes from ``HF_TOKEN`` or ``hf auth login``.
"""

from __future__ import annotations

import argparse
import sys

from pipeline.training.hub import PushError, push_folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.tools.push", description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", help="folder written by train.py (checkpoint-N, best or final)")
    parser.add_argument("repo", help="Hub model repo id, e.g. user/duelcoder-qwen2.5-coder-1.5b")
    parser.add_argument("--private", action="store_true", help="create the repo as private")
    parser.add_argument("--commit-message", help="commit message (default: says which folder)")
    args = parser.parse_args(argv)
    try:
        commit = push_folder(args.checkpoint, args.repo, private=args.private, commit_message=args.commit_message)
    except PushError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"pushed {args.checkpoint} to {args.repo}: {getattr(commit, 'commit_url', commit)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
