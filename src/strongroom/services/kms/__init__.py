"""AWS KMS (TrentService): symmetric encryption keys, aliases, rotation, key policies."""

from strongroom.services.kms.core import KmsDeps
from strongroom.services.kms.service import OPERATIONS, Kms, run_maintenance

__all__ = ["OPERATIONS", "Kms", "KmsDeps", "run_maintenance"]
