"""The local proxy's choice of endpoint: shares follow weights, locality per topology,
passive ejection with backoff, retry elsewhere, and the rates telemetry reports."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

from edgefleet_agent.proxy.balancer import Balancer, Counters, key_of, rates
from edgefleet_protocol import Endpoint, ServiceEndpoints


def ep(node: str, weight: int = 1000, site: str = "s1", region: str = "eu") -> Endpoint:
    return Endpoint(node=node, address="127.0.0.1", port=8080, weight=weight, replica=f"r-{node}",
                    site=site, region=region)  # fmt: skip


def balancer(*endpoints: Endpoint, topology: str = "any", **kw: Any) -> Balancer:
    b = Balancer(site=kw.pop("site", "s1"), region=kw.pop("region", "eu"), rng=random.Random(7))
    b.update(ServiceEndpoints(service="web", app="web", endpoints=list(endpoints), updated_at=1,
                              revision=1, topology=topology))  # fmt: skip
    return b


def test_idle_choices_follow_the_weights() -> None:
    b = balancer(ep("a", 1000), ep("b", 500), ep("c", 500))
    counts = Counter(b.choose(0.0).node for _ in range(20_000))  # type: ignore[union-attr]
    assert abs(counts["a"] / 20_000 - 0.5) < 0.02
    assert abs(counts["b"] / 20_000 - 0.25) < 0.02


def test_busy_endpoints_get_fewer_new_connections() -> None:
    b = balancer(ep("a"), ep("b"))
    for _ in range(10):
        b.connected(b.endpoints[0], 0.001)  # a holds 10 open connections
    counts = Counter(b.choose(0.0).node for _ in range(1000))  # type: ignore[union-attr]
    assert counts["b"] > 700


def test_prefer_site_stays_in_site_then_region_then_anywhere() -> None:
    near, same_region, far = ep("a", site="s1"), ep("b", site="s2"), ep("c", site="x", region="us")
    b = balancer(near, same_region, far, topology="prefer-site")
    assert {b.choose(0.0).node for _ in range(200)} == {"a"}  # type: ignore[union-attr]
    assert b.choose(0.0, [key_of(near)]).node == "b"  # type: ignore[union-attr]
    assert b.choose(0.0, [key_of(near), key_of(same_region)]).node == "c"  # type: ignore[union-attr]
    region = balancer(near, same_region, far, topology="prefer-region", site="elsewhere")
    assert {region.choose(0.0).node for _ in range(200)} == {"a", "b"}  # type: ignore[union-attr]


def test_a_failed_connect_ejects_with_doubling_backoff_and_success_restores() -> None:
    a, b_ = ep("a"), ep("b")
    b = balancer(a, b_)
    assert b.failed(a, 10.0) == 1.0
    assert {b.choose(10.5).node for _ in range(100)} == {"b"}  # type: ignore[union-attr]
    assert b.failed(a, 11.0) == 2.0  # a second failure in a row
    assert {b.choose(12.5).node for _ in range(100)} == {"b"}  # type: ignore[union-attr]
    assert "a" in {b.choose(13.1).node for _ in range(100)}  # type: ignore[union-attr]
    b.connected(a, 0.001)
    assert b.state(a).failures == 0 and b.state(a).ejected_until == 0.0


def test_every_endpoint_ejected_still_tries_the_one_back_soonest_and_tried_ones_are_out() -> None:
    a, b_ = ep("a"), ep("b")
    b = balancer(a, b_)
    b.failed(a, 0.0)
    b.failed(b_, 0.5)
    assert b.choose(0.6).node == "a"  # type: ignore[union-attr]
    assert b.choose(0.6, [key_of(a), key_of(b_)]) is None


def test_zero_weight_only_when_nothing_else_is_left_and_old_revisions_are_ignored() -> None:
    b = balancer(ep("a", 0), ep("b", 100))
    assert {b.choose(0.0).node for _ in range(100)} == {"b"}  # type: ignore[union-attr]
    old = ServiceEndpoints(service="web", app="web", endpoints=[], updated_at=0, revision=0)
    assert not b.update(old)
    assert len(b.endpoints) == 2


def test_rates_over_an_interval() -> None:
    before = Counters(connections=10, failures=1, bytes=1000, connect_s=0.01, connects=10)
    after = Counters(connections=30, failures=2, bytes=5000, connect_s=0.03, connects=30)
    got = rates(before, after, 2.0, active=3, prefix="proxy.web")
    assert got == {
        "proxy.web.connections_per_s": 10.0,
        "proxy.web.bytes_per_s": 2000.0,
        "proxy.web.failures_per_s": 0.5,
        "proxy.web.connect_ms": 1.0,
        "proxy.web.active": 3.0,
    }
