"""ProcessMemory: a process's short-lived copies in front of a shared source."""

import time

from leadsmgr.memory import ProcessMemory


def test_a_value_is_served_until_it_expires():
    memory = ProcessMemory(size=10)
    memory.put("k", "v", seconds=0.1)
    assert memory.get("k") == "v"
    time.sleep(0.12)
    assert memory.get("k") is None
    assert memory.get("k", "default") == "default"


def test_forgetting_drops_the_copy_at_once():
    memory = ProcessMemory(size=10)
    memory.put("k", "v", seconds=30)
    memory.forget("k")
    memory.forget("never kept")
    assert memory.get("k") is None


def test_a_full_memory_starts_over_rather_than_grow():
    memory = ProcessMemory(size=3)
    for key in "abc":
        memory.put(key, key.upper(), seconds=30)
    memory.put("d", "D", seconds=30)
    assert [memory.get(key) for key in "abcd"] == [None, None, None, "D"]
