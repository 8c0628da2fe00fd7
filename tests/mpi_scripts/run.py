"""``mpirun -n N python run.py NAME [ARGS...] [-- NAME [ARGS...]]...``: run several
checks in one MPI job (start-up costs about a second per job), one after the other.

Each NAME is a module of this folder; its ``main(*ARGS)`` runs on every rank and
prints ``OK NAME rank R`` when its checks pass. An exception on any rank aborts
the whole job (``distributed.init`` installs that excepthook)."""
import importlib
import itertools
import sys


def checks(argv):
    for is_sep, group in itertools.groupby(argv, lambda a: a == "--"):
        if not is_sep:
            name, *args = group
            yield name, args


if __name__ == "__main__":
    for name, args in checks(sys.argv[1:]):
        importlib.import_module(name).main(*args)
