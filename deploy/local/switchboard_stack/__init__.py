"""Run the whole Switchboard suite on loopback (what `make run`, the e2e tests and the bench use)."""

from switchboard_stack.config import StackConfig
from switchboard_stack.stack import Stack

__all__ = ["Stack", "StackConfig"]
