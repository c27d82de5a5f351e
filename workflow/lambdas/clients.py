"""The one place the Lambda handlers get their AWS clients from.

`client("s3")` returns a boto3 client by default. The local runtime and the tests swap the factory:

    with use_clients(lambda name: fakes[name]):
        handler(event, None)

A factory is any callable `factory(service_name) -> client`. The handlers only call these methods,
so a fake needs nothing else: `codebuild.start_build`, `s3.get_object`, `s3.put_object`,
`s3.list_objects_v2`, `sns.publish`, `stepfunctions.send_task_success`,
`stepfunctions.send_task_failure`, `secretsmanager.get_secret_value`, `ssm.get_parameter`.
Errors from a fake should be `botocore.exceptions.ClientError` with the AWS error code, as boto3's.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

ClientFactory = Callable[[str], Any]

_lock = threading.Lock()
_factory: ClientFactory | None = None


def boto3_client(service_name: str) -> Any:
    """Return a new boto3 client for `service_name` (region and credentials from the environment).

    Args:
        service_name: A boto3 service name, e.g. ``"s3"``.

    Returns:
        The boto3 client.
    """
    import boto3  # imported here: the local runtime never needs boto3's session machinery

    return boto3.client(service_name)


def client(service_name: str) -> Any:
    """Return the client for `service_name` from the installed factory (boto3 by default).

    Args:
        service_name: A boto3 service name: ``codebuild``, ``s3``, ``sns``, ``stepfunctions``,
            ``secretsmanager`` or ``ssm``.

    Returns:
        An object with the boto3 method names of that service.
    """
    factory = _factory or boto3_client
    return factory(service_name)


def set_client_factory(factory: ClientFactory | None) -> ClientFactory | None:
    """Install `factory` for every later `client()` call; None restores boto3.

    Args:
        factory: A callable `factory(service_name) -> client`, or None.

    Returns:
        The factory that was installed before (None when it was boto3), to restore it later.
    """
    global _factory
    with _lock:
        previous, _factory = _factory, factory
    return previous


@contextmanager
def use_clients(factory: ClientFactory) -> Iterator[None]:
    """Use `factory` for the duration of the `with` block, then restore the previous one.

    Args:
        factory: A callable `factory(service_name) -> client`.

    Yields:
        None.
    """
    previous = set_client_factory(factory)
    try:
        yield
    finally:
        set_client_factory(previous)
