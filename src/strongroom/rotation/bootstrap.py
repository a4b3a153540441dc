"""Runs inside a function's subprocess (stdlib only): import the handler, call it once.

The event arrives on stdin; the outcome is written as JSON to the file named by
_STRONGROOM_RESULT, so whatever the handler prints stays its log.
"""

import importlib
import json
import os
import sys
import time
import traceback
import uuid


class Context:
    def __init__(self) -> None:
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version = "$LATEST"
        self.invoked_function_arn = os.environ.get("_STRONGROOM_FUNCTION_ARN", "")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        self.aws_request_id = os.environ.get("_STRONGROOM_REQUEST_ID", str(uuid.uuid4()))
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = self.aws_request_id
        self._deadline = time.monotonic() + float(os.environ.get("_STRONGROOM_TIMEOUT", "3"))

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def main() -> None:
    result_path = os.environ["_STRONGROOM_RESULT"]
    module_name, _, func_name = os.environ["_HANDLER"].rpartition(".")
    try:
        event = json.loads(sys.stdin.read() or "null")
        handler = getattr(importlib.import_module(module_name), func_name)
        payload = handler(event, Context())
        out = {"ok": True, "payload": payload}
        json.dumps(out)
    except BaseException as exc:  # noqa: BLE001 - the handler's failure is the function's result
        out = {"ok": False, "errorMessage": str(exc), "errorType": type(exc).__name__,
               "stackTrace": traceback.format_exception(exc)[-10:]}
        traceback.print_exc()
    with open(result_path, "w", encoding="utf-8") as f:
        json.dump(out, f, default=str)


if __name__ == "__main__":
    main()
