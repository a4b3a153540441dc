"""CloudTrail's LookupEvents over strongroom's audit trail (AWS JSON 1.1)."""

from strongroom.services.cloudtrail.service import CloudTrail

__all__ = ["CloudTrail"]
