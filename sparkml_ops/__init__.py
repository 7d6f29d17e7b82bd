"""sparkml_ops: MLflow's interfaces on Delta Lake and Spark.

Importing this package starts no JVM and opens no table; everything is lazy.
"""

__version__ = "0.1.0"


def load_ipython_extension(shell: object) -> None:
    """``%load_ext sparkml_ops``: notebook logging (needs the ``notebook`` extra)."""
    from sparkml_ops.notebook import load_ipython_extension as load

    load(shell)


def unload_ipython_extension(shell: object) -> None:
    from sparkml_ops.notebook import unload_ipython_extension as unload

    unload(shell)
