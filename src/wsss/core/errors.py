"""The package's error for unusable input, in a module without dependencies.

`wsss.config.load` (imported by the Snakefile, possibly in an environment without numpy or torch)
needs it; `wsss.core.io` re-exports it, so `wsss.core.io.BadInputError` is this very class.
"""


class BadInputError(RuntimeError):
    """Input that a stage cannot use; the message names the file and the fix."""
