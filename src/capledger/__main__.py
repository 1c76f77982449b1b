"""``python -m capledger``: the command line."""

from capledger.cli import main

main(prog_name="capledger")
