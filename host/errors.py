"""The host package's error bases; the CLI turns them into `tonus: message` and an exit code."""


class TonusError(Exception):
    """A failure a person can act on; the message says what to do next."""


class UsageError(TonusError):
    """A command line that cannot be right (exit 2, as argparse's own usage errors)."""
