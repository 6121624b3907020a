"""Fixed-window counters: one per name, shared by every web worker through the cache (Redis when
REDIS_URL is set, the local-memory cache otherwise: both are run in CI)."""

import pytest
from django.core.cache import cache

from leadsmgr.ratelimit import over_limit, over_limits


@pytest.fixture(autouse=True)
def fresh_counters():
    cache.clear()
    yield
    cache.clear()


def seconds_left(answer) -> bool:
    return answer is not None and 1 <= answer <= 60


def test_the_request_after_the_limit_is_told_how_long_to_wait():
    answers = [over_limit("hook:a", 2) for _ in range(4)]

    assert answers[:2] == [None, None]
    assert all(seconds_left(answer) for answer in answers[2:])


def test_several_limits_are_counted_together_and_any_one_over_refuses():
    site, busy_ip, quiet_ip = "site:s", "ip:busy", "ip:quiet"

    answers = [over_limits((site, 100), (busy_ip, 2)) for _ in range(3)]

    assert answers[:2] == [None, None]
    assert seconds_left(answers[2])
    # The site's counter took every request (this is its 4th), the other address's only this one.
    assert seconds_left(over_limits((site, 3), (quiet_ip, 2)))
    assert over_limits((quiet_ip, 2)) is None


def test_one_name_counted_alone_or_with_others_is_the_same_counter():
    over_limits(("hook:b", 2), ("ip:c", 10))
    over_limit("hook:b", 2)

    assert seconds_left(over_limit("hook:b", 2))


@pytest.mark.parametrize("limit", [0, -1])
def test_a_limit_of_zero_or_less_never_refuses_and_counts_nothing(limit):
    assert all(over_limits(("hook:d", limit), ("ip:e", 3)) is None for _ in range(3))
    assert over_limit("hook:d", 1) is None
