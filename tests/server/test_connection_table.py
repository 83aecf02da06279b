"""At the connection cap, the quietest connection not waiting for an answer makes room."""

from __future__ import annotations

from dataclasses import dataclass

from keyquorum.runtime.http_limits import ConnectionTable, HttpLimits


@dataclass(eq=False)
class Conn:
    name: str
    awaiting_answer: bool = False
    closed: bool = False

    def close_for_room(self) -> None:
        self.closed = True


def table_of(cap: int) -> ConnectionTable:
    return ConnectionTable(HttpLimits(max_connections=cap), lambda: 1 << 20)


def test_at_the_cap_the_longest_quiet_connection_is_closed_for_a_new_one() -> None:
    table = table_of(16)
    conns = [Conn(f"c{i}") for i in range(16)]
    for conn in conns:
        assert table.admit(conn)
    table.touch(conns[0])  # c0 just sent something: c1 is now the quietest
    newcomer = Conn("new")
    assert table.admit(newcomer)
    assert [c.name for c in conns if c.closed] == ["c1"]
    assert len(table) == 16


def test_connections_waiting_for_an_answer_are_never_closed_for_room() -> None:
    table = table_of(16)
    busy = [Conn(f"busy{i}", awaiting_answer=True) for i in range(15)]
    idle = Conn("idle")
    for conn in [*busy, idle]:
        assert table.admit(conn)
    assert table.admit(Conn("new"))
    assert idle.closed and not any(c.closed for c in busy)


def test_a_new_connection_is_refused_only_when_every_open_one_awaits_an_answer() -> None:
    table = table_of(16)
    busy = [Conn(f"busy{i}", awaiting_answer=True) for i in range(16)]
    for conn in busy:
        assert table.admit(conn)
    assert not table.admit(Conn("new"))
    assert len(table) == 16 and not any(c.closed for c in busy)


def test_a_lowered_descriptor_limit_closes_enough_idle_connections_at_the_next_accept() -> None:
    limit = [1 << 20]
    table = ConnectionTable(HttpLimits(), lambda: limit[0])
    conns = [Conn(f"c{i}") for i in range(300)]
    for conn in conns:
        assert table.admit(conn)
    limit[0] = 256  # prlimit --nofile=256 on the running process
    assert table.admit(Conn("new"))
    assert len(table) == table.cap() == 128
    assert sum(c.closed for c in conns) == 300 - 127
