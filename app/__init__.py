"""jiandang (建档): offline household registration for targeted poverty alleviation."""

__version__ = "0.1.0"
