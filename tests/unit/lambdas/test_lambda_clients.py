"""workflow.lambdas.clients: boto3 by default, swappable, restored after use."""

from __future__ import annotations

from workflow.lambdas import clients


def test_default_factory_builds_boto3_clients() -> None:
    assert clients.client("s3").meta.service_model.service_name == "s3"


def test_use_clients_swaps_and_restores() -> None:
    seen: list[str] = []

    def fake(name: str) -> str:
        seen.append(name)
        return f"fake-{name}"

    with clients.use_clients(fake):
        assert clients.client("sns") == "fake-sns"
        with clients.use_clients(lambda name: "inner"):
            assert clients.client("sns") == "inner"
        assert clients.client("ssm") == "fake-ssm"
    assert seen == ["sns", "ssm"]
    assert clients.client("sns").meta.service_model.service_name == "sns"


def test_set_client_factory_returns_the_previous_one() -> None:
    def fake(name: str) -> str:
        return name

    assert clients.set_client_factory(fake) is None
    try:
        assert clients.client("x") == "x"
    finally:
        assert clients.set_client_factory(None) is fake
