"""Lambda invocations of engine executions: the engine's Python functions, as Lambda runs them.

Used for `lambda:invoke` Task states and for `arn:aws:lambda:...:function:NAME` resources
(moto's `lambda_eval_utils.execute_lambda_function_integration`, hooked in `patches`).
"""

# mypy: disable-error-code="no-any-return,attr-defined,no-untyped-call,dict-item"

from __future__ import annotations

import copy
import json
import traceback
import uuid
from typing import Any

from workflow.local.errors import TaskFailed
from workflow.local.interpreter.host import ExecutionHost, context_data, state_name
from workflow.local.interpreter.moto_api import ClientError, Environment, lambda_eval_utils
from workflow.local.interpreter.tasks import MOCK_HINT, mocked_result


def invoke_local_lambda(host: ExecutionHost, env: Environment, parameters: dict[str, Any]) -> None:
    """Invoke the Python function registered for `FunctionName`, as the Lambda service would.

    An unknown function fails like AWS's `Lambda.ResourceNotFoundException` (catchable); an
    exception in the function is an unhandled Lambda error named after its class.
    """
    reference = str(parameters.get("FunctionName", ""))
    raw = parameters.get("Payload")
    payload = json.loads(raw) if raw else {}
    mocked = mocked_result(host, env, reference)
    if mocked is not None:
        env.stack.append(mocked.output)
        return
    replayed, output = host.replay(
        state_name(env), "lambda", {"FunctionName": reference, "Payload": payload}
    )
    if replayed:
        output = {"Payload": output, "StatusCode": 200}
    else:
        output = _call_lambda(host, env, reference, payload)
    env.stack.append(output)


def _call_lambda(host: ExecutionHost, env: Environment, reference: str, payload: Any) -> Any:
    fn = host.lambda_function(reference)
    if fn is None:
        raise ClientError(
            {
                "Error": {
                    "Code": "ResourceNotFoundException",
                    "Message": f"Function not found: {reference} (the local runtime has no "
                    f"function under this name or ARN; {MOCK_HINT})",
                },
                "ResponseMetadata": {"HTTPStatusCode": 404, "RequestId": str(uuid.uuid4())},
            },
            "Invoke",
        )
    ctx = host.task_context(context_data(env), reference, env.is_running)
    try:
        result = fn(copy.deepcopy(payload), ctx)
    except TaskFailed as exc:
        body = {"errorType": exc.error, "errorMessage": exc.cause}
        raise lambda_eval_utils.LambdaFunctionErrorException("Unhandled", json.dumps(body)) from exc
    except Exception as exc:
        body = {
            "errorMessage": str(exc),
            "errorType": type(exc).__name__,
            "stackTrace": traceback.format_tb(exc.__traceback__),
        }
        raise lambda_eval_utils.LambdaFunctionErrorException("Unhandled", json.dumps(body)) from exc
    # Round-trip through JSON, as the Lambda service does with the returned value.
    try:
        returned = json.loads(json.dumps(result))
    except (TypeError, ValueError) as exc:
        body = {
            "errorMessage": f"Unable to marshal response: {exc}",
            "errorType": "Runtime.MarshalError",
        }
        raise lambda_eval_utils.LambdaFunctionErrorException("Unhandled", json.dumps(body)) from exc
    return {
        "ExecutedVersion": "$LATEST",
        "Payload": returned,
        "SdkHttpMetadata": {
            "HttpHeaders": {"X-Amz-Executed-Version": "$LATEST"},
            "HttpStatusCode": 200,
        },
        "SdkResponseMetadata": {"RequestId": str(uuid.uuid4())},
        "StatusCode": 200,
    }
