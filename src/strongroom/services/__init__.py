"""One package per AWS service; operations are (ctx, request dict) -> response dict."""
