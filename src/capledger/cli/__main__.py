"""``python -m capledger.cli``: the same as the ``capledger`` command."""

from capledger.cli import main

main(prog_name="capledger")
