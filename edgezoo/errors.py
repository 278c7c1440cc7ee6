"""The error family the CLI prints as one line. Anything else is a bug and keeps its traceback."""

import re

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# Lines that say where a C++ check fired, not what went wrong (OpenVINO, ONNX Runtime).
_NOISE = re.compile(r"^(Check '.*' failed at .*|FrontEnd API failed with \w+:?|Summary:|Traceback.*)$")


class EdgezooError(Exception):
    """A problem with the user's input or environment, explained in one line with its fix."""


class BadInput(EdgezooError):
    """An argument, file or path the user gave cannot be used."""


def one_line(exc: BaseException, limit: int = 300) -> str:
    """The informative part of an exception's message, on one line, for a table cell or an error."""
    lines = [_ANSI.sub("", l).strip() for l in str(exc).splitlines()]
    lines = [l for l in lines if l and not _NOISE.match(l)]
    text = " ".join(lines[:3]) if lines else "(no message)"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def did_you_mean(name: str, known, cutoff: float = 0.6) -> str:
    """"did you mean X? " for the closest of ``known`` to a name the user mistyped, else ""."""
    import difflib

    close = difflib.get_close_matches(name, list(known), n=1, cutoff=cutoff)
    return f"did you mean {close[0]}? " if close else ""


def how_it_ended(returncode: int | None) -> str:
    """A child process's end as a person reads it: the signal's name (SIGSEGV) or the exit code."""
    import signal

    if returncode is not None and returncode < 0 and -returncode in signal.valid_signals():
        return signal.Signals(-returncode).name
    return f"exit code {returncode}"
