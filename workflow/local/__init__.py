"""The local runtime: run the deployed ASL document on this machine, with no AWS and no Docker.

`workflow.local.engine.LocalEngine` interprets the state machine with moto's ASL interpreter
(pinned, behind the seam `workflow.local.interpreter`); the other modules implement the services its
Task states call (SageMaker, CodeBuild, SNS, Lambda, approvals) over a local artifact store.
`workflow.api` serves these runtimes as a local AWS API on 127.0.0.1 (`python -m workflow api`).

Importing this package is cheap: moto is only imported when a `LocalEngine` is created.
"""
