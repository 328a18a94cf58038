"""The core: the incident lifecycle, its ports and its rules; no I/O library, adapter or handler is imported here."""
