"""One exception hierarchy for every AWS-shaped error strongroom answers.

Each error carries the AWS error code, the HTTP status and a message; the HTTP
layer is the single place that turns it into a response body.
"""

from __future__ import annotations


class AwsError(Exception):
    """An error answered to the client in AWS's shape."""

    code = "InternalServiceError"
    status = 400

    def __init__(self, message: str = "", *, code: str | None = None, status: int | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code}: {self.message!r})"


def _error(name: str, status: int = 400) -> type[AwsError]:
    return type(name, (AwsError,), {"code": name, "status": status, "__doc__": f"AWS `{name}`."})


# Protocol-level errors shared by every AWS JSON service.
SerializationException = _error("SerializationException")
ValidationException = _error("ValidationException")
UnknownOperationException = _error("UnknownOperationException")
ThrottlingException = _error("ThrottlingException")
RequestEntityTooLargeException = _error("RequestEntityTooLargeException", 413)
ServiceUnavailableException = _error("ServiceUnavailableException", 503)
AccessDeniedException = _error("AccessDeniedException")

# Authentication (SigV4).
UnrecognizedClientException = _error("UnrecognizedClientException")
InvalidSignatureException = _error("InvalidSignatureException")
IncompleteSignatureException = _error("IncompleteSignatureException")
MissingAuthenticationTokenException = _error("MissingAuthenticationTokenException", 403)
ExpiredTokenException = _error("ExpiredTokenException")
InvalidClientTokenId = _error("InvalidClientTokenId", 403)

# Secrets Manager.
ResourceNotFoundException = _error("ResourceNotFoundException")
InvalidParameterException = _error("InvalidParameterException")
InvalidRequestException = _error("InvalidRequestException")
ResourceExistsException = _error("ResourceExistsException")
LimitExceededException = _error("LimitExceededException")
InvalidNextTokenException = _error("InvalidNextTokenException")
MalformedPolicyDocumentException = _error("MalformedPolicyDocumentException")
PublicPolicyException = _error("PublicPolicyException")
PreconditionNotMetException = _error("PreconditionNotMetException")
EncryptionFailure = _error("EncryptionFailure")
DecryptionFailure = _error("DecryptionFailure")


class InternalServiceError(AwsError):
    """An unexpected fault; the message names the request id, never the cause."""

    code = "InternalServiceError"
    status = 500
