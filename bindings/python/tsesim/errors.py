"""The exceptions: every failure of the package is a tsesim.Error.

=====================  ==============================================
exception              C code
=====================  ==============================================
InvalidInput           TSESIM_E_INVAL
NoMemory               TSESIM_E_NOMEM (also a MemoryError)
LimitError             TSESIM_E_LIMIT
ParseError             TSESIM_E_PARSE
TransportError         TSESIM_E_TRANSPORT, TSESIM_E_TIMEOUT, TSESIM_E_TLS
AuthError              TSESIM_E_AUTH
ApiError               TSESIM_E_API, TSESIM_E_HTTP, TSESIM_E_RATE_LIMITED
UnknownOutcomeError    TSESIM_E_UNKNOWN_OUTCOME
JournalError           TSESIM_E_JOURNAL: the journal could not be opened,
                       read or written
Cancelled              TSESIM_E_CANCELLED: a job stopped because its stop
                       callable asked
=====================  ==============================================
"""

__all__ = [
    "Error",
    "InvalidInput",
    "NoMemory",
    "LimitError",
    "ParseError",
    "TransportError",
    "AuthError",
    "ApiError",
    "UnknownOutcomeError",
    "JournalError",
    "Cancelled",
]


class Error(Exception):
    """A failure reported by libtsesim.

    .code: the C name of the result code ("TSESIM_E_AUTH");
    .message: the library's errmsg or errbuf text."""

    def __init__(self, code, message):
        super().__init__(code, message)
        self.code = code
        self.message = message

    def __str__(self):
        return "%s: %s" % (self.code, self.message)


class InvalidInput(Error):
    """TSESIM_E_INVAL: a bad argument or invalid input data; nothing changed."""


class NoMemory(Error, MemoryError):
    """TSESIM_E_NOMEM: an allocation in the C library failed; nothing leaked."""


class LimitError(Error):
    """TSESIM_E_LIMIT: a documented limit was exceeded (over 10,000 devices in one body)."""


class ParseError(Error):
    """TSESIM_E_PARSE: not valid JSON, or not the expected shape (the message says where)."""


class TransportError(Error):
    """TSESIM_E_TRANSPORT, TSESIM_E_TIMEOUT, TSESIM_E_TLS: could not connect, send, or
    verify the server; for a download, nothing of it was acted on."""


class AuthError(Error):
    """TSESIM_E_AUTH: credentials refused. The client will not try them again (ThingSpace
    locks a user after 5 failed logins): make a new Client with other credentials."""


class ApiError(Error):
    """TSESIM_E_API, TSESIM_E_HTTP, TSESIM_E_RATE_LIMITED: ThingSpace answered with an
    error, or with an answer the API does not document.

    .http_status: the HTTP status (int), or None;
    .api_code: errorCode, fault code or OAuth error, or None;
    .api_message: errorMessage, fault message or error_description, or None;
    .body: the raw answer body (str), or None;
    .description: the gateway fault's description, or None;
    .retry_after: the seconds a Retry-After header asked for, or None."""

    def __init__(
        self,
        code,
        message,
        http_status=None,
        api_code=None,
        api_message=None,
        body=None,
        description=None,
        retry_after=None,
    ):
        super().__init__(code, message)
        self.http_status = http_status
        self.api_code = api_code
        self.api_message = api_message
        self.body = body
        self.description = description
        self.retry_after = retry_after


class UnknownOutcomeError(Error):
    """TSESIM_E_UNKNOWN_OUTCOME: the download was sent and no complete answer came. It
    may have been acted on: never retry it blindly; its callbacks will tell."""


class JournalError(Error):
    """TSESIM_E_JOURNAL: the journal could not be opened, read or written."""


class Cancelled(Error):
    """TSESIM_E_CANCELLED: a job stopped because its stop callable asked."""
