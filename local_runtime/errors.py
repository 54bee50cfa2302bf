"""The error a local service provider answers an API call with."""


class ServiceError(Exception):
    """An API error with the service's error code and HTTP status, returned to the caller as AWS would."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
