"""Optional dependencies: imported by the feature that needs them, never by
``import diffsde``, which needs NumPy only."""
import importlib

#: The extra of pyproject.toml that installs each optional package.
EXTRAS = {"scipy": "fokker-planck", "matplotlib": "plot", "torch": "torch", "jax": "jax"}


def require(module, feature):
    """Import ``module`` (e.g. ``"scipy.linalg"``) for ``feature``.

    Raises
    ------
    ImportError
        When the package is not installed, naming the extra that installs it.
        A package that is installed but fails to import raises its own error.
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        top = module.partition(".")[0]
        if exc.name is None or exc.name.partition(".")[0] != top:
            raise
        raise ImportError(
            f"{feature} needs {top}, which is not installed; install it with "
            f'pip install "diffsde[{EXTRAS[top]}]" (or pip install {top})', name=top) from exc
