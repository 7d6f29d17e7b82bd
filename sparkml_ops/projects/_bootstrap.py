"""Driver bootstrap for project runs (spark-submit's primary resource).

Runs under the project's env Python, which may not have sparkml_ops installed: it imports
only the standard library (and pyspark, which spark-submit puts on PYTHONPATH). It appends
the submitting client's site directories *after* the env's own (``SPARKML_OPS_FALLBACK_SITE``),
records the Spark application id when the job creates its SparkContext
(``SPARKML_OPS_APP_INFO``), then runs the entry script or module as ``__main__``.

Usage: _bootstrap.py (--script FILE | --module NAME) [ARGS...]
"""

import json
import os
import runpy
import site
import sys


def _add_fallback_site() -> None:
    for directory in os.environ.get("SPARKML_OPS_FALLBACK_SITE", "").split(os.pathsep):
        if directory and os.path.isdir(directory):
            site.addsitedir(directory)  # appends, and runs .pth files (editable installs)


def _record_application() -> None:
    path = os.environ.get("SPARKML_OPS_APP_INFO")
    if not path:
        return
    try:
        import pyspark
    except ImportError:
        return
    original = pyspark.SparkContext.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        try:
            info = {"app_id": self.applicationId, "master": self.master, "ui": self.uiWebUrl}
            tmp = f"{path}.{os.getpid()}"
            with open(tmp, "w") as handle:
                json.dump(info, handle)
            os.replace(tmp, path)
        except Exception as exc:  # noqa: BLE001 - recording must never break the job
            print(f"sparkml_ops: could not record the Spark application id: {exc}", file=sys.stderr)

    setattr(pyspark.SparkContext, "__init__", init)  # noqa: B010 - mypy forbids assigning to a method


def main(argv: list) -> None:
    if len(argv) < 2 or argv[0] not in ("--script", "--module"):
        raise SystemExit("usage: _bootstrap.py (--script FILE | --module NAME) [ARGS...]")
    kind, target, rest = argv[0], argv[1], argv[2:]
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]  # no sibling modules leak in
    _add_fallback_site()
    _record_application()
    if kind == "--module":
        sys.argv = [target, *rest]
        sys.path.insert(0, os.getcwd())
        runpy.run_module(target, run_name="__main__", alter_sys=True)
    else:
        script = os.path.abspath(target)
        sys.argv = [script, *rest]
        sys.path.insert(0, os.path.dirname(script))
        runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main(sys.argv[1:])
