"""RL Discovery Workbench: meta-learn RL algorithms (the application layer)."""

__version__ = "0.1.0"
