"""AWS Security Token Service: GetCallerIdentity, AssumeRole (2011-06-15 API)."""

from strongroom.services.sts.service import OPERATIONS, STS

__all__ = ["OPERATIONS", "STS"]
