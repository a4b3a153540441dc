"""The audit trail: one CloudTrail record per API call, durable before the response leaves,
hash-chained and signed, queryable, and copied to sinks.

Modules: record (the CloudTrail record), redact (what never reaches it), catalog (per
operation facts), writer (group commit), chain and signing (tamper evidence), verify,
forwarder and sinks (copies), log (the running whole), settings ([audit] in config.toml),
local (records of administrative actions that bypass the API: CLI commands, the admin endpoint).
"""
