"""The plan's refusals. Each class name is the Lambda's errorType, so the state machine's Catch
names them; each message names the config field or the file, and the fix. None is retried: the
same input fails the same way until the config, the data or the account changes."""

from __future__ import annotations


class InvalidConfigError(ValueError):
    """The config cannot run here: it does not validate, it is another stack's, or the execution
    input does not say which config to run."""


class DataRejectedError(ValueError):
    """The data the config names is missing, lacks a column the config names, or is below what
    Amazon Personalize needs to train."""


class RegionNotSupportedError(ValueError):
    """Amazon Personalize is not offered in the stack's region."""


class QuotaExceededError(ValueError):
    """The account has no room for what the run would create (a Personalize quota)."""
