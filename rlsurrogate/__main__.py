from rlsurrogate.cli import run

run()
