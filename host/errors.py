"""The host package's one error base; the CLI turns it into `tonus: message`."""


class TonusError(Exception):
    """A failure a person can act on; the message says what to do next."""
