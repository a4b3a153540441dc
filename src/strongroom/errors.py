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


# IAM and STS (AWS query protocol): codes as they appear in <Error><Code>.
NoSuchEntity = _error("NoSuchEntity", 404)
EntityAlreadyExists = _error("EntityAlreadyExists", 409)
DeleteConflict = _error("DeleteConflict", 409)
LimitExceeded = _error("LimitExceeded", 409)
MalformedPolicyDocument = _error("MalformedPolicyDocument")
PackedPolicyTooLarge = _error("PackedPolicyTooLarge")
InvalidInput = _error("InvalidInput")
ValidationError = _error("ValidationError")
AccessDenied = _error("AccessDenied", 403)
PolicyNotAttachable = _error("PolicyNotAttachable")
UnmodifiableEntity = _error("UnmodifiableEntity")


# KMS (TrentService). LimitExceededException, MalformedPolicyDocumentException,
# AccessDeniedException and ValidationException above carry the same codes in KMS.
NotFoundException = _error("NotFoundException")
AlreadyExistsException = _error("AlreadyExistsException")
DisabledException = _error("DisabledException")
KMSInvalidStateException = _error("KMSInvalidStateException")
InvalidCiphertextException = _error("InvalidCiphertextException")
IncorrectKeyException = _error("IncorrectKeyException")
InvalidKeyUsageException = _error("InvalidKeyUsageException")
InvalidAliasNameException = _error("InvalidAliasNameException")
InvalidArnException = _error("InvalidArnException")
InvalidMarkerException = _error("InvalidMarkerException")
UnsupportedOperationException = _error("UnsupportedOperationException")
TagException = _error("TagException")
NotAuthorizedException = _error("NotAuthorizedException")
DryRunOperationException = _error("DryRunOperationException", 412)
KMSInternalException = _error("KMSInternalException", 500)


class InternalServiceError(AwsError):
    """An unexpected fault; the message names the request id, never the cause."""

    code = "InternalServiceError"
    status = 500
