"""HTTP: the ASGI app, AWS protocol codecs, error shapes and limits."""
