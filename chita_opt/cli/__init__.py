"""The ``chita-opt`` command.

    chita-opt demo [--sparsities 0.5,0.9,0.98] [--plot demo.png]
    chita-opt prune MODEL DATA --sparsity 0.9 [--state-dict SD.pt] [--out pruned.pt]
    chita-opt compare --family toeplitz --p 1000 --methods chita,cd,iht,magnitude
    chita-opt make-problem OUT.npz --n 500 --p 5000 --k 50 [--family toeplitz|pruning]
    chita-opt solve PROBLEM.npz [--k K] [--method chita] [--certify] [--out W.npy]

``demo`` and ``prune`` need torch (the ``torch`` extra); it is imported only for them.

Any error in the user's input (a missing or unreadable file, a missing array, a wrong
shape, a bad option) prints one line to stderr and exits with status 2. Any other
exception is a bug: its traceback is printed with a request to report it, exit status 1.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Sequence

from chita_opt.cli.commands import compare, make_problem, solve_command
from chita_opt.cli.files import write_atomically
from chita_opt.cli.parser import UsageError, build_parser
from chita_opt.cli.pruning import demo, prune_command

EXIT_INTERNAL = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

__all__ = ["main", "write_atomically"]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``chita-opt`` console script; returns the exit status."""
    parser = build_parser()
    try:
        try:
            args = parser.parse_args(argv)
        except SystemExit as done:  # --help and --version print and stop: not an error
            return int(done.code or 0)
        commands = {
            "make-problem": make_problem,
            "solve": solve_command,
            "demo": demo,
            "prune": prune_command,
            "compare": compare,
        }
        commands[args.command](args)
    except (UsageError, ValueError, TypeError, FileNotFoundError, IsADirectoryError) as err:
        message = str(err).splitlines()[0] if str(err) else type(err).__name__
        print(f"chita-opt: error: {message}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        # Ctrl-C: one line and the shell's convention (128 + SIGINT), no traceback
        print("chita-opt: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception:
        # not the user's input: a bug, whose traceback the report needs
        traceback.print_exc()
        print(
            "chita-opt: internal error (a bug, not your input): please report it to the "
            "chita_opt developers with the command line, the traceback above and the "
            "output of 'chita-opt --version'",
            file=sys.stderr,
        )
        return EXIT_INTERNAL
    return 0


if __name__ == "__main__":
    sys.exit(main())
