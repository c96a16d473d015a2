"""How the ``mnist-fast`` command writes text: never stopped by a character.

A file name may hold what the terminal's encoding cannot write: bytes that
are not UTF-8 (Python keeps them in the name as the surrogates
U+DC80-U+DCFF) under a strict UTF-8 ``$PYTHONIOENCODING``, or any non-ASCII
letter under an ASCII locale (``LC_ALL=C``).  Python's ``sys.stdout``
raises ``UnicodeEncodeError`` on them, which would stop ``predict`` at that
file and ``train`` before it writes its model.  :func:`never_refuse` sets,
once, at the command's entry, how both streams write what their encoding
cannot:

* a stream that would raise (``errors="strict"``) writes it as a Python
  backslash escape (``\\udcff``, ``\\xe9``), as ``sys.stderr`` always does;
* a stream that writes file names back as their own bytes
  (``errors="surrogateescape"``, Python's choice under the C locale) keeps
  doing so, and writes the other characters it cannot encode (the ``µ``
  of ``µs``) as backslash escapes instead of raising.

Any other choice of the user's (``PYTHONIOENCODING=utf-8:replace``) is kept.
"""

import codecs
import sys

#: The error handler of streams that write file names back as their bytes.
SURROGATES_OR_ESCAPES = "mnist_fast.surrogateescape_or_backslash"
#: What a stream that would raise does instead.
_INSTEAD_OF = {"strict": "backslashreplace",
               "surrogateescape": SURROGATES_OR_ESCAPES}


def _surrogates_or_escapes(exc):
    """The surrogateescape error handler, backslashreplace for the
    characters it cannot write."""
    if not isinstance(exc, UnicodeEncodeError):
        raise exc
    out = []
    for char in exc.object[exc.start:exc.end]:
        if "\udc80" <= char <= "\udcff":  # a byte of a file name
            out.append(bytes([ord(char) - 0xDC00]))
        else:
            out.append(char.encode("ascii", "backslashreplace"))
    return b"".join(out), exc.end


codecs.register_error(SURROGATES_OR_ESCAPES, _surrogates_or_escapes)


def never_refuse(streams=None):
    """Make ``streams`` (default ``sys.stdout``, ``sys.stderr``) write every
    character (see the module docstring).

    Streams that are not text files with ``reconfigure`` (replaced by a
    test harness, say) are left as they are.
    """
    for stream in streams or (sys.stdout, sys.stderr):
        errors = getattr(stream, "errors", None)
        if errors in _INSTEAD_OF and hasattr(stream, "reconfigure"):
            stream.reconfigure(errors=_INSTEAD_OF[errors])
