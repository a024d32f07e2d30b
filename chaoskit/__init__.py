"""chaoskit: chaos engineering for databases, checked through real drivers."""

__version__ = "0.1.0"
