"""The package's version: the one place it is written (hatch reads it for the wheel's metadata,
``flyteauth_jupyter.__version__`` re-exports it; CHANGELOG.md says what each version holds)."""

__version__ = "0.3.0.dev0"
