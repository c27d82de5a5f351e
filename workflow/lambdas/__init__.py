"""AWS Lambda handlers of the state machine; the local runtime calls the same functions.

Handlers (each `handler(event, context)`; clients come from `workflow.lambdas.clients`):

- `workflow.lambdas.start_build.handler`: starts the CodeBuild project that builds and pushes the
  image and returns its id and image URI at once (no task token: the state machine polls the
  build with `batchGetBuilds`).
- `workflow.lambdas.approval.request_handler`: emails the reviewer (SNS) signed, expiring links.
- `workflow.lambdas.approval.api_handler`: the approval HTTP API (GET confirms, POST decides).
- `workflow.lambdas.evaluate.handler`: bbox and segm mAP of the batch transform output.

Nothing here imports heavy modules at import time: the Lambda runtime has boto3 and little else.
"""
