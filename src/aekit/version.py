"""The package version, in a leaf module: importing it runs nothing else of aekit."""

__version__ = "0.1.0"
