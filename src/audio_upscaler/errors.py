"""The one exception type for problems a user can cause.

Every error a user can trigger (bad file, bad rate, missing model, unwritable output...)
raises :class:`UpscalerError` with a one-line, human readable message.  The CLI prints the
message and exits with code 2; anything else is a bug and exits with code 1.
"""


class UpscalerError(Exception):
    """A problem caused by the input or the request, explained in one line."""
