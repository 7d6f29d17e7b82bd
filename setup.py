"""sparkml_ops: MLflow's interfaces on Delta Lake and Spark."""

from pathlib import Path

from setuptools import find_packages, setup

setup(
    name="sparkml_ops",
    version="0.1.0",
    description="Spark-centric ML lifecycle toolkit: MLflow tracking on Delta Lake tables, no server.",
    long_description=Path(__file__).with_name("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["sparkml_ops", "sparkml_ops.*"]),
    package_data={"sparkml_ops": ["py.typed"]},  # PEP 561: the package ships its type hints
    install_requires=[
        "mlflow-skinny>=3.6,<3.18",  # every MLflow 3 minor of the last twelve months (README: MLflow versions)
        "deltalake>=1.6,<2",
        "pyspark[connect]>=4.0,<5",  # connect: spark_udf on sc:// sessions
        "pandas>=2.2,<3",
        "pyarrow>=18",
        "numpy>=1.26",
        "cloudpickle>=3.0",
        "onnx>=1.16",
        "scikit-learn>=1.4",
        "skops>=0.10",  # mlflow.sklearn's default format; mlflow-skinny does not install it
        "duckdb>=1.1,<3",  # embedded SQL over the tracking tables
        "onnxruntime>=1.18,<2",
        "skl2onnx>=1.17,<2",  # sparkml_ops.models.onnx_convert.log_sklearn_as_onnx
        "starlette>=0.40,<2",  # REST scoring server
        "uvicorn[standard]>=0.30,<1",
        "orjson>=3.9,<4",
        "pyyaml>=6",
        "packaging>=23",
    ],
    extras_require={
        "test": ["pytest>=8", "pytest-timeout>=2.3", "pytest-xdist>=3.5", "ruff>=0.6", "import-linter>=2", "mypy>=1.10",
                 "matplotlib>=3.8", "pillow>=10", "httpx>=0.27,<1",
                 "mlflow>=3.6,<3.18", "sqlalchemy>=2", "alembic", "psutil", "Flask-WTF>=1.2,<2",
                 "hypothesis>=6.100", "optuna>=4.0,<6", "plotly>=5.20,<8",
                 "moto[server]>=5.1,<6",  # tests/objectstore: a real S3 API (moto's server) on 127.0.0.1
                 "playwright>=1.45,<2",  # browser tests drive Debian's chromium (.ci/run installs it)
                 "ipykernel>=6.29", "nbclient>=0.10", "nbformat>=5.9", "nbconvert>=7.16"],
        # `sparkml-ops server|ui`: MLflow's tracking server and web UI (same version as mlflow-skinny);
        # Flask-WTF for --auth (MLflow's basic-auth app)
        "server": ["mlflow>=3.6,<3.18", "Flask-WTF>=1.2,<2"],
        # notebook logging: %load_ext sparkml_ops, snapshots as ipynb + HTML, plot_metrics
        "notebook": ["ipykernel>=6.29", "nbclient>=0.10", "nbformat>=5.9", "nbconvert>=7.16", "matplotlib>=3.8"],
        # sparkml_ops.tuning: Optuna's samplers, its plotly (HTML) and matplotlib (PNG) plots
        "tuning": ["optuna>=4.0,<6", "plotly>=5.20,<8", "matplotlib>=3.8"],
        # MLflow's own stores, as the reference in bench/ (same version as mlflow-skinny);
        # Hyperopt's SparkTrials for bench_tuning.py
        "bench": ["mlflow>=3.6,<3.18", "sqlalchemy>=2", "alembic", "psutil", "hyperopt>=0.2.7"],
    },
    entry_points={
        "console_scripts": ["sparkml-ops=sparkml_ops.cli:main"],
        "mlflow.tracking_store": ["delta=sparkml_ops.tracking.plugin:tracking_store"],
        "mlflow.artifact_repository": ["delta-artifacts=sparkml_ops.tracking.artifact_plugin:artifact_repository"],
        "mlflow.project_backend": ["spark-submit=sparkml_ops.projects.backend:spark_submit_backend"],
        "mlflow.model_registry_store": ["delta=sparkml_ops.registry.plugin:registry_store"],
        "mlflow.run_context_provider": ["sparkml-ops-notebook=sparkml_ops.notebook.context:NotebookRunContext"],
    },
)
