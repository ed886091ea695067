"""One module per `rlsurrogate` command: argparse and printing only, then a call into the library.

Each module exposes `add_arguments(parser)` and `run(args) -> int`; `rlsurrogate.cli` imports a module only when
its command runs. Library modules hold no argparse.
"""
