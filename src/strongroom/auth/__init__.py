"""Authentication (SigV4) and authorization (IAM-style policies)."""
