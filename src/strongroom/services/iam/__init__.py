"""AWS Identity and Access Management: users, access keys, roles, policies (2010-05-08 API)."""

from strongroom.services.iam.core import Deps
from strongroom.services.iam.service import IAM, OPERATIONS

__all__ = ["IAM", "OPERATIONS", "Deps"]
