"""Domain errors carry their HTTP status and a stable code; one handler renders them."""

from __future__ import annotations

from typing import Any, ClassVar


class PlatformError(Exception):
    status_code: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"
    default_message: ClassVar[str] = "The request could not be processed."

    def __init__(
        self,
        message: str | None = None,
        *,
        field: str | None = None,
        headers: dict[str, str] | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        self.message = message or self.default_message
        self.field = field
        self.headers = headers or {}
        self.details = details or {}
        super().__init__(self.message)

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field is not None:
            error["field"] = self.field
        if self.details:
            error["details"] = self.details
        return {"error": error}


class InvalidInput(PlatformError):
    status_code = 422
    code = "invalid_input"
    default_message = "The input is not valid."


class SchemaViolation(InvalidInput):
    code = "schema_violation"
    default_message = "The document does not match its schema."


class InvalidInvitation(InvalidInput):
    code = "invalid_invitation"
    default_message = "This invitation link is not valid, was already used, or has expired."


class NotAuthenticated(PlatformError):
    status_code = 401
    code = "not_authenticated"
    default_message = "Sign in or send a valid API key."

    def __init__(self, message: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"WWW-Authenticate": 'Bearer realm="vibethink"'})
        super().__init__(message, **kwargs)


class InvalidCredentials(NotAuthenticated):
    code = "invalid_credentials"
    default_message = "The e-mail or password is not correct."


class SessionExpired(NotAuthenticated):
    code = "session_expired"
    default_message = "Your session has expired; sign in again."


class InvalidApiKey(NotAuthenticated):
    code = "invalid_api_key"
    default_message = "The API key is not valid, expired or revoked."


class PermissionDenied(PlatformError):
    status_code = 403
    code = "permission_denied"
    default_message = "You do not have permission to do this."


class MissingScope(PermissionDenied):
    code = "missing_scope"
    default_message = "The API key lacks the scope this operation needs."


class CsrfFailed(PermissionDenied):
    code = "csrf_failed"
    default_message = "The form has expired or did not come from this site; reload and try again."


class NotFound(PlatformError):
    status_code = 404
    code = "not_found"
    default_message = "Not found."


class Conflict(PlatformError):
    status_code = 409
    code = "conflict"
    default_message = "The request conflicts with the current state."


class LastOwner(Conflict):
    code = "last_owner"
    default_message = "A tenant must keep at least one owner; appoint another owner first."


class AlreadyExists(Conflict):
    code = "already_exists"
    default_message = "Something with that identifier already exists."


class InvalidTransition(Conflict):
    code = "invalid_transition"
    default_message = "That change of status is not allowed."


class TooManyRequests(PlatformError):
    status_code = 429
    code = "rate_limited"
    default_message = "Too many attempts; wait and try again."

    def __init__(self, retry_after_seconds: int, message: str | None = None) -> None:
        self.retry_after_seconds = max(1, int(retry_after_seconds))
        super().__init__(message, headers={"Retry-After": str(self.retry_after_seconds)})


class ServiceUnavailable(PlatformError):
    status_code = 503
    code = "service_unavailable"
    default_message = "The service is not ready."


class UnreadableDocument(InvalidInput):
    code = "unreadable_document"
    default_message = "The document could not be read; check that it is not corrupt or encrypted."


class EmptyDocument(InvalidInput):
    code = "empty_document"
    default_message = "The document has no text to learn from."


class DocumentTooLarge(InvalidInput):
    code = "document_too_large"
    default_message = "The document is too large."


class EmbeddingUnavailable(ServiceUnavailable):
    code = "embedding_unavailable"
    default_message = "The embedding provider is not available."


class ConversationFull(Conflict):
    code = "conversation_full"
    default_message = "This conversation has reached its message limit; start a new one."


class FanBlocked(PermissionDenied):
    code = "fan_blocked"
    default_message = "You can no longer send messages to this twin."


class InvalidFanToken(NotAuthenticated):
    code = "invalid_fan_token"
    default_message = "The fan token is not valid or has expired; start a new chat session."


class ModelUnavailable(ServiceUnavailable):
    code = "provider_unavailable"
    default_message = "The twin cannot answer right now; try again in a moment."


class TwinUnavailable(NotFound):
    code = "twin_unavailable"
    default_message = "This twin is not available here right now."


class ModelNotFound(NotFound):
    code = "model_not_found"
    default_message = "The model does not exist or you do not have access to it."
