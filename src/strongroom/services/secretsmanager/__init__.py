"""AWS Secrets Manager: every operation of the 2017-10-17 API."""

from strongroom.services.secretsmanager.service import OPERATIONS, SecretsManager

__all__ = ["OPERATIONS", "SecretsManager"]
