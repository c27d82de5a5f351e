"""A local AWS endpoint that real clients use as they use AWS (``python -m workflow api``).

:class:`LocalAwsApi` is a WSGI application serving Step Functions on the local engine, the
SageMaker reads of the local resources and SageMaker Runtime's ``InvokeEndpoint``;
:class:`ApiServer` runs it on a loopback port::

    runtime = LocalRuntime(config)
    with runtime, ApiServer(LocalAwsApi(runtime.engine, runtime.sagemaker)) as server:
        sfn = boto3.client("stepfunctions", endpoint_url=server.url)
"""

from __future__ import annotations

from workflow.api.errors import ApiError
from workflow.api.server import ApiServer, ApiServerError, LocalAwsApi

__all__ = ["ApiError", "ApiServer", "ApiServerError", "LocalAwsApi"]
