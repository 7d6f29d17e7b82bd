"""``python -m sparkml_ops.cli``: the same as the ``sparkml-ops`` command."""

from sparkml_ops.cli import main

if __name__ == "__main__":
    main(prog_name="sparkml-ops")
