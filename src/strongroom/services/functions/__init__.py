"""The Lambda-compatible function API (a subset) for rotation functions."""

from strongroom.services.functions.service import Functions

__all__ = ["Functions"]
